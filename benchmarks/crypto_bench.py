"""Throughput of Modelport's segmented AES-256-GCM on one CPU core.

Run: ``.venv/bin/python benchmarks/crypto_bench.py [--size-mib 64] [--repeat 3]``

Prints MB/s (10^6 bytes of plaintext per second, best of ``--repeat``), by wall-clock time and
by this process's CPU time (the one-core rate, robust to other load on the machine), for:

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
from collections.abc import Callable, Iterable
from functools import partial

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from modelport.core import crypto
from modelport.core.storage import FileStore

MIB = 1 << 20


def pieces(data: bytes, size: int) -> list[bytes]:
    """Cut ``data`` into ``size``-byte pieces up front, so that timings exclude the cutting."""
    return [data[start : start + size] for start in range(0, len(data), size)]


def drain(stream: Iterable[bytes]) -> int:
    return sum(len(chunk) for chunk in stream)


def encrypt_all(chunks: list[bytes], key: bytes, segment_size: int) -> int:
    return drain(crypto.encrypt_stream(chunks, key, segment_size=segment_size))


def decrypt_all(chunks: list[bytes], key: bytes) -> int:
    return drain(crypto.decrypt_stream(chunks, key))


def decrypt_file(store: FileStore, key: bytes) -> int:
    return drain(crypto.decrypt_from_store(store, "model.enc", key))


def best_seconds(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds (this process) over ``repeat`` runs."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


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
    rows: list[tuple[str, str, float, float]] = []

    def row(name: str, segment: str, run: Callable[[], object]) -> None:
        wall, cpu = best_seconds(run, args.repeat)
        rows.append((name, segment, size / wall / 1e6, size / cpu / 1e6))

    plain_chunks = pieces(data, MIB)
    for segment_size in (64 * 1024, 256 * 1024, MIB, 4 * MIB):
        label = f"{segment_size // 1024} KiB"
        blob = b"".join(crypto.encrypt_stream(plain_chunks, key, segment_size=segment_size))
        row("encrypt", label, partial(encrypt_all, plain_chunks, key, segment_size))
        row("decrypt", label, partial(decrypt_all, pieces(blob, MIB), key))
        row("decrypt, 64 KiB reads", label, partial(decrypt_all, pieces(blob, 64 * 1024), key))
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
    print(f"| {'operation':<32} | {'segment':>8} | {'MB/s wall':>9} | {'MB/s CPU':>9} |")
    print(f"|{'-' * 34}|{'-' * 10}|{'-' * 11}|{'-' * 11}|")
    for name, segment, wall, cpu in rows:
        print(f"| {name:<32} | {segment:>8} | {wall:>9.0f} | {cpu:>9.0f} |")
    print()
    print("MB/s CPU divides by this process's CPU time: the one-core rate even on a shared box.")


if __name__ == "__main__":
    main()
