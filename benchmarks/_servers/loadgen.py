"""The load generator: wrk (Debian package ``wrk``) with ``post.lua``, one row per request."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("post.lua")
_MARKER = "MODELPORT-BENCH "


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: closed loop, ``connections`` requests in flight at all times."""

    connections: int
    requests: int
    seconds: float
    errors: int
    non_2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return self.errors + self.non_2xx


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            "runtime_bench: wrk not found; install it with `apt-get install -y wrk` "
            "(Debian package)"
        )
    return found


def run_wrk(
    url: str, bodies: Path, *, connections: int, seconds: float, timeout_s: float = 30.0
) -> LoadResult:
    """Run wrk with one thread (the box is small: a second thread would take the server's CPU)."""
    argv = [
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={int(timeout_s)}s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(bodies),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    for line in done.stdout.splitlines():
        if line.startswith(_MARKER):
            raw = json.loads(line[len(_MARKER) :])
            return LoadResult(
                connections=connections,
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                errors=raw["errors"],
                non_2xx=raw["non_2xx"],
                p50_ms=raw["p50_us"] / 1e3,
                p90_ms=raw["p90_us"] / 1e3,
                p99_ms=raw["p99_us"] / 1e3,
                max_ms=raw["max_us"] / 1e3,
            )
    raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
