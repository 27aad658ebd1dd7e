"""What a local runtime process is given, and what it is kept from (``modelport up``).

The API's own secrets (master keys, the JWT secret, the database URL) never reach a runtime:

- **Environment**: built from scratch, never copied: a short list of variables the interpreter
  and the S3 client need (:data:`INHERITED`, :data:`INHERITED_PREFIXES`), the deployer's
  explicit extras, and the runtime's own settings. ``HOME`` and ``TMPDIR`` are its own folder.
- **Files**: the process starts in its model's private folder (0700), with no file descriptor
  of the API's but standard input (``/dev/null``), output and error (its log). The ``sandbox``
  launcher applies a Landlock rule set first: beneath the API's data folder it may open only its
  own folder and its artifact, and outside it may write only there and in ``/dev``.
- **User**: when the API runs as root, the runtime runs as ``local_runtime_uid:gid`` (``nobody``)
  and its folder and key files are chowned to it, so that file permissions keep it from
  ``master.key``, ``jwt.secret`` and the database as well. That needs the interpreter, the
  folder and the artifact to be reachable by that user; where they are not (a virtualenv under
  a 0700 home, say), the runtime keeps root's user id without any capability (the launcher drops
  them), held by the rule set alone, and a warning says why.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

SANDBOX = Path(__file__).with_name("sandbox.py")

#: Variables a runtime inherits from the API's environment, when set: the interpreter's and the
#: loader's search paths, locale, the TLS trust store, the GPUs it may use. Nothing else.
INHERITED = (
    *("PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"),
    *("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CUDA_VISIBLE_DEVICES"),
)
#: Prefixes of inherited variables: the S3 client's credentials and endpoint (the runtime reads
#: its artifact with them, as a runtime pod does with the per-model credentials it mounts).
INHERITED_PREFIXES = ("AWS_",)


def environment(
    source: Mapping[str, str], *, extra: Mapping[str, str], own: Mapping[str, str], folder: Path
) -> dict[str, str]:
    """A runtime's whole environment: the inherited few of ``source``, then ``extra`` (the
    deployer's explicit additions), then ``own`` (the runtime's settings), home in ``folder``."""
    env = {
        name: value
        for name, value in source.items()
        if name in INHERITED or name.startswith(INHERITED_PREFIXES)
    }
    env.update(extra)
    env.update({"HOME": str(folder), "TMPDIR": str(folder / "tmp")})
    env.update(own)
    return env


@dataclass(frozen=True)
class RuntimeUser:
    uid: int
    gid: int


def choose_user(
    *, wanted: RuntimeUser, interpreter: str, data_dir: Path, artifact_uri: str
) -> RuntimeUser | None:
    """The user a runtime runs as: ``wanted`` when the API runs as root and that user can reach
    the interpreter, the data folder (the model's folder in it is then made its own) and a
    ``file://`` artifact; None (the API's user) otherwise."""
    if os.geteuid() != 0:
        return None
    needed = [Path(shutil.which(interpreter) or interpreter).resolve(), data_dir]
    parts = urlsplit(artifact_uri)
    if parts.scheme == "file":
        needed.append(Path(unquote(parts.path)))
    blocked = [str(p) for p in needed if not _reachable(p, wanted)]
    if blocked:
        _warn_once(
            "local runtimes run as root without capabilities, not as uid %s: it cannot reach %s "
            "(install Modelport, the data folder and the artifacts where that user can read them, "
            "or set MODELPORT_API_LOCAL_RUNTIME_UID)",
            wanted.uid,
            ", ".join(blocked),
        )
        return None
    return wanted


_warned: set[int] = set()


def _warn_once(message: str, uid: int, blocked: str) -> None:
    """Log the fallback once per process (naming the first model's paths), not at every start."""
    if uid not in _warned:
        _warned.add(uid)
        log.warning(message, uid, blocked)


def _reachable(path: Path, user: RuntimeUser) -> bool:
    """Whether ``user`` can walk to ``path`` (x on every folder above it), by permission bits."""
    for folder in reversed(path.parents):
        if not _allows(folder, user, stat.S_IXUSR):
            return False
    return path.is_dir() or _allows(path, user, stat.S_IRUSR)


def _allows(path: Path, user: RuntimeUser, owner_bit: int) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == user.uid:
        return bool(st.st_mode & owner_bit)
    if st.st_gid == user.gid:
        return bool(st.st_mode & (owner_bit >> 3))
    return bool(st.st_mode & (owner_bit >> 6))


def prepare_folder(folder: Path, user: RuntimeUser | None) -> None:
    """Give the model's folder (0700) and everything in it to the runtime's user (or the API's),
    with a private temporary folder inside."""
    (folder / "tmp").mkdir(mode=0o700, exist_ok=True)
    uid, gid = (user.uid, user.gid) if user else (os.geteuid(), os.getegid())
    if os.geteuid() != 0:
        return
    for path in (folder, *folder.iterdir()):
        if path.name != "runtime.log":
            os.chown(path, uid, gid, follow_symlinks=False)
    if user is not None:
        folder.parent.chmod(0o711)  # the runtime may pass through run/, never list it


def command(
    runtime: list[str],
    *,
    data_dir: Path,
    folder: Path,
    artifact_uri: str,
    user: RuntimeUser | None,
) -> list[str]:
    """``runtime`` started through the sandbox launcher (this interpreter, isolated mode)."""
    launcher = [sys.executable, "-I", "-S", str(SANDBOX), "--hide", str(data_dir)]
    launcher += ["--allow", str(folder), "--allow", "/dev"]
    parts = urlsplit(artifact_uri)
    if parts.scheme == "file":
        launcher += ["--allow-read", unquote(parts.path)]
    if user is not None:
        launcher += ["--uid", str(user.uid), "--gid", str(user.gid)]
    return [*launcher, "--", *runtime]
