"""The tree's architecture, checked on the source with ``ast`` (like import-linter contracts).

docs/architecture.md draws the paths these rules keep straight. The operator's own layering
(handlers → reconcile → manifests → k8s) is checked in tests/operator/test_layering.py, the
runtime's (endpoints → protocols → data plane) in tests/runtime/test_layering.py.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = {
    "core": ROOT / "core" / "modelport" / "core",
    "api": ROOT / "control-api" / "modelport" / "api",
    "client": ROOT / "control-api" / "modelport" / "client",
    "operator": ROOT / "operator" / "modelport" / "operator",
    "runtime": ROOT / "runtime-image" / "modelport" / "runtime",
}
PRODUCT = [p for root in SOURCE_ROOTS.values() for p in sorted(root.rglob("*.py"))]
EVERYTHING = PRODUCT + [
    p for folder in ("testing", "e2e", "benchmarks") for p in sorted((ROOT / folder).rglob("*.py"))
]


def dotted(path: Path) -> str:
    """``control-api/modelport/api/routes/models.py`` → ``modelport.api.routes.models``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] in ("core", "control-api", "operator", "runtime-image"):
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports; ``from a.b import c`` counts as ``a.b`` and ``a.b.c``.

    Relative imports are resolved against the module's own package."""
    package = dotted(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def offenders(paths: list[Path], *forbidden: str) -> list[str]:
    return [
        f"{p.relative_to(ROOT)} imports {name}"
        for p in paths
        for name in sorted(imports(p))
        if under(name, *forbidden)
    ]


def in_package(package: str) -> list[Path]:
    return [p for p in PRODUCT if under(dotted(p), package)]


# --- the components ----------------------------------------------------------------------------


def test_core_imports_no_component() -> None:
    assert not offenders(
        in_package("modelport.core"),
        "modelport.api",
        "modelport.client",
        "modelport.operator",
        "modelport.runtime",
    )


@pytest.mark.parametrize(
    ("component", "others"),
    [
        ("modelport.api", ("modelport.operator", "modelport.runtime")),
        ("modelport.operator", ("modelport.api", "modelport.client", "modelport.runtime")),
        ("modelport.runtime", ("modelport.api", "modelport.client", "modelport.operator")),
        ("modelport.client", ("modelport.api", "modelport.operator", "modelport.runtime")),
    ],
)
def test_no_deployable_imports_another(component: str, others: tuple[str, ...]) -> None:
    assert not offenders(in_package(component), *others)


def test_the_runtime_never_imports_the_kubernetes_client_or_the_database() -> None:
    """The runtime image installs neither (the `runtime` extra); core modules it uses must not
    pull them in either."""
    runtime_side = in_package("modelport.runtime")
    assert not offenders(runtime_side, "kubernetes", "sqlalchemy", "kopf", "fastapi")


def test_nothing_imports_tests() -> None:
    assert not offenders(EVERYTHING, "tests")


# --- the control API: routes → services → db / deployers -----------------------------------------


def test_routes_use_no_orm() -> None:
    routes = in_package("modelport.api.routes")
    assert routes
    assert not offenders(routes, "sqlalchemy", "modelport.api.db.tables")


def test_no_upward_imports_in_the_api() -> None:
    """Lower layers never reach up: db and deployers know nothing of services or routes, and
    services know nothing of routes."""
    assert not offenders(
        in_package("modelport.api.deployers"),
        "modelport.api.services",
        "modelport.api.db",
        "modelport.api.routes",
    )
    assert not offenders(
        in_package("modelport.api.db"), "modelport.api.services", "modelport.api.routes"
    )
    assert not offenders(in_package("modelport.api.services"), "modelport.api.routes")


def test_services_know_nothing_of_http_requests() -> None:
    assert not offenders(
        in_package("modelport.api.services"), "starlette.requests", "fastapi", "python_multipart"
    )


def test_only_the_multipart_module_parses_multipart() -> None:
    users = {
        str(p.relative_to(ROOT))
        for p in EVERYTHING
        if any(under(n, "python_multipart", "multipart") for n in imports(p))
    }
    assert users == {"control-api/modelport/api/multipart.py"}


# --- formats: one registry -----------------------------------------------------------------------

_EXTENSION = re.compile(r"\.?(pkl|joblib|h5|hdf5|keras|onnx|pt|pth|pt2)", re.IGNORECASE)
FORMATS = "modelport.core.formats"


def _docstrings(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            ids.add(id(first.value))
    return ids


def extension_mappings(path: Path) -> Iterator[str]:
    """String literals that are a bare model-file extension, and tables keyed by format."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and node.value.startswith(".")
            and _EXTENSION.fullmatch(node.value)
        ):
            yield f"line {node.lineno}: the extension {node.value!r}"
        if isinstance(node, ast.List | ast.Tuple | ast.Set) and len(node.elts) > 1:
            values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(values) == len(node.elts) and all(
                isinstance(v, str) and _EXTENSION.fullmatch(v) for v in values
            ):
                yield f"line {node.lineno}: a list of formats {values!r}"
        if isinstance(node, ast.Dict) and any(
            isinstance(k, ast.Attribute)
            and isinstance(k.value, ast.Name)
            and k.value.id in ("ModelFormat", "Family")
            for k in node.keys
        ):
            yield f"line {node.lineno}: a table keyed by format"


def test_only_the_format_registry_maps_extensions() -> None:
    found = {
        str(p.relative_to(ROOT)): list(extension_mappings(p))
        for p in PRODUCT
        if not under(dotted(p), FORMATS)
    }
    assert {k: v for k, v in found.items() if v} == {}
