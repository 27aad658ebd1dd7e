"""ONNX models: parsed with the onnx package, never with external data.

Refused: tensors stored outside the file (external data), operator domains other than the
standard ones, opsets newer than the installed onnx knows, operators the declared opset does not
define, and model-local functions whose bodies break the same rules. Subgraphs of If, Loop and
Scan (any GRAPH or GRAPHS attribute) are checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelport.core.scan.limits import Deadline, LimitExceeded, Limits
from modelport.core.scan.verdict import Code, Finding

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
_MAX_GRAPHS = 10_000


def scan_onnx(data: memoryview, limits: Limits, deadline: Deadline, location: str) -> list[Finding]:
    try:
        import onnx
        import onnx.defs
    except ImportError as exc:
        raise ModuleNotFoundError("onnx is not installed; cannot scan .onnx files") from exc
    try:
        model = onnx.load_model_from_string(bytes(data))
    except Exception as exc:  # protobuf raises DecodeError and friends
        return [Finding(Code.ONNX_INVALID, location, f"not an ONNX model ({type(exc).__name__})")]
    findings: list[Finding] = []
    walk = _Walk(
        opsets=_opsets(model, onnx, location, findings),
        local={(f.domain, f.name) for f in model.functions},
        onnx=onnx,
        findings=findings,
        limits=limits,
        deadline=deadline,
    )
    for func in model.functions:
        walk.nodes(func.node, f"{location}:function {func.name}")
    walk.graph(model.graph, f"{location}:graph")
    if not findings:
        try:
            onnx.checker.check_model(model)
        except Exception as exc:  # onnx.checker.ValidationError and C++ errors
            findings.append(Finding(Code.ONNX_INVALID, location, f"checker: {str(exc)[:300]}"))
    return findings


def _opsets(model: Any, onnx: Any, location: str, findings: list[Finding]) -> dict[str, int]:
    opsets: dict[str, int] = {}
    for entry in model.opset_import:
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        if domain not in STANDARD_DOMAINS:
            if any(f.domain == domain for f in model.functions):
                continue  # the domain of model-local functions
            findings.append(
                Finding(Code.ONNX_CUSTOM_DOMAIN, location, f"imports operator domain {domain!r}")
            )
            continue
        latest = onnx.defs.onnx_opset_version() if domain == "" else _latest(onnx, domain)
        if entry.version < 1 or entry.version > latest:
            findings.append(
                Finding(Code.ONNX_OPSET, location, f"opset {domain or 'ai.onnx'} {entry.version}")
            )
            continue
        opsets[domain] = entry.version
    return opsets


def _latest(onnx: Any, domain: str) -> int:
    schemas = [s for s in onnx.defs.get_all_schemas_with_history() if s.domain == domain]
    return max((s.since_version for s in schemas), default=0)


@dataclass
class _Walk:
    """One model's walk: what it imports and defines, and the findings so far."""

    opsets: dict[str, int]
    local: set[tuple[str, str]]
    onnx: Any
    findings: list[Finding]
    limits: Limits
    deadline: Deadline

    def graph(self, graph: Any, where: str) -> None:
        """A graph and, breadth first, every subgraph its nodes carry."""
        pending = [(graph, where)]
        seen = 0
        while pending:
            g, gwhere = pending.pop()
            seen += 1
            if seen > _MAX_GRAPHS:
                raise LimitExceeded("max_depth", "too many ONNX subgraphs")
            for tensor in list(g.initializer) + [s.values for s in g.sparse_initializer]:
                _tensor(tensor, self.onnx, f"{gwhere}:initializer {tensor.name}", self.findings)
            pending.extend(self.nodes(g.node, gwhere))

    def nodes(self, nodes: Any, where: str) -> list[tuple[Any, str]]:
        """Checks `nodes` and their tensor attributes; returns the subgraphs they hold."""
        subgraphs: list[tuple[Any, str]] = []
        for node in nodes:
            nwhere = f"{where}:node {node.name or node.op_type}"
            self.node(node, nwhere)
            for attr in node.attribute:
                if attr.HasField("t"):
                    _tensor(attr.t, self.onnx, f"{nwhere}.{attr.name}", self.findings)
                for t in attr.tensors:
                    _tensor(t, self.onnx, f"{nwhere}.{attr.name}", self.findings)
                if attr.HasField("g"):
                    subgraphs.append((attr.g, f"{nwhere}.{attr.name}"))
                subgraphs.extend(
                    (g, f"{nwhere}.{attr.name}[{i}]") for i, g in enumerate(attr.graphs)
                )
        self.deadline.check()
        return subgraphs

    def node(self, node: Any, where: str) -> None:
        domain = "" if node.domain == "ai.onnx" else node.domain
        if (node.domain, node.op_type) in self.local:
            return
        if domain not in STANDARD_DOMAINS:
            self.findings.append(
                Finding(Code.ONNX_CUSTOM_DOMAIN, where, f"{node.op_type} from domain {domain!r}")
            )
            return
        version = self.opsets.get(domain)
        if version is None:
            self.findings.append(
                Finding(Code.ONNX_OPSET, where, f"domain {domain!r} is not imported")
            )
            return
        try:
            self.onnx.defs.get_schema(node.op_type, version, domain)
        except self.onnx.defs.SchemaError:
            self.findings.append(
                Finding(Code.ONNX_UNKNOWN_OP, where, f"{node.op_type} is not in opset {version}")
            )


def _tensor(tensor: Any, onnx: Any, where: str, findings: list[Finding]) -> None:
    if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
        findings.append(Finding(Code.ONNX_EXTERNAL_DATA, where, "tensor data lives outside"))
