"""The Kubernetes client stays out of the runtime: within core only ``kube.py`` imports the
``kubernetes`` package (which the runtime extra does not install), and the runtime never imports
``modelport.core.kube``."""

from __future__ import annotations

from pathlib import Path

from tests.operator.test_layering import imports

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core" / "modelport" / "core"
RUNTIME = ROOT / "runtime-image" / "modelport" / "runtime"


def test_only_kube_imports_kubernetes_in_core() -> None:
    users = sorted(
        str(p.relative_to(CORE))
        for p in CORE.rglob("*.py")
        if any(n.split(".")[0] == "kubernetes" for n in imports(p))
    )
    assert users == ["kube.py"]


def test_the_runtime_never_imports_the_client() -> None:
    users = [
        str(p.relative_to(RUNTIME))
        for p in RUNTIME.rglob("*.py")
        if any(n.startswith("modelport.core.kube") for n in imports(p))
    ]
    assert users == []
