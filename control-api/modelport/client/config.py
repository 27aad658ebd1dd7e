"""Where the CLI keeps the server URL and API keys: ``$XDG_CONFIG_HOME/modelport/config.json``.

``key`` is the account key (the control API); ``inference_key`` the key ``predict`` sends to model
endpoints. Flags and the ``MODELPORT_URL`` / ``MODELPORT_API_KEY`` / ``MODELPORT_INFERENCE_KEY``
environment variables win over the file. The file holds secrets, so it is written with mode 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "modelport" / "config.json"


@dataclass
class Config:
    url: str = DEFAULT_URL
    key: str | None = None
    inference_key: str | None = None


def load(path: Path | None = None) -> Config:
    path = path or config_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return Config()
    return Config(
        url=str(raw.get("url") or DEFAULT_URL),
        key=raw.get("key"),
        inference_key=raw.get("inference_key"),
    )


def save(config: Config, path: Path | None = None) -> Path:
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(config), handle)
    os.replace(tmp, path)
    return path
