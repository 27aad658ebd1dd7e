"""The scan in a child process with CPU-time, address-space and wall-clock limits.

The scanner bounds what it decodes and walks, but a crafted file is an input to parsers (zip,
HDF5, protobuf) written in C too; the service that takes uploads must survive any of them.
:func:`scan_isolated` runs ``python -m modelport.core.scan.sandbox`` on the file: the child sets
``RLIMIT_CPU`` and ``RLIMIT_AS`` on itself before it scans, prints the verdict as JSON and exits.
Whatever stops it (too much CPU, memory or time, a crash) becomes an ``undecidable`` verdict that
says what happened, so the caller answers 400 and stays up.

The address-space limit is the child's whole address space: the interpreter and the scanner's
own allocations, plus the size of the file, which the scanner maps read-only rather than reads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelport.core.formats import ModelFormat
from modelport.core.scan.limits import Limits, MiB
from modelport.core.scan.verdict import Code, Finding, Outcome, Verdict

#: The child's exit status when it ran out of address space outside the scanner's own handling.
EXIT_MEMORY = 3
#: Seconds the child gets beyond the scan's own deadline to start and to answer.
GRACE_SECONDS = 5.0
_MAX_OUTPUT = 1 * MiB


@dataclass(frozen=True)
class ProcessLimits:
    """What one scan's child process may use."""

    #: CPU seconds (``RLIMIT_CPU``; the interpreter's start counts too).
    cpu_seconds: int = 60
    #: Address space in bytes (``RLIMIT_AS``), the uploaded file's size added to it.
    memory_bytes: int = 1024 * MiB
    #: Wall-clock seconds; the scanner's own deadline, and the child is killed soon after.
    wall_seconds: float = 120.0


@dataclass(frozen=True)
class IsolatedScan:
    """A verdict and what the child used to reach it."""

    verdict: Verdict
    #: Peak resident memory of the child after it started (its VmHWM), in bytes; None when it
    #: did not finish (the kernel's own count would include the parent it was forked from).
    peak_rss_bytes: int | None
    #: CPU seconds the child used (user and system).
    cpu_seconds: float
    #: Wall-clock seconds from start to exit.
    wall_seconds: float


def scan_isolated(
    path: str | os.PathLike[str],
    *,
    expected_format: ModelFormat | str | None = None,
    limits: ProcessLimits | None = None,
) -> Verdict:
    """Scan the file at ``path`` in a limited child process (see the module's description)."""
    return run_isolated(path, expected_format=expected_format, limits=limits).verdict


def run_isolated(
    path: str | os.PathLike[str],
    *,
    expected_format: ModelFormat | str | None = None,
    limits: ProcessLimits | None = None,
) -> IsolatedScan:
    """:func:`scan_isolated`, with the child's resource use."""
    limits = limits or ProcessLimits()
    fmt = ModelFormat(expected_format).value if expected_format is not None else None
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        finding = Finding(Code.UNREADABLE, "file", f"cannot read the file: {exc.strerror or exc}")
        return IsolatedScan(_undecidable(finding, fmt), None, 0.0, 0.0)
    command = [
        sys.executable, "-P", "-m", __name__,
        "--cpu-seconds", str(limits.cpu_seconds),
        "--memory-bytes", str(limits.memory_bytes + size),
        "--wall-seconds", repr(limits.wall_seconds),
        *(["--format", fmt] if fmt else []),
        os.fspath(path),
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_environment(os.environ),
    )
    output, timed_out = _collect(proc, limits.wall_seconds + GRACE_SECONDS)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    cpu = usage.ru_utime + usage.ru_stime
    report = _report(proc.returncode, output)
    verdict = _verdict_of(proc.returncode, report, timed_out, cpu, limits, fmt)
    peak = report.get("peakRssBytes") if report else None
    return IsolatedScan(verdict, peak if isinstance(peak, int) else None, cpu, wall)


#: The only variables the child inherits: where to find programs and the modelport package, and
#: the locale. Never the caller's secrets (the control API holds its master keys, JWT secret and
#: database URL in its environment), since the child parses untrusted bytes in C parsers too.
_INHERITED = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")


def child_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The scan child's environment: :data:`_INHERITED` from `parent`, nothing else."""
    return {name: parent[name] for name in _INHERITED if name in parent}


