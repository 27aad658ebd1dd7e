"""Every registered format is wired through upload, scan and load, from the registry alone."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
from modelport.core import formats
from modelport.core.formats import (
    SNIFF_BYTES,
    FormatMismatch,
    FormatSpec,
    ModelFormat,
    NotServable,
    ensure_servable,
    format_from_name,
    registered,
    resolve_format,
    sniff,
    spec_for,
)
from modelport.core.scan import Outcome, scan
from modelport.runtime.loaders import ServedModel, load_model

from testing.models import ModelFile

FORMATS = list(ModelFormat)


def tiny_model(model_files: dict[str, ModelFile], fmt: ModelFormat) -> ModelFile:
    servable = [mf for mf in model_files.values() if mf.format is fmt and mf.servable]
    assert servable, f"testing/models.py has no tiny {fmt.value} model"
    return servable[0]


def test_every_format_has_exactly_one_family_module() -> None:
    owners = [fmt for spec in registered() for fmt in spec.formats]
    assert sorted(owners) == sorted(FORMATS)
    assert tuple(f".{fmt.value}" for fmt in FORMATS) == formats.SUPPORTED_EXTENSIONS


@pytest.mark.parametrize("spec", registered(), ids=lambda spec: spec.name)
def test_extensions_resolve_to_their_family(spec: FormatSpec) -> None:
    for fmt, ext in zip(spec.formats, spec.extensions, strict=True):
        assert format_from_name(f"model{ext}") is fmt
        assert format_from_name(f"MODEL{ext.upper()}") is fmt
        assert spec_for(fmt) is spec
        assert fmt.family is spec.family


@pytest.mark.parametrize("spec", registered(), ids=lambda spec: spec.name)
def test_scanner_and_loader_named_by_the_registry_exist(spec: FormatSpec) -> None:
    module, _, function = spec.scanner.partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    loader = importlib.import_module(spec.loader)
    assert callable(loader.load)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_a_tiny_model_is_recognised_scanned_and_loaded(
    fmt: ModelFormat, model_files: dict[str, ModelFile], monkeypatch: pytest.MonkeyPatch
) -> None:
    mf = tiny_model(model_files, fmt)
    spec = spec_for(fmt)
    head = mf.path.read_bytes()[:SNIFF_BYTES]

    # Upload: the name and the content agree, and the file can be served.
    assert resolve_format(mf.path.name, head)[0] is fmt
    assert sniff(head).container in spec.containers
    ensure_servable(mf.path, fmt)

    # Scan: the scanner the registry names is the one that runs, and it passes the file.
    module_name, _, function = spec.scanner.partition(":")
    module = importlib.import_module(module_name)
    real = getattr(module, function)
    calls: list[str] = []

    def spy(*args: Any) -> Any:
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(module, function, spy)
    verdict = scan(mf.path)
    assert calls == [str(mf.path)]
    assert verdict.outcome is Outcome.SAFE, verdict.findings
    assert verdict.format == fmt.value
    monkeypatch.undo()

    # Load: through the runtime's one entry point, behind the scanner's gate; it predicts.
    model = load_model(mf.path.read_bytes(), fmt)
    assert isinstance(model, ServedModel)
    assert mf.sample_input is not None and mf.expected_output is not None
    first_input = model.signature.inputs[0].name
    got = model.predict({first_input: mf.sample_input}, [mf.output_name])[mf.output_name]
    np.testing.assert_allclose(got, mf.expected_output, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_upload_refuses_a_name_of_another_family(
    fmt: ModelFormat, model_files: dict[str, ModelFile]
) -> None:
    mf = tiny_model(model_files, fmt)
    head = mf.path.read_bytes()[:SNIFF_BYTES]
    for other in FORMATS:
        if other.family is fmt.family:
            continue
        with pytest.raises(FormatMismatch) as info:
            resolve_format(f"model.{other.value}", head)
        assert info.value.details == {"claimed": other.value, "detected": fmt.family.value}


def test_a_torch_state_dict_is_not_servable(torch_model_files: dict[str, ModelFile]) -> None:
    mf = torch_model_files["state_dict_pth"]
    assert scan(mf.path).outcome is Outcome.SAFE
    with pytest.raises(NotServable) as info:
        ensure_servable(mf.path, mf.format)
    assert info.value.code == "state_dict_not_servable"
    assert "torch.jit" in info.value.details["howToExport"]
