"""Running one control-plane component as a child process, and waiting on conditions."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.25
_PR_SET_PDEATHSIG = 1


class ComponentError(RuntimeError):
    """A component exited early or never became ready."""


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this child when its parent dies, so nothing outlives a test run."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Component:
    """One control-plane binary with its arguments and its log file."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the harness, which stops us in order
                preexec_fn=die_with_parent,  # safe: components are started from one thread
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Terminate, then kill what is still alive after `timeout` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ComponentError(
                f"{self.name} exited with status {self.process.returncode}; "
                f"log {self.log_path}:\n{self.log_tail()}"
            )


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    components: Iterable[Component] = (),
) -> None:
    """Poll `check` until it is true; fail when `timeout` passes or a component exits."""
    watched = list(components)
    deadline = time.monotonic() + timeout
    while True:
        for component in watched:
            component.check_running()
        if check():
            return
        if time.monotonic() >= deadline:
            raise ComponentError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_INTERVAL)


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """Whether GET `url` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False


def insecure_tls() -> ssl.SSLContext:
    """For the health endpoints of components that serve a self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago.

    The sockets stay bound until all ports are chosen, so the ports differ from each other;
    another process may still take one before a component binds it, which `Cluster.start`
    detects and retries.
    """
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
