"""Format detection from content, and agreement between a file's name and its content."""

from __future__ import annotations

import io
import pickle
import zipfile

import pytest
from modelport.core.formats import (
    SNIFF_BYTES,
    Container,
    Family,
    FormatMismatch,
    ModelFormat,
    UnsupportedFormat,
    format_from_name,
    resolve_format,
    sniff,
)


def _joblib(compress: object) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump({"a": [1, 2]}, buf, compress=compress)  # type: ignore[arg-type]
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
    return buf.getvalue()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickles(protocol: int) -> None:
    found = sniff(pickle.dumps({"a": 1}, protocol=protocol)[:SNIFF_BYTES])
    assert (found.container, found.family) == (Container.PICKLE, Family.PICKLE)


@pytest.mark.parametrize(
    ("compress", "container"),
    [(("zlib", 3), Container.ZLIB), (("gzip", 3), Container.GZIP), (("bz2", 3), Container.BZ2),
     (("xz", 3), Container.XZ), (("lzma", 3), Container.LZMA), (("lz4", 3), Container.LZ4)],
)  # fmt: skip
def test_compressed_joblib(compress: object, container: Container) -> None:
    found = sniff(_joblib(compress)[:SNIFF_BYTES])
    assert (found.container, found.family) == (container, Family.PICKLE)


def test_zip_hdf5_onnx_and_legacy_torch() -> None:
    assert sniff(_zip()).family is Family.TORCH
    assert sniff(b"\x89HDF\r\n\x1a\n" + b"\x00" * 8).family is Family.HDF5
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    data = helper.make_model(graph).SerializeToString()
    assert sniff(data).family is Family.ONNX
    legacy = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    assert sniff(legacy).family is Family.TORCH
    _ = onnx


def test_unknown_and_empty() -> None:
    assert sniff(b"").family is None
    assert sniff(b"hello world, not a model").family is None


def test_names() -> None:
    assert format_from_name("Model.PKL") is ModelFormat.PKL
    assert format_from_name("x.pth").family is Family.TORCH
    with pytest.raises(UnsupportedFormat) as info:
        format_from_name("model.exe")
    assert info.value.status == 400


def test_name_and_content_must_agree() -> None:
    fmt, found = resolve_format("m.joblib", _joblib(("xz", 3)))
    assert fmt is ModelFormat.JOBLIB and found.container is Container.XZ
    with pytest.raises(FormatMismatch) as info:
        resolve_format("m.onnx", pickle.dumps(1))
    assert info.value.details == {"claimed": "onnx", "detected": "pickle"}
    with pytest.raises(FormatMismatch):
        resolve_format("m.pt", b"plain text")


def _keras_archive(first: str = "metadata.json") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in (first, *(n for n in ("metadata.json", "config.json") if n != first)):
            z.writestr(name, b"{}")
    return buf.getvalue()


@pytest.mark.parametrize("first", ["metadata.json", "config.json", "model.weights.h5"])
def test_a_keras_archive_is_told_from_a_torch_zip_by_its_members(first: str) -> None:
    found = sniff(_keras_archive(first))
    assert (found.container, found.family, found.format) == (
        Container.ZIP,
        Family.KERAS,
        ModelFormat.KERAS,
    )
    assert first in found.detail
    assert sniff(_zip()).family is Family.TORCH
    # A top-level member of another name is no Keras archive.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.pkl", b"")
    assert sniff(buf.getvalue()).family is Family.TORCH


def test_keras_archive_names_and_contents_must_agree() -> None:
    fmt, found = resolve_format("m.keras", _keras_archive())
    assert (fmt, found.family) == (ModelFormat.KERAS, Family.KERAS)
    cases = [
        ("m.keras", _zip(), "torch"),
        ("m.pt", _keras_archive(), "keras"),
        ("m.h5", _keras_archive(), "keras"),
        ("m.keras", b"\x89HDF\r\n\x1a\n" + b"\x00" * 8, "hdf5"),
    ]
    for name, content, detected in cases:
        with pytest.raises(FormatMismatch) as info:
            resolve_format(name, content)
        assert info.value.details == {"claimed": name.split(".")[1], "detected": detected}
        assert f"named as {name.split('.')[1]}" in info.value.message
        assert f"its content is {detected}" in info.value.message
