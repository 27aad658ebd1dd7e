"""The ``.keras`` archive rules: its three members only, the config walked as for ``.h5``, the
weights file holding weights alone, and HDF5 found only where the weights member begins."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pytest
from modelport.core.formats.keras import HDF5_SIGNATURE
from modelport.core.scan import Outcome, Verdict, scan

DENSE = {"class_name": "Sequential", "config": {"name": "s", "layers": [
    {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
     "config": {"name": "d", "units": 2, "activation": "relu"}}]}}  # fmt: skip
METADATA = {"keras_version": "3.15.1", "date_saved": "2026-11-30@12:00:00"}


def weights(**attrs: Any) -> bytes:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        group = f.create_group("layers/dense/vars")
        group.attrs["name"] = "d"
        group["0"] = [[1.0, 2.0]]
        for key, value in attrs.items():
            f.attrs[key] = value
    return buf.getvalue()


def archive(
    members: list[tuple[str, bytes]] | None = None,
    *,
    config: dict[str, Any] | None = None,
    metadata: object = None,
    weights_file: bytes | None = None,
) -> bytes:
    if members is None:
        members = [
            ("metadata.json", json.dumps(metadata if metadata is not None else METADATA).encode()),
            ("config.json", json.dumps(config or DENSE).encode()),
            ("model.weights.h5", weights_file or weights()),
        ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def scanned(data: bytes) -> Verdict:
    return scan(data, expected_format="keras")


def codes(verdict: Verdict) -> set[str]:
    return {f.code.value for f in verdict.findings}


def test_a_minimal_archive_is_safe() -> None:
    verdict = scanned(archive())
    assert verdict.outcome is Outcome.SAFE, verdict.findings
    assert (verdict.format, verdict.container) == ("keras", "zip")


@pytest.mark.parametrize("extra", ["assets/vocabulary.txt", "model.weights.npz", "payload.pkl"])
def test_any_other_member_is_named_and_refused(extra: str) -> None:
    base = zipfile.ZipFile(io.BytesIO(archive()))
    members = [(n, base.read(n)) for n in base.namelist()] + [(extra, b"x")]
    verdict = scanned(archive(members))
    assert verdict.outcome is Outcome.UNSAFE
    [finding] = verdict.findings
    assert finding.code.value == "unexpected_member"
    assert repr(extra) in finding.message and "config.json" in finding.message


def test_a_missing_member_is_refused() -> None:
    members = [("metadata.json", json.dumps(METADATA).encode()), ("config.json", b"{}")]
    verdict = scanned(archive(members))
    assert codes(verdict) == {"malformed"}
    assert "model.weights.h5" in verdict.findings[0].message


@pytest.mark.parametrize("metadata", [[1, 2], {"date_saved": "x"}, {"keras_version": 3}])
def test_metadata_must_be_an_object_with_a_version(metadata: object) -> None:
    verdict = scanned(archive(metadata=metadata))
    assert codes(verdict) == {"malformed"}
    assert verdict.findings[0].location.endswith("metadata.json")


def test_the_config_is_walked_as_an_h5_model_config_is() -> None:
    lam = {"class_name": "Lambda", "config": {"function": {"class_name": "__lambda__"}}}
    config = {"class_name": "Sequential", "config": {"layers": [DENSE, lam]}}
    verdict = scanned(archive(config=config))
    assert codes(verdict) == {"keras_lambda"}
    assert ":config.json:" in verdict.findings[0].location


def test_the_weights_file_carries_no_model_config() -> None:
    verdict = scanned(archive(weights_file=weights(model_config=json.dumps(DENSE))))
    assert codes(verdict) == {"unexpected_member"}
    assert "model_config" in verdict.findings[0].message


def test_weights_attributes_are_plain_values() -> None:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["data"] = [1.0]
        f.attrs.create("points_to", f["data"].ref, dtype=h5py.ref_dtype)
    verdict = scanned(archive(weights_file=buf.getvalue()))
    assert codes(verdict) == {"malformed"}
    assert "points_to" in verdict.findings[0].message


def test_the_weights_file_follows_the_hdf5_rules() -> None:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["leak"] = h5py.ExternalLink("/etc/passwd", "/")
    verdict = scanned(archive(weights_file=buf.getvalue()))
    assert codes(verdict) == {"hdf5_link"}


def test_weights_that_begin_at_an_hdf5_offset_are_not_a_polyglot() -> None:
    """HDF5 readers also look at 512, 1024, 2048, 4096: a real archive's weights may start there."""
    plain = archive()
    start = plain.index(HDF5_SIGNATURE)
    padded = dict(DENSE, pad="x" * (4096 - start - len('"pad": "", ')))
    data = archive(config=padded)
    assert data[4096:4104] == HDF5_SIGNATURE
    assert scanned(data).outcome is Outcome.SAFE, scanned(data).findings


def test_hdf5_anywhere_else_at_those_offsets_is_a_polyglot() -> None:
    """A second HDF5 file hidden in a dataset's bytes, placed where HDF5 readers look."""
    import h5py

    def weights_with(raw: bytes) -> tuple[bytes, int]:
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            f.create_dataset("hidden", data=np.frombuffer(raw, dtype=np.uint8))
            offset = f["hidden"].id.get_offset()
        return buf.getvalue(), offset

    blank, offset = weights_with(bytes(8192))
    start = archive(weights_file=blank).index(HDF5_SIGNATURE)
    at = 4096 - start - offset
    crafted, again = weights_with(bytes(at) + HDF5_SIGNATURE + bytes(8192 - at - 8))
    assert again == offset
    data = archive(weights_file=crafted)
    assert data[4096:4104] == HDF5_SIGNATURE
    verdict = scanned(data)
    assert codes(verdict) == {"polyglot"}
    assert "offset 4096" in verdict.findings[0].message


def test_a_zip_that_breaks_the_strict_reader_is_refused() -> None:
    data = archive() + b"trailing"
    verdict = scanned(data)
    assert verdict.outcome is Outcome.UNSAFE
    assert codes(verdict) <= {"zip_violation", "unsupported_format", "format_mismatch"}
