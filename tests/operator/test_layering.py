"""The operator's layering, checked on the source: handlers → reconcile → manifests → k8s.

Like an import-linter contract, but with ``ast`` so it needs no extra tool.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "modelport" / "operator"
SPEC = ROOT / "core" / "modelport" / "core" / "spec.py"
OP = "modelport.operator"

#: Pure modules: no I/O, no clients, no framework.
PURE = ("manifests", "drift", "status", "settings", "policy")
IO_MODULES = {
    "kopf",
    "kubernetes",
    "aiohttp",
    "urllib3",
    "requests",
    "socket",
    "subprocess",
    "asyncio",
    "http",
    "urllib",
    "os",
}


def imports(path: Path) -> set[str]:
    """Every module `path` imports (``from a.b import c`` counts as a.b and a.b.c)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def module(name: str) -> set[str]:
    return imports(PACKAGE / f"{name}.py")


def all_modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_do_no_io(name: str) -> None:
    found = module(name)
    assert not top(found) & IO_MODULES, f"{name} imports {top(found) & IO_MODULES}"
    for layer in ("k8s", "reconcile", "handlers", "main", "leader"):
        assert f"{OP}.{layer}" not in found, f"{name} imports {layer}"


def test_only_k8s_talks_kubernetes() -> None:
    users = [m for m in all_modules() if "kubernetes" in top(module(m))]
    assert users == ["k8s"]


def test_k8s_is_the_bottom_layer() -> None:
    found = module("k8s")
    assert not {f"{OP}.{n}" for n in ("manifests", "reconcile", "handlers", "status")} & found
    assert "kopf" not in top(found)


def test_only_handlers_and_main_use_kopf() -> None:
    users = [m for m in all_modules() if "kopf" in top(module(m))]
    assert users == ["handlers", "main"]


def test_handlers_never_touch_the_client() -> None:
    found = module("handlers")
    assert f"{OP}.k8s" not in found
    assert f"{OP}.leader" not in found
    assert "kubernetes" not in top(found)


def test_reconcile_decides_without_kopf() -> None:
    found = module("reconcile")
    assert "kopf" not in top(found)
    assert f"{OP}.handlers" not in found


def test_only_settings_reads_the_environment() -> None:
    for name in all_modules():
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                pytest.fail(f"{name}.py reads the environment (line {node.lineno})")


def test_the_shared_spec_stays_framework_free() -> None:
    found = top(imports(SPEC))
    assert not found & {"kopf", "kubernetes", "fastapi", "sqlalchemy"}
    assert not {n for n in imports(SPEC) if n.startswith(OP)}
