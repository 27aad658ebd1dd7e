"""The registry's vocabulary: formats, families, containers, and the spec each family module
declares."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelport.core.errors import BadInput

#: How many leading bytes :func:`~modelport.core.formats.sniff` wants to see.
SNIFF_BYTES = 4096


class ModelFormat(enum.StrEnum):
    """An upload format, named by its file extension; the registry says which family owns it."""

    PKL = "pkl"
    JOBLIB = "joblib"
    H5 = "h5"
    KERAS = "keras"
    ONNX = "onnx"
    PT = "pt"
    PTH = "pth"
    PT2 = "pt2"

    @property
    def family(self) -> Family:
        from modelport.core.formats import spec_for

        return spec_for(self).family


class Family(enum.StrEnum):
    """What the content is, whatever the name: formats of one family share their bytes."""

    PICKLE = "pickle"
    HDF5 = "hdf5"
    #: Keras 3's native ``.keras`` zip; a family apart from HDF5 because the bytes differ.
    KERAS = "keras"
    ONNX = "onnx"
    TORCH = "torch"


class Container(enum.StrEnum):
    """The outermost encoding the bytes start with."""

    PICKLE = "pickle"
    ZLIB = "zlib"
    GZIP = "gzip"
    BZ2 = "bz2"
    XZ = "xz"
    LZMA = "lzma"
    LZ4 = "lz4"
    ZIP = "zip"
    HDF5 = "hdf5"
    PROTOBUF = "protobuf"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Sniffed:
    container: Container
    family: Family | None
    detail: str
    #: The format content like this is taken for when no file name says otherwise.
    format: ModelFormat | None = None


#: A family's content test: the container and a description when the first bytes are its own.
Recogniser = Callable[[bytes], tuple[Container, str] | None]


class NotServable(BadInput):
    """The file is safe but the runtime cannot serve it (weights without the model's code)."""

    code = "state_dict_not_servable"


def always_servable(path: Path, fmt: ModelFormat) -> None:
    """Every file of the family that passes the scanner can be served."""


@dataclass(frozen=True)
class FormatSpec:
    """Everything Modelport knows about one family module's formats."""

    #: The family module's name: ``pickle``, ``joblib``, ``keras``, ``torch``, ``onnx``.
    name: str
    family: Family
    #: The formats (and so the extensions) it owns; nameless content is taken for the first.
    formats: tuple[ModelFormat, ...]
    #: The outer encodings its files may arrive in.
    containers: frozenset[Container]
    sniff: Recogniser
    #: The scanner's entry point, ``module:function`` with ``(data, limits, deadline, location)
    #: -> list[Finding]``; imported when a file of the format is scanned.
    scanner: str
    #: The runtime module whose ``load(data, fmt, *, gate) -> ServedModel`` deserialises it.
    loader: str
    #: The runtime image that serves it, ``<registry>/<image>:<tag>`` (the operator's default).
    image: str
    #: Whether a GPU build of that image exists (``<image>-gpu``); without one the CPU image
    #: serves it on GPU nodes too.
    gpu_image: bool = False
    #: Raises :class:`NotServable` for a file that passed the scanner but cannot be served as
    #: the format it was uploaded as.
    ensure_servable: Callable[[Path, ModelFormat], None] = always_servable

    @property
    def extensions(self) -> tuple[str, ...]:
        return tuple(f".{fmt.value}" for fmt in self.formats)
