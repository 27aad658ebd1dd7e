"""PyTorch models (``.pt``/``.pth``): TorchScript archives and ``torch.export`` programs;
``.pt2``: ``torch.export`` programs only.

A file made by ``torch.save`` (a ``state_dict`` or a pickled module) has no architecture that can
be rebuilt without the user's Python code, so it is refused with the way to export it.

Inputs are named after ``forward``'s parameters. A TorchScript archive declares no shapes or
dtypes; an optional ``modelport-signature.json`` extra file (saved with
``torch.jit.save(m, f, _extra_files={...})``) declares them, otherwise inputs are ``FP32`` of
unknown shape. A ``torch.export`` program declares its own shapes, dynamic dimensions as ``-1``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from modelport.core.formats import ModelFormat
from modelport.core.formats.torch import HOW_TO_EXPORT, TorchArchive, servable_kind
from modelport.runtime.loaders.base import ModelLoadError, ServedModel, Tensors, require
from modelport.runtime.loaders.gate import PickleGate
from modelport.runtime.signature import ModelSignature, TensorSpec, datatype_of

log = logging.getLogger("modelport.runtime")

SIGNATURE_FILE = "modelport-signature.json"


class StateDictRefused(ModelLoadError):
    code = "state_dict_not_servable"


def load(data: bytes, fmt: ModelFormat, *, gate: PickleGate) -> ServedModel:
    torch = require("torch", framework="PyTorch", extra="torch")
    gate.check(data, fmt)
    kind = servable_kind(data)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if fmt is ModelFormat.PT2 and kind is not TorchArchive.EXPORT:
        raise ModelLoadError(f"a .pt2 file must be a torch.export program, not a {kind} archive")
    if kind is TorchArchive.TORCHSCRIPT:
        return _load_torchscript(torch, data, device)
    if kind is TorchArchive.EXPORT:
        return _load_export(torch, data, device)
    raise StateDictRefused(_describe_saved(torch, data) + "; " + HOW_TO_EXPORT)


def _describe_saved(torch: Any, data: bytes) -> str:
    """Say what torch.save stored, using torch's weights-only (restricted) unpickler."""
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        return (
            "the file was written by torch.save and holds a pickled Python object (such as a "
            "whole nn.Module), which cannot be served without the code that defined it"
        )
    if isinstance(obj, dict):
        return (
            f"the file is a bare state_dict ({len(obj)} tensors): it holds weights but no "
            "architecture, so it cannot be served"
        )
    return f"the file was written by torch.save and holds a {type(obj).__name__}, not a model"


def _load_torchscript(torch: Any, data: bytes, device: str) -> ServedModel:
    extra = {SIGNATURE_FILE: ""}
    module = torch.jit.load(io.BytesIO(data), map_location=device, _extra_files=extra)
    module.eval()
    declared = extra[SIGNATURE_FILE]
    if declared:
        signature = _parse_signature(declared)
    else:
        args = [a.name for a in module.forward.schema.arguments][1:]  # drop self
        signature = ModelSignature(
            inputs=tuple(TensorSpec(name, "FP32", None) for name in args),
            outputs=(TensorSpec("output-0", "FP32", None),),
        )
    return TorchModel(module, signature, device=device, platform="pytorch_torchscript")


def _parse_signature(text: str | bytes) -> ModelSignature:
    try:
        doc = json.loads(text)
        return ModelSignature(
            inputs=tuple(_tensor_spec(t) for t in doc["inputs"]),
            outputs=tuple(_tensor_spec(t) for t in doc["outputs"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"{SIGNATURE_FILE} in the archive is not a valid signature: {exc}"
        ) from exc


def _tensor_spec(doc: dict[str, Any]) -> TensorSpec:
    shape = doc.get("shape")
    return TensorSpec(
        str(doc["name"]), str(doc["datatype"]), tuple(int(d) for d in shape) if shape else None
    )


def _load_export(torch: Any, data: bytes, device: str) -> ServedModel:
    program = torch.export.load(io.BytesIO(data))
    nodes = {n.name: n for n in program.graph.nodes}
    input_names = list(program.graph_signature.user_inputs)
    inputs = tuple(_spec_of(name, nodes[name].meta.get("val")) for name in input_names)
    output_node = next(n for n in program.graph.nodes if n.op == "output")
    user_outputs = list(program.graph_signature.user_outputs)
    values = list(output_node.args[0])[-len(user_outputs) :] if user_outputs else []
    outputs = tuple(
        _spec_of(f"output-{i}", getattr(v, "meta", {}).get("val")) for i, v in enumerate(values)
    )
    module = program.module()
    if device != "cpu":
        try:
            module = module.to(device)
        except Exception:
            log.warning("could not move the exported program to %s; serving on the CPU", device)
            device = "cpu"
    signature = ModelSignature(inputs=inputs, outputs=outputs)
    return TorchModel(module, signature, device=device, platform="pytorch_export")


def _spec_of(name: str, value: Any) -> TensorSpec:
    if value is None or not hasattr(value, "shape"):
        return TensorSpec(name, "FP32", None)
    shape = tuple(int(d) if isinstance(d, int) else -1 for d in value.shape)
    torch_dtype = str(value.dtype).removeprefix("torch.")
    datatype = "BOOL" if torch_dtype == "bool" else datatype_of(np.dtype(torch_dtype))
    return TensorSpec(name, datatype, shape)


class TorchModel(ServedModel):
    def __init__(
        self, module: Any, signature: ModelSignature, *, device: str, platform: str
    ) -> None:
        super().__init__(signature)
        self.module = module
        self.device = device
        self.platform = platform
        self._order = [s.name for s in signature.inputs]

    def predict(self, inputs: Tensors, outputs: Sequence[str]) -> dict[str, np.ndarray[Any, Any]]:
        import torch

        args = [
            torch.from_numpy(np.ascontiguousarray(inputs[n])).to(self.device) for n in self._order
        ]
        with torch.inference_mode():
            result = self.module(*args)
        if isinstance(result, dict):
            values = list(result.values())
        elif isinstance(result, list | tuple):
            values = list(result)
        else:
            values = [result]
        named = {f"output-{i}": v.detach().cpu().numpy() for i, v in enumerate(values)}
        if len(self.signature.outputs) == len(values):
            named = dict(zip(self.signature.output_names, named.values(), strict=True))
        return {name: named[name] for name in outputs}
