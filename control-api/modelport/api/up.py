"""``modelport up``: the whole system on one machine, no cluster, no external services.

Under a data folder (default ``$XDG_DATA_HOME/modelport``, i.e. ``~/.local/share/modelport``):
``modelport.db`` (SQLite), ``artifacts/`` (encrypted models), ``master.key`` and ``jwt.secret``
(generated once, mode 0600), ``run/`` (key files and logs of the local runtimes). The API listens
on 127.0.0.1 only and answers only requests addressed to 127.0.0.1, localhost or [::1] with its
port (DNS rebinding); the first run creates an admin and prints their API key once.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from modelport.api.settings import ApiSettings

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


def first_admin_key(settings: ApiSettings) -> str | None:
    """Create the admin and a key on the first run; None when users exist already."""
    from modelport.api.db.session import Database
    from modelport.api.db.tables import User
    from modelport.api.services import keys
    from sqlalchemy import func, select

    db = Database(settings.database_url)
    try:
        with db.sessions() as session:
            if session.scalar(select(func.count()).select_from(User)):
                return None
            _, key = keys.create_admin_with_key(
                session,
                settings=settings,
                email=ADMIN_EMAIL,
                password=None,
                key_name="modelport up",
            )
            return key
    finally:
        db.dispose()


def run(data_dir: Path | None = None, *, port: int = 8000) -> None:
    """Migrate, create the first admin, then serve on 127.0.0.1 until interrupted."""
    import uvicorn
    from modelport.api.app import create_app
    from modelport.api.db.session import migrate

    os.umask(0o077)  # the database, artifacts and key files are for this user alone
    folder = (data_dir or default_data_dir()).expanduser().resolve()
    settings = embedded_settings(folder, port=port)
    migrate(settings.database_url)
    key = first_admin_key(settings)
    _banner(settings, folder, key)
    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=port, proxy_headers=False, log_level="warning"
    )


def _banner(settings: ApiSettings, folder: Path, key: str | None) -> None:
    url = settings.public_url
    lines = [f"Modelport is running at {url} (data in {folder})"]
    if key is not None:
        lines += [
            "",
            f"Admin API key (shown once, store it now): {key}",
            "",
            "Upload a model and call it:",
            f"  curl -H 'Authorization: Bearer {key}' -F file=@model.onnx -F modelName=demo \\",
            f"       {url}/api/v1/models",
            f"  curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\",
            "       -d '{\"inputData\": [[1.0, 2.0]]}' <endpointUrl>/predict",
        ]
    print("\n".join(lines), flush=True)
