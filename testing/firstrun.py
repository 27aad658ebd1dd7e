"""Stock Debian 12 and Ubuntu 24.04 root file systems, to run the README's first command in.

A root file system is what ``debootstrap --variant=minbase`` makes from the distribution's own
archive, plus ``python3``, ``sudo`` and ``ca-certificates``: a fresh machine's Python, externally
managed (PEP 668), without ``venv`` or ``pip``. Each is built once and cached as a tar file in
Modelport's cache folder (like the Kubernetes binaries), keyed by the distribution and the
package list; a file lock keeps parallel test workers from building one twice.

:func:`run_in` starts a command inside a fresh copy, in its own mount and PID namespaces: the
mounts it needs and every process it starts end with it, even when the test run is killed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from testing.harness.binaries import locked, modelport_cache

PACKAGES = ("python3", "sudo", "ca-certificates")
#: Packages a build host needs to make the root file systems (Debian's).
HOST_TOOLS = ("debootstrap", "unshare")


@dataclass(frozen=True)
class Distro:
    """A distribution release as ``debootstrap`` makes it."""

    name: str
    suite: str
    mirror: str
    script: str | None = None
    """The debootstrap script, when the host's debootstrap predates the release."""
    keyring: str | None = None
    """The archive keyring checking the release's signature; None: the host's default."""
    sources: str = ""
    """``/etc/apt/sources.list`` as the release's installer writes it (debootstrap writes the
    main component of the release alone)."""


DEBIAN_12 = Distro(
    "debian-12",
    "bookworm",
    "http://deb.debian.org/debian",
    sources=(
        "deb http://deb.debian.org/debian bookworm main\n"
        "deb http://deb.debian.org/debian bookworm-updates main\n"
        "deb http://deb.debian.org/debian-security bookworm-security main\n"
    ),
)
#: Debian's debootstrap 1.0.128 has no script named after 24.04: Ubuntu's releases since 7.10
#: all use the ``gutsy`` one. Debian ships no Ubuntu keyring, so the Release file is not
#: checked against one (the packages are still checked against the Release's hashes).
UBUNTU_24_04 = Distro(
    "ubuntu-24.04",
    "noble",
    "http://archive.ubuntu.com/ubuntu",
    script="gutsy",
    keyring=None,
    sources="".join(
        f"deb {mirror} {suite} main restricted universe multiverse\n"
        for mirror, suite in (
            ("http://archive.ubuntu.com/ubuntu", "noble"),
            ("http://archive.ubuntu.com/ubuntu", "noble-updates"),
            ("http://security.ubuntu.com/ubuntu", "noble-security"),
        )
    ),
)
DISTROS = (DEBIAN_12, UBUNTU_24_04)


def missing_host_tools() -> list[str]:
    return [tool for tool in HOST_TOOLS if shutil.which(tool) is None]


def rootfs_tar(distro: Distro) -> Path:
    """The cached tar of ``distro``'s root file system, built first when missing."""
    folder = modelport_cache() / "firstrun"
    folder.mkdir(parents=True, exist_ok=True)
    tar = folder / f"{distro.name}-{'-'.join(PACKAGES)}.tar"
    if tar.is_file():
        return tar
    with locked(folder / f"{distro.name}.lock"):
        if not tar.is_file():
            _build(distro, tar)
    return tar


def _build(distro: Distro, tar: Path) -> None:
    scratch = tar.with_name(tar.name + ".build")
    shutil.rmtree(scratch, ignore_errors=True)
    argv = ["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES)]
    if distro.script is not None and distro.keyring is None:
        argv.append("--no-check-gpg")
    argv += [distro.suite, str(scratch), distro.mirror]
    if distro.script is not None:
        argv.append(f"/usr/share/debootstrap/scripts/{distro.script}")
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=1200)
        partial = tar.with_name(tar.name + ".partial")
        subprocess.run(["tar", "-C", str(scratch), "-cf", str(partial), "."], check=True)
        partial.rename(tar)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"{shlex.join(argv)} failed ({exc.returncode}):\n{exc.stderr.decode()[-3000:]}"
        ) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def unpack(distro: Distro, root: Path) -> Path:
    """A fresh copy of ``distro`` in ``root``, able to reach this machine's package indexes:
    its DNS settings, and the machine's own extra certificate authorities (this machine's HTTPS
    goes through a proxy with its own CA; a real fresh machine needs neither)."""
    root.mkdir(parents=True)
    with tarfile.open(rootfs_tar(distro)) as archive:
        archive.extractall(root, filter="fully_trusted")  # our own build: devices, owners
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    (root / "etc/apt/sources.list").write_text(distro.sources)
    extra = Path("/usr/local/share/ca-certificates")
    for cert in extra.glob("*.crt") if extra.is_dir() else ():
        shutil.copy(cert, root / "usr/local/share/ca-certificates" / cert.name)
    subprocess.run(["chroot", str(root), "update-ca-certificates"], check=True, capture_output=True)
    return root


def run_in(
    root: Path,
    command: str,
    *,
    cwd: str,
    env: dict[str, str],
    binds: dict[Path, str],
    out: IO[bytes],
) -> subprocess.Popen[bytes]:
    """Start ``sh -c command`` in ``root`` as root, with only ``env``; ``binds`` maps host
    folders to paths inside. Killing the returned process ends every process it started."""
    mounts = [f"mount -t proc proc {shlex.quote(str(root / 'proc'))}"]
    mounts.append(f"mount --rbind /dev {shlex.quote(str(root / 'dev'))}")
    for host, inside in binds.items():
        target = root / inside.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        mounts.append(f"mount --bind {shlex.quote(str(host))} {shlex.quote(str(target))}")
    inner = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), "sh", "-c"]
    inner.append(f"cd {shlex.quote(cwd)} && {command}")
    setup = " && ".join(mounts)
    script = f"{setup} && exec chroot {shlex.quote(str(root))} {shlex.join(inner)}"
    return subprocess.Popen(
        ["unshare", "--mount", "--pid", "--fork", "--kill-child", "sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
    )
