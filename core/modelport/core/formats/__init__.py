"""Model formats: the one registry of what Modelport accepts, and telling formats apart from the
bytes rather than from the file name.

One module per family declares a :class:`FormatSpec`: the formats (extensions) it owns, how its
content is recognised, which scanner checks it, whether a safe file can be served, and which
runtime module loads it. The scanner, the upload and the runtime read this registry. Adding a
format is one module here (its ``SPEC``, listed in ``_SNIFF_ORDER``, and its ``ModelFormat``
member in ``spec.py``) plus one loader in ``modelport.runtime.loaders``;
``tests/core/test_format_registry.py`` then asks for a tiny model of it in ``testing/models.py``.

Seven upload formats fall into five families. ``pkl`` and ``joblib`` are both pickle streams
(joblib's possibly compressed), ``pt`` and ``pth`` are both PyTorch files (a zip archive or a legacy
pickle stream), ``h5`` is HDF5, ``keras`` is Keras 3's zip (told from a torch zip by its members),
``onnx`` is a protobuf ``ModelProto``. A file whose name and content name different families is
refused with both in the message.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from modelport.core.errors import BadInput
from modelport.core.formats import joblib, keras, onnx, pickle, torch
from modelport.core.formats.spec import (
    SNIFF_BYTES,
    Container,
    Family,
    FormatSpec,
    ModelFormat,
    NotServable,
    Sniffed,
)

__all__ = [
    "SNIFF_BYTES",
    "SUPPORTED_EXTENSIONS",
    "Container",
    "Family",
    "FormatMismatch",
    "FormatSpec",
    "ModelFormat",
    "NotServable",
    "Sniffed",
    "UnsupportedFormat",
    "ensure_servable",
    "extension",
    "format_for",
    "format_from_name",
    "registered",
    "resolve_format",
    "sniff",
    "spec_for",
]

#: Also the order :func:`sniff` asks the families in: a signature before a looser one that the
#: same bytes could match too (a legacy torch.save stream is a pickle as well; a zlib header can
#: start with a pickle opcode; a Keras archive is a zip that torch's recogniser takes too).
_SNIFF_ORDER: tuple[FormatSpec, ...] = (
    keras.SPEC, keras.ARCHIVE_SPEC, torch.SPEC, joblib.SPEC, onnx.SPEC, pickle.SPEC,
)  # fmt: skip
_BY_FORMAT: dict[ModelFormat, FormatSpec] = {f: s for s in _SNIFF_ORDER for f in s.formats}
_LISTED: tuple[FormatSpec, ...] = tuple(
    sorted(_SNIFF_ORDER, key=lambda spec: list(ModelFormat).index(spec.formats[0]))
)

SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(ext for spec in _LISTED for ext in spec.extensions)


def registered() -> tuple[FormatSpec, ...]:
    """Every registered family, in the order their formats are listed to users."""
    return _LISTED


def spec_for(fmt: ModelFormat) -> FormatSpec:
    return _BY_FORMAT[fmt]


def extension(filename: str) -> str:
    """A file name's extension as the registry reads it: lower case, no dot, ``""`` for none."""
    return PurePath(filename).suffix.lower().lstrip(".")


def format_for(ext: str) -> ModelFormat | None:
    """The registered format that owns an extension (``"pkl"``), or None."""
    return next((fmt for fmt in _BY_FORMAT if fmt.value == ext), None)


def ensure_servable(path: Path, fmt: ModelFormat) -> None:
    """Raise :class:`NotServable` for a scanned file the runtime cannot serve."""
    spec_for(fmt).ensure_servable(path, fmt)


def sniff(head: bytes) -> Sniffed:
    """Identify the container, family and format from the first bytes of a file."""
    if len(head) == 0:
        return Sniffed(Container.UNKNOWN, None, "empty file")
    for spec in _SNIFF_ORDER:
        found = spec.sniff(head)
        if found is not None:
            container, detail = found
            return Sniffed(container, spec.family, detail, spec.formats[0])
    return Sniffed(Container.UNKNOWN, None, "no known model signature")


def format_from_name(filename: str) -> ModelFormat:
    """The format an upload's file name claims, or a 400 listing the supported ones."""
    suffix = extension(filename)
    fmt = format_for(suffix)
    if fmt is None:
        raise UnsupportedFormat(
            f"unsupported file type {suffix or '(none)'!r}; supported formats: "
            + ", ".join(SUPPORTED_EXTENSIONS),
            details={"supportedFormats": list(SUPPORTED_EXTENSIONS)},
        )
    return fmt


def resolve_format(filename: str, head: bytes) -> tuple[ModelFormat, Sniffed]:
    """Check that the name's format and the content's family agree, and return both."""
    claimed = format_from_name(filename)
    found = sniff(head)
    if found.family is None:
        raise FormatMismatch(
            f"{filename!r} is named as {claimed.value} but its content is not a model file "
            f"({found.detail})",
            details={"claimed": claimed.value, "detected": found.detail},
        )
    if found.family is not claimed.family:
        raise FormatMismatch(
            f"{filename!r} is named as {claimed.value} ({claimed.family.value}) but its content is "
            f"{found.family.value} ({found.detail})",
            details={"claimed": claimed.value, "detected": found.family.value},
        )
    return claimed, found


class UnsupportedFormat(BadInput):
    code = "unsupported_format"


class FormatMismatch(BadInput):
    code = "format_mismatch"
