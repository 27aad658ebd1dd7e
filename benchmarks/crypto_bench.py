"""Throughput of Modelport's segmented AES-256-GCM on one CPU core.

Run: ``.venv/bin/python benchmarks/crypto_bench.py [--size-mib 64] [--repeat 3]``

Prints MB/s (10^6 bytes of plaintext per second, best of ``--repeat``) for:

* ``encrypt`` / ``decrypt``: :func:`modelport.core.crypto.encrypt_stream` / ``decrypt_stream``
  over in-memory chunks of 1 MiB, per segment size;
* ``decrypt, 64 KiB reads``: the same ciphertext fed in 64 KiB pieces (an HTTP body's chunking);
* ``file store + decrypt``: reading the artifact from a FileStore in a temp dir and decrypting;
* ``one-shot AESGCM``: the peer baseline, ``cryptography``'s AESGCM over the whole buffer at once
  (what streaming costs compared to holding everything in memory).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from modelport.core import crypto
from modelport.core.storage import FileStore

MIB = 1 << 20


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield view[start : start + size].tobytes()


def drain(stream: Iterable[bytes]) -> int:
    return sum(len(chunk) for chunk in stream)


def encrypt_all(data: bytes, key: bytes, segment_size: int) -> int:
    return drain(crypto.encrypt_stream(pieces(data, MIB), key, segment_size=segment_size))


def decrypt_all(blob: bytes, key: bytes, read_size: int) -> int:
    return drain(crypto.decrypt_stream(pieces(blob, read_size), key))


def decrypt_file(store: FileStore, key: bytes) -> int:
    return drain(crypto.decrypt_from_store(store, "model.enc", key))


def best_seconds(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"cpu {cpu}"
    return "not pinned"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64, help="plaintext size in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best counts")
    args = parser.parse_args()

    pinned = pin_to_one_core()
    size = args.size_mib * MIB
    data = os.urandom(size)
    key = crypto.generate_data_key()
    rows: list[tuple[str, str, float]] = []

    def row(name: str, segment: str, run: Callable[[], object]) -> None:
        seconds = best_seconds(run, args.repeat)
        rows.append((name, segment, size / seconds / 1e6))

    for segment_size in (64 * 1024, MIB, 4 * MIB):
        label = f"{segment_size // 1024} KiB"
        blob = b"".join(crypto.encrypt_stream(pieces(data, MIB), key, segment_size=segment_size))
        row("encrypt", label, partial(encrypt_all, data, key, segment_size))
        row("decrypt", label, partial(decrypt_all, blob, key, MIB))
        row("decrypt, 64 KiB reads", label, partial(decrypt_all, blob, key, 64 * 1024))
        if segment_size == MIB:
            with tempfile.TemporaryDirectory() as tmp:
                store = FileStore(tmp)
                store.put_stream("model.enc", [blob])
                row("file store + decrypt", label, partial(decrypt_file, store, key))

    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, data, None)
    row("one-shot AESGCM decrypt (peer)", "whole", lambda: AESGCM(key).decrypt(nonce, sealed, None))

    print(
        f"Modelport crypto benchmark: {args.size_mib} MiB plaintext, best of {args.repeat}, "
        f"{pinned}, {platform.machine()}, Python {platform.python_version()}"
    )
    print()
    print(f"| {'operation':<32} | {'segment':>8} | {'MB/s':>8} |")
    print(f"|{'-' * 34}|{'-' * 10}|{'-' * 10}|")
    for name, segment, mbps in rows:
        print(f"| {name:<32} | {segment:>8} | {mbps:>8.0f} |")


if __name__ == "__main__":
    main()
