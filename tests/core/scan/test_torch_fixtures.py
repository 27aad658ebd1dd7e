"""Files written by several torch releases (testing/torch_fixtures, made by its make.py): the
scanner accepts what those releases write, and the runtime serves what the installed torch can
load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modelport.core.formats import ModelFormat, NotServable, ensure_servable
from modelport.core.scan import Outcome, scan

FOLDER = Path(__file__).parents[3] / "testing" / "torch_fixtures"
MANIFEST: dict[str, Any] = json.loads((FOLDER / "manifest.json").read_text())
#: Releases whose torch.export.save wrote the legacy layout that current torch cannot load.
LEGACY_EXPORT = {"2.5.1"}
FIXTURES = [
    (version, kind, name)
    for version, entry in sorted(MANIFEST.items())
    for kind, name in sorted(entry["files"].items())
]


def test_fixtures_come_from_at_least_two_releases() -> None:
    assert len(MANIFEST) >= 2
    for _, _, name in FIXTURES:
        assert (FOLDER / name).stat().st_size < 64 << 10


def _format(name: str) -> ModelFormat:
    return ModelFormat.PT2 if name.endswith(".pt2") else ModelFormat.PT


@pytest.mark.parametrize(("version", "kind", "name"), FIXTURES, ids=[f[2] for f in FIXTURES])
def test_scanner_accepts_what_each_release_writes(version: str, kind: str, name: str) -> None:
    verdict = scan(FOLDER / name)
    if kind == "export" and version in LEGACY_EXPORT:
        assert verdict.outcome is Outcome.UNSAFE
        assert [f.code.value for f in verdict.findings] == ["unsupported_format"]
        return
    assert verdict.outcome is Outcome.SAFE, verdict.findings
    assert verdict.format == _format(name).value


@pytest.mark.parametrize(
    ("version", "name"),
    [(v, n) for v, k, n in FIXTURES if k == "state_dict"],
    ids=[n for _, k, n in FIXTURES if k == "state_dict"],
)
def test_state_dicts_are_safe_but_not_servable(version: str, name: str) -> None:
    with pytest.raises(NotServable) as info:
        ensure_servable(FOLDER / name, ModelFormat.PT)
    assert info.value.code == "state_dict_not_servable"


SERVABLE = [
    (v, n)
    for v, k, n in FIXTURES
    if k == "torchscript" or (k == "export" and v not in LEGACY_EXPORT)
]


@pytest.mark.parametrize(("version", "name"), SERVABLE, ids=[n for _, n in SERVABLE])
def test_runtime_loads_and_predicts(version: str, name: str) -> None:
    pytest.importorskip("torch")
    from modelport.runtime.loaders import load_model

    path = FOLDER / name
    ensure_servable(path, _format(name))
    model = load_model(path.read_bytes(), _format(name))
    rows = np.asarray(MANIFEST[version]["input"], dtype=np.float32)
    output = model.signature.output_names[0]
    got = model.predict({model.signature.inputs[0].name: rows}, [output])[output]
    np.testing.assert_allclose(got, MANIFEST[version]["output"], rtol=1e-5, atol=1e-6)
