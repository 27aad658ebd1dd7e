"""This process's resident high-water mark (Linux), for measuring what a scan costs the caller."""

from __future__ import annotations

from pathlib import Path


def reset_peak_rss() -> bool:
    """Reset the high-water mark to the current RSS (``clear_refs``); False where it cannot be."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss() -> int:
    """The resident high-water mark (VmHWM) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
