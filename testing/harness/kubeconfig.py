"""Kubeconfig files for the test cluster: the admin's client certificate, or a bearer token."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

CLUSTER_NAME = "modelport-e2e"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def kubeconfig(
    server: str, ca_cert: Path, user: str, credentials: dict[str, str]
) -> dict[str, Any]:
    """A one-context kubeconfig for `user` with the given `users[].user` credentials."""
    context = f"{user}@{CLUSTER_NAME}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": context,
        "preferences": {},
    }


def client_cert_kubeconfig(
    server: str, ca_cert: Path, user: str, cert: Path, key: Path
) -> dict[str, Any]:
    credentials = {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}
    return kubeconfig(server, ca_cert, user, credentials)


def token_kubeconfig(server: str, ca_cert: Path, user: str, token: str) -> dict[str, Any]:
    return kubeconfig(server, ca_cert, user, {"token": token})


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    """Write `config` readable by its owner only (it holds credentials)."""
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