def _collect(proc: subprocess.Popen[bytes], seconds: float) -> tuple[bytes, bool]:
    """The child's stdout (stderr is read and dropped); kill it when ``seconds`` pass."""
    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + seconds
    out = bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                proc.stdout.close()
                proc.stderr.close()
                return bytes(out), True
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                elif key.fileobj is proc.stdout and len(out) < _MAX_OUTPUT:
                    out += chunk
    proc.stdout.close()
    proc.stderr.close()
    return bytes(out), False


def _report(code: int, output: bytes) -> dict[str, Any] | None:
    """What a child that finished printed: ``{"verdict": ..., "peakRssBytes": ...}``."""
    if code != 0:
        return None
    try:
        report = json.loads(output)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def _verdict_of(
    code: int,
    report: dict[str, Any] | None,
    timed_out: bool,
    cpu: float,
    limits: ProcessLimits,
    fmt: str | None,
) -> Verdict:
    mib = f"{limits.memory_bytes / MiB:g} MiB"
    memory = f"the scan needed more than {mib} of memory"
    if timed_out:
        message = f"the scan took longer than {limits.wall_seconds:g} s"
        return _undecidable(Finding(Code.LIMIT_EXCEEDED, "wall_seconds", message), fmt)
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= limits.cpu_seconds):
        message = f"the scan used more than {limits.cpu_seconds} s of CPU time"
        return _undecidable(Finding(Code.LIMIT_EXCEEDED, "cpu_seconds", message), fmt)
    if code == EXIT_MEMORY:
        return _undecidable(Finding(Code.LIMIT_EXCEEDED, "memory", memory), fmt)
    try:
        verdict = Verdict.from_dict(report["verdict"]) if report is not None else None
    except (ValueError, KeyError, TypeError):
        verdict = None
    if verdict is None:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        message = f"scanner error: the scan process {how}"
        return _undecidable(Finding(Code.UNREADABLE, "file", message), fmt)
    findings = tuple(
        Finding(f.code, f.location, memory) if f.location == "memory" else f
        for f in verdict.findings
    )
    return Verdict(
        outcome=verdict.outcome,
        findings=findings,
        format=verdict.format,
        container=verdict.container,
        sha256=verdict.sha256,
        size=verdict.size,
        scanner_version=verdict.scanner_version,
    )


def _undecidable(finding: Finding, fmt: str | None) -> Verdict:
    from modelport.core.scan.scanner import scanner_version

    return Verdict(
        outcome=Outcome.UNDECIDABLE,
        findings=(finding,),
        format=fmt,
        container=None,
        sha256=None,
        size=0,
        scanner_version=scanner_version(),
    )


# --- the child ---------------------------------------------------------------------------------


def _limit(kind: int, soft: int, hard: int) -> None:
    """Lower a limit to ``soft``/``hard``, never above a hard limit already set."""
    _, current = resource.getrlimit(kind)
    if current != resource.RLIM_INFINITY:
        hard = min(hard, current)
    resource.setrlimit(kind, (min(soft, hard), hard))


def _peak_rss() -> int | None:
    """This process's resident high-water mark since it started (VmHWM), in bytes."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Set the limits, scan one file, print its verdict as JSON."""
    parser = argparse.ArgumentParser(prog="python -m modelport.core.scan.sandbox")
    parser.add_argument("path")
    parser.add_argument("--format", choices=[fmt.value for fmt in ModelFormat])
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("--wall-seconds", type=float, required=True)
    args = parser.parse_args(argv)
    # One thread per numerical library: their pools reserve address space the scan never uses.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    # SIGXCPU at the soft CPU limit, SIGKILL a second later should that be ignored.
    _limit(resource.RLIMIT_CPU, args.cpu_seconds, args.cpu_seconds + 1)
    _limit(resource.RLIMIT_AS, args.memory_bytes, args.memory_bytes)
    try:
        from modelport.core.scan.scanner import scan

        verdict = scan(
            args.path, expected_format=args.format, limits=Limits(max_seconds=args.wall_seconds)
        )
        report = {"verdict": verdict.to_dict(), "peakRssBytes": _peak_rss()}
        sys.stdout.write(json.dumps(report))
        sys.stdout.flush()
    except MemoryError:
        os._exit(EXIT_MEMORY)


if __name__ == "__main__":
    main()
