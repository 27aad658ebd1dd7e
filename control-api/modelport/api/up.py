"""``modelport up``: the whole system on one machine, no cluster, no external services.

Under a data folder (default ``$XDG_DATA_HOME/modelport``, i.e. ``~/.local/share/modelport``):
``modelport.db`` (SQLite), ``artifacts/`` (encrypted models), ``master.key`` and ``jwt.secret``
(generated once, mode 0600), ``run/`` (key files and logs of the local runtimes). The API listens
on 127.0.0.1 only and answers only requests addressed to 127.0.0.1, localhost or [::1] with its
port (DNS rebinding). The first run creates an admin (``admin@localhost``) with a password (asked
for on a terminal, else generated) and two API keys, an account key for the control API (CLI,
curl uploads) and an inference key for calling models, and prints them once; later runs say how
to get a new key, and ``--reset-admin-password`` prints a new password.
"""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.api.settings import ApiSettings

if TYPE_CHECKING:
    from modelport.api.services.keys import FirstKeys

ADMIN_EMAIL = "admin@localhost"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "modelport"


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """Read a secret, creating it first (mode 0600, never group/world readable)."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(make())
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"{path} is readable by others; run: chmod 600 {path}")
    return path.read_text().strip()


def embedded_settings(data_dir: Path, *, port: int) -> ApiSettings:
    """Settings of the embedded mode: SQLite, a local artifact folder, local runtimes."""
    from modelport.core.keys import new_master_key_entry

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (data_dir / "artifacts").mkdir(exist_ok=True, mode=0o700)
    master = secret_file(data_dir / "master.key", lambda: new_master_key_entry("local1"))
    jwt_secret = secret_file(data_dir / "jwt.secret", lambda: secrets.token_urlsafe(48))
    return ApiSettings(
        environment="development",
        database_url=f"sqlite:///{data_dir / 'modelport.db'}",
        artifact_uri=(data_dir / "artifacts").resolve().as_uri(),
        master_keys=master,
        jwt_secret=jwt_secret,
        public_url=f"http://127.0.0.1:{port}",
        allowed_hosts=loopback_hosts(port),
        deployer="local",
        data_dir=data_dir,
    )


def loopback_hosts(port: int) -> list[str]:
    """The only ``Host`` values the embedded API answers to: its loopback names with its port
    (a web page that rebinds its own name to 127.0.0.1 still sends its own name)."""
    return [f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")]


@dataclass(frozen=True)
class FirstRun:
    """What the first run creates and prints once: the admin's password and API keys."""

    password: str
    """Empty when the admin typed it (it is not printed)."""
    keys: FirstKeys


def choose_password() -> tuple[str, bool]:
    """The admin's password: typed twice on a terminal (empty: generated), else generated.
    Returns the password and whether it was generated (and so must be printed)."""
    if sys.stdin.isatty():
        while True:
            typed = getpass.getpass(f"Choose a password for {ADMIN_EMAIL} (empty: generate one): ")
            if not typed:
                break
            if len(typed) < 8:
                print("At least 8 characters, please.", flush=True)
            elif getpass.getpass("Again: ") == typed:
                return typed, False
            else:
                print("The two did not match.", flush=True)
    return secrets.token_urlsafe(12), True


def first_run(settings: ApiSettings, password: Callable[[], tuple[str, bool]]) -> FirstRun | None:
    """Create the admin, their password and keys on the first run; None when users exist."""
    from modelport.api.db.session import Database
    from modelport.api.db.tables import User
    from modelport.api.services import keys
    from sqlalchemy import func, select

    db = Database(settings.database_url)
    try:
        with db.sessions() as session:
            if session.scalar(select(func.count()).select_from(User)):
                return None
            chosen, generated = password()
            _, issued = keys.create_admin_with_keys(
                session,
                settings=settings,
                email=ADMIN_EMAIL,
                password=chosen,
                key_name="modelport up",
            )
            return FirstRun(password=chosen if generated else "", keys=issued)
    finally:
        db.dispose()


def reset_admin_password(settings: ApiSettings) -> str:
    """Give ``admin@localhost`` a new generated password and return it. Whoever can run ``up``
    on this data folder can read its database and keys anyway."""
    from modelport.api import auth
    from modelport.api.db.session import Database
    from modelport.api.db.tables import User
    from modelport.api.services import audit
    from sqlalchemy import select

    password = secrets.token_urlsafe(12)
    db = Database(settings.database_url)
    try:
        with db.sessions() as session:
            admin = session.scalar(select(User).where(User.email == ADMIN_EMAIL))
            if admin is None:
                raise SystemExit(f"there is no {ADMIN_EMAIL} in this data folder")
            admin.password_hash = auth.hash_password(password)
            audit.record(session, actor_id=admin.id, action="user.password_reset", target=admin.id)
            session.commit()
    finally:
        db.dispose()
    return password


def run(data_dir: Path | None = None, *, port: int = 8000, reset_password: bool = False) -> None:
    """Migrate, create the first admin, then serve on 127.0.0.1 until interrupted."""
    import uvicorn
    from modelport.api.app import create_app
    from modelport.api.db.session import migrate

    os.umask(0o077)  # the database, artifacts and key files are for this user alone
    folder = (data_dir or default_data_dir()).expanduser().resolve()
    settings = embedded_settings(folder, port=port)
    migrate(settings.database_url)
    created = first_run(settings, choose_password)
    new_password = reset_admin_password(settings) if reset_password and not created else None
    print(banner(settings, folder, created, new_password), flush=True)
    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=port, proxy_headers=False, log_level="warning"
    )


def banner(
    settings: ApiSettings, folder: Path, created: FirstRun | None, new_password: str | None
) -> str:
    """What ``up`` prints at start: where it runs, how to sign in, and how to get a key."""
    url = settings.public_url
    lines = [
        f"Modelport is running at {url} (data in {folder})",
        f"Web UI: {url}/ui/",
    ]
    if created is not None:
        lines += ["", f"Admin sign-in: {ADMIN_EMAIL}"]
        if created.password:
            lines += [f"Admin password (shown once, store it now): {created.password}"]
        lines += [
            "",
            "The admin's API keys (shown once, store them now):",
            f"  Account key (control API, the CLI's MODELPORT_API_KEY): {created.keys.account}",
            f"  Inference key (calls models): {created.keys.inference}",
            "",
            "Use them from this terminal:",
            f"  export MODELPORT_URL={url} MODELPORT_API_KEY={created.keys.account}",
            f"  export MODELPORT_INFERENCE_KEY={created.keys.inference}",
            "  modelport upload model.onnx",
            "Or with curl:",
            '  curl -H "Authorization: Bearer $MODELPORT_API_KEY" \\',
            "       -F file=@model.onnx -F modelName=demo \\",
            f"       {url}/api/v1/models",
            '  curl -H "Authorization: Bearer $MODELPORT_INFERENCE_KEY" \\',
            "       -H 'Content-Type: application/json' \\",
            "       -d '{\"inputData\": [[...]]}' <endpointUrl>/predict",
            "  (rows of your model's features: the model's page in the web UI shows an input "
            "that fits)",
        ]
        return "\n".join(lines)
    if new_password is not None:
        lines += [f"New password of {ADMIN_EMAIL} (shown once): {new_password}"]
    lines += [
        "",
        f"Sign in to the web UI as {ADMIN_EMAIL} with the admin password (forgotten: restart with",
        "`modelport up --reset-admin-password`). API keys are shown only when created; for a new",
        f"one, create it in the web UI (Keys) or run: modelport login --url {url} --email "
        + ADMIN_EMAIL,
    ]
    return "\n".join(lines)
