"""Start, probe, measure and stop one server process (and the processes it forks)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    """A server started in its own session, so that its workers can be stopped with it."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started_at: float

    @classmethod
    def start(
        cls, name: str, argv: list[str], *, port: int, env: dict[str, str], log_path: Path
    ) -> Process:
        log = log_path.open("wb")
        started_at = time.perf_counter()
        popen = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
        log.close()
        return cls(name=name, popen=popen, port=port, log_path=log_path, started_at=started_at)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 10 s."""
        if not self.alive():
            return
        pgid = self.popen.pid  # start_new_session: the group id is the server's own pid
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        # Workers that outlived their parent.
        for pid in _descendants_in_group(pgid):
            os.kill(pid, signal.SIGKILL)

    def memory_mb(self) -> tuple[float, float, int]:
        """(RSS, PSS, process count) summed over the server and its descendants, in MB."""
        pids = [self.popen.pid, *_descendants(self.popen.pid)]
        rss = pss = 0
        for pid in pids:
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                key, _, rest = line.partition(":")
                if key == "Rss":
                    rss += int(rest.split()[0])
                elif key == "Pss":
                    pss += int(rest.split()[0])
        return rss / 1024, pss / 1024, len(pids)


def _proc_stats() -> list[tuple[int, int, int]]:
    """(pid, ppid, pgid) of every process."""
    stats = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        stats.append((int(entry.name), int(fields[1]), int(fields[2])))
    return stats


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid, _ in _proc_stats():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _descendants_in_group(pgid: int) -> list[int]:
    return [pid for pid, _, group in _proc_stats() if group == pgid and pid != os.getpid()]


def post_json(port: int, path: str, body: bytes, *, timeout: float = 30.0) -> tuple[int, Any]:
    """POST a JSON body to loopback; (status, parsed body or raw text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode(errors="replace")
