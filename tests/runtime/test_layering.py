"""The runtime's request path, checked on the source: endpoints → protocols → data plane.

Endpoints reach the protocols only through the package's public names and each protocol's
``decode``/``encode``; the codec internals (``protocols.tensors``, private helpers) stay behind.
"""

from __future__ import annotations

import ast
from pathlib import Path

from modelport.runtime import protocols

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "runtime-image" / "modelport" / "runtime"
PACKAGE = "modelport.runtime.protocols"
PROTOCOLS = ("v2", "v1", "predict")


def test_endpoints_import_only_the_public_protocols_interface() -> None:
    tree = ast.parse((RUNTIME / "app.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not [a.name for a in node.names if a.name.startswith(PACKAGE)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(PACKAGE):
                assert node.module == PACKAGE, node.module
                assert {a.name for a in node.names} <= set(protocols.__all__)
            elif node.module == "modelport.runtime":
                assert {a.name for a in node.names} & {"codec", "signature"} == set()


def test_endpoints_call_only_decode_and_encode() -> None:
    tree = ast.parse((RUNTIME / "app.py").read_text())
    used = {
        (node.value.attr, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "protocols"
    }
    assert {protocol for protocol, _ in used} == set(PROTOCOLS)
    assert {call for _, call in used} == {"decode", "encode"}


def test_every_protocol_has_the_same_shape() -> None:
    for name in PROTOCOLS:
        module = getattr(protocols, name)
        assert callable(module.decode) and callable(module.encode), name
