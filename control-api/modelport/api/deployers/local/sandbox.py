"""Start one local runtime with a reduced view of the file system (Linux Landlock), then exec it.

Run as a script by the supervisor, standard library only::

    python -I -S sandbox.py --hide DATA_DIR --allow MODEL_DIR [--allow-read FILE]
                            [--uid UID --gid GID] -- COMMAND...

Beneath ``--hide`` (the API's data folder: ``master.key``, ``jwt.secret``, the database, every
model's key folder) the process may open only ``--allow`` (its own folder, all access) and
``--allow-read`` (its artifact, reading). Outside it, it may read and execute, and write only
beneath ``--allow`` (``/dev``, say): the runtime writes nothing else. Landlock allows, it cannot
deny, so the rules grant reading everything beside the path down to ``--hide``: each sibling of
each folder on the way. A file created later directly in one of those folders (``/tmp/x`` when the
data folder is under ``/tmp``) is out of reach; the supervisor points ``TMPDIR`` and ``HOME`` into
the model's folder. The domain also keeps the process from tracing or reading the ``/proc`` files
of processes outside it (the API's memory and environment), and, from Landlock ABI 6, from
signalling them and from reaching their abstract Unix sockets. Given ``--uid``, it then becomes
that user; started as root without one, it gives up every capability, so that none of those
checks is overridden.

Where Landlock is missing (not Linux, an old kernel, disabled) the command runs without it and a
line on standard error says so; ``docs/security.md`` says what that leaves open.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2

# Access rights by the Landlock ABI version that introduced them.
_FS_RIGHTS = {1: (1 << 13) - 1, 2: 1 << 13, 3: 1 << 14, 5: 1 << 15}
_FILE_RIGHTS = 1 | 2 | 4 | (1 << 14) | (1 << 15)  # execute, write, read, truncate, ioctl
_READ_FILE = 4
_READ_ONLY = 1 | 4 | 8  # execute, read file, read directory
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAPSET = 126 if os.uname().machine == "x86_64" else 91  # aarch64 (generic table)
_CAP_VERSION_3 = 0x20080522


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class Unavailable(Exception):
    """Landlock cannot be used here."""


def _libc() -> ctypes.CDLL:
    if not sys.platform.startswith("linux"):
        raise Unavailable(f"Landlock is a Linux feature (this is {sys.platform})")
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version; :class:`Unavailable` when there is none."""
    libc = _libc()
    version = int(libc.syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION))
    if version < 1:
        raise Unavailable(f"Landlock is not enabled ({os.strerror(ctypes.get_errno())})")
    return version


def _siblings_down_to(hidden: str) -> list[str]:
    """Every entry of every folder from ``/`` down to ``hidden``'s parent, except the one that
    leads to ``hidden`` and any link that leads into it or above it (``pytest-current``, say)."""
    out: list[str] = []
    parts = hidden.strip("/").split("/")
    folder = "/"
    for part in parts:
        for entry in sorted(os.listdir(folder)):
            path = os.path.join(folder, entry)
            target = os.path.realpath(path)
            if entry != part and not (hidden + "/").startswith(target.rstrip("/") + "/"):
                out.append(path)
        folder = os.path.join(folder, part)
    return out


def restrict(*, hide: str, allow: list[str], allow_read: list[str]) -> int:
    """Restrict this process (and what it execs) as the module says; returns the ABI used."""
    version = abi_version()
    libc = _libc()
    fs = 0
    for since, rights in _FS_RIGHTS.items():
        fs |= rights if version >= since else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if version >= 6 else 0
    attr = _RulesetAttr(fs, 0, scoped)
    size = 24 if version >= 6 else 16 if version >= 4 else 8
    ruleset = int(libc.syscall(_CREATE_RULESET, ctypes.byref(attr), size, 0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        grants = [(p, _READ_ONLY) for p in _siblings_down_to(os.path.realpath(hide))]
        grants += [(os.path.realpath(p), fs) for p in allow]
        grants += [(os.path.realpath(p), _READ_FILE) for p in allow_read]
        for path, rights in grants:
            _add_rule(libc, ruleset, path, rights, fs)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return version


def drop_capabilities() -> None:
    """Give up every capability for good (bounding, ambient, permitted, effective, inheritable):
    a root process keeps its user id but none of root's overrides, after exec too."""
    libc = _libc()
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(last + 1):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap})")
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if libc.syscall(_CAPSET, ctypes.byref(header), ctypes.byref(data)) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _add_rule(libc: ctypes.CDLL, ruleset: int, path: str, rights: int, handled: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # gone since it was listed, or a dangling link: nothing to grant
    try:
        is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
        allowed = rights & handled & (rights if is_dir else _FILE_RIGHTS)
        rule = _PathBeneathAttr(allowed, fd)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="sandbox")
    parser.add_argument("--hide", required=True)
    parser.add_argument("--allow", action="append", default=[])
    parser.add_argument("--allow-read", action="append", default=[])
    parser.add_argument("--uid", type=int)
    parser.add_argument("--gid", type=int)
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    try:
        restrict(hide=args.hide, allow=args.allow, allow_read=args.allow_read)
    except Unavailable as exc:
        print(f"modelport: runtime not sandboxed: {exc}", file=sys.stderr, flush=True)
    except OSError as exc:
        print(f"modelport: cannot sandbox the runtime: {exc}", file=sys.stderr, flush=True)
        sys.exit(126)
    try:
        if args.uid is not None:
            os.setgroups([])
            os.setgid(args.gid if args.gid is not None else args.uid)
            os.setuid(args.uid)  # from root to another user: every capability goes with it
        elif os.geteuid() == 0 and sys.platform.startswith("linux"):
            drop_capabilities()
    except OSError as exc:
        print(f"modelport: cannot sandbox the runtime: {exc}", file=sys.stderr, flush=True)
        sys.exit(126)
    os.execvp(args.command[0], args.command)  # noqa: S606 - the runtime's own command


if __name__ == "__main__":
    main(sys.argv[1:])
