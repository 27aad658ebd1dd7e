"""Rendering the Modelport chart with the pinned helm binary of the test-cluster harness."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from testing.harness.binaries import ensure_binaries

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "modelport"
CI_VALUES = tuple(sorted((CHART_DIR / "ci").glob("*.yaml")))
#: The Kubernetes version `helm template` renders for (the test cluster's).
KUBE_VERSION = "1.36.3"

Manifest = dict[str, Any]


class HelmError(RuntimeError):
    """helm exited non-zero; the message carries its stderr."""

    def __init__(self, argv: list[str], stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} failed:\n{stderr}")
        self.stderr = stderr


@cache
def helm_binary() -> Path:
    """$MODELPORT_HELM, or the harness's pinned helm (built from Go modules on first use)."""
    if override := os.environ.get("MODELPORT_HELM"):
        return Path(override)
    return ensure_binaries() / "helm"


@cache
def _helm_home() -> Path:
    return Path(tempfile.mkdtemp(prefix="modelport-helm-"))


def helm(*args: str, kubeconfig: Path | None = None) -> str:
    """Run helm with private cache/config folders; return stdout, raise HelmError on failure."""
    home = _helm_home()
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    argv = [str(helm_binary()), *args]
    if kubeconfig is not None:
        argv.append(f"--kubeconfig={kubeconfig}")
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    if result.returncode != 0:
        raise HelmError(argv, result.stderr)
    return result.stdout


def set_args(values: Mapping[str, str]) -> list[str]:
    """`--set k=v` for each entry (keys use helm's dotted paths; helm infers the types)."""
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def template_text(
    *,
    release: str = "mp",
    namespace: str = "modelport",
    values_files: Iterable[Path] = (),
    set_values: Mapping[str, str] | None = None,
    extra: Iterable[str] = (),
) -> str:
    """The chart rendered by `helm template` as one YAML stream."""
    args = ["template", release, str(CHART_DIR), "--namespace", namespace]
    args += ["--kube-version", KUBE_VERSION]
    for path in values_files:
        args += ["--values", str(path)]
    args += set_args(set_values or {})
    return helm(*args, *extra)


def render(**kwargs: Any) -> list[Manifest]:
    """The chart rendered by `helm template`, parsed (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(template_text(**kwargs)) if doc]


def find(manifests: Iterable[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    """The one manifest of `kind` whose name ends with `name_suffix`."""
    found = [
        m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix)
    ]
    if len(found) != 1:
        names = [m["metadata"]["name"] for m in found]
        raise LookupError(f"expected one {kind} ending in {name_suffix!r}, found {names}")
    return found[0]


def pod_specs(manifests: Iterable[Manifest]) -> dict[str, Manifest]:
    """The pod spec of every workload, by `Kind/name`."""
    out: dict[str, Manifest] = {}
    for m in manifests:
        if m["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            out[f"{m['kind']}/{m['metadata']['name']}"] = m["spec"]["template"]["spec"]
    return out


def env_of(container: Manifest) -> dict[str, Any]:
    """A container's env as {name: value or valueFrom}."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
