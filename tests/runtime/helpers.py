"""Helpers for runtime tests: encrypted artifacts and runtime processes on free ports."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from modelport.core.crypto import encode_data_key, encrypt_stream, generate_data_key
from modelport.core.storage import S3Store
from modelport.runtime.settings import RuntimeSettings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Artifact:
    """An encrypted artifact as the control API would store it, plus what the runtime needs."""

    uri: str
    key_file: Path
    sha256: str
    format: str


def encrypt_file(plain: Path, directory: Path, fmt: str) -> Artifact:
    """Encrypt ``plain`` into ``directory`` and write its data-key file beside it."""
    key = generate_data_key()
    data = plain.read_bytes()
    target = directory / (plain.name + ".enc")
    target.write_bytes(b"".join(encrypt_stream([data], key, segment_size=4096)))
    key_file = directory / (plain.name + ".key")
    key_file.write_text(encode_data_key(key))
    return Artifact(target.as_uri(), key_file, hashlib.sha256(data).hexdigest(), fmt)


def encrypt_to_s3(plain: Path, store: S3Store, directory: Path, fmt: str) -> Artifact:
    """Encrypt ``plain`` into an S3 bucket (streamed upload) and write its data-key file."""
    key = generate_data_key()
    data = plain.read_bytes()
    object_key = f"models/{plain.name}.enc"
    store.put_stream(object_key, encrypt_stream([data], key, segment_size=4096))
    key_file = directory / (plain.name + ".s3key")
    key_file.write_text(encode_data_key(key))
    return Artifact(store.uri_for(object_key), key_file, hashlib.sha256(data).hexdigest(), fmt)


def settings_for(artifact: Artifact, **overrides: Any) -> RuntimeSettings:
    values: dict[str, Any] = {
        "model_name": "m",
        "artifact_uri": artifact.uri,
        "format": artifact.format,
        "sha256": artifact.sha256,
        "key_file": artifact.key_file,
        "auth_required": False,
    }
    values.update(overrides)
    return RuntimeSettings(**values)


def write_keys(path: Path, keys: dict[str, tuple[str, int | None]]) -> None:
    """Write an inference keys file: ``{id: (plaintext key, limit per minute)}``."""
    entries = [
        {
            "id": key_id,
            "sha256": hashlib.sha256(key.encode()).hexdigest(),
            **({"rateLimitPerMinute": limit} if limit is not None else {}),
        }
        for key_id, (key, limit) in keys.items()
    ]
    path.write_text(json.dumps({"keys": entries}))


@dataclass
class RuntimeProcess:
    """``modelport-runtime`` as a real subprocess."""

    args: list[str]
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_RUNTIME_")}
        env.update(self.env)
        env["MODELPORT_RUNTIME_HOST"] = "127.0.0.1"
        env["MODELPORT_RUNTIME_PORT"] = str(self.port)
        env["MODELPORT_RUNTIME_METRICS_HOST"] = "127.0.0.1"
        env["MODELPORT_RUNTIME_METRICS_PORT"] = str(self.metrics_port)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelport.runtime.main", *self.args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until ``/v2/health/ready`` answers 200; raises with the log if the process exits."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"runtime exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/v2/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"runtime not ready after {timeout} s:\n{self.log()}")

    def wait_exit(self, timeout: float = 90.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def log(self) -> str:
        assert self.process is not None
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str] | None = None) -> Iterator[RuntimeProcess]:
    proc = RuntimeProcess(args, env or {})
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.terminate()


def runtime_args(artifact: Artifact, name: str = "m", *extra: str) -> list[str]:
    return [
        "--model-name",
        name,
        "--artifact-uri",
        artifact.uri,
        "--format",
        artifact.format,
        "--sha256",
        artifact.sha256,
        "--key-file",
        str(artifact.key_file),
        *extra,
    ]
