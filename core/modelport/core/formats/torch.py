"""``.pt``/``.pth``: PyTorch files. A zip archive (``torch.save``, TorchScript, ``torch.export``)
or the legacy ``torch.save`` stream of pickles. ``.pt2`` (``torch.export.save``'s extension)
shares their content: served only when it holds a ``torch.export`` program.

Only TorchScript archives and ``torch.export`` programs carry the model's code; a ``torch.save``
file (a state_dict or a pickled module) is refused with :data:`HOW_TO_EXPORT`.
"""

from __future__ import annotations

import enum
import io
import zipfile
from collections.abc import Collection
from pathlib import Path

from modelport.core.formats import pickle
from modelport.core.formats.spec import Container, Family, FormatSpec, ModelFormat, NotServable

HOW_TO_EXPORT = (
    "export the model with its architecture instead: "
    "torch.jit.save(torch.jit.script(model), 'model.pt') (or torch.jit.trace(model, example)), "
    "or torch.export.save(torch.export.export(model, (example,)), 'model.pt')"
)

# A zip archive's first local header, or the end record of an empty one.
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
# torch.save's legacy format starts with a pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


class TorchArchive(enum.StrEnum):
    SAVE = "save"
    TORCHSCRIPT = "torchscript"
    EXPORT = "export"


class NotExportProgram(NotServable):
    """A ``.pt2`` upload that holds something other than a torch.export program."""

    code = "pt2_not_export_program"


def _has_code(members: Collection[str]) -> bool:
    return any(name.startswith("code/") for name in members)


def layout(members: Collection[str]) -> TorchArchive:
    """The member rules the scanner reads an archive by, from its member names (without the top
    folder): ``archive_format`` names an export program; compiled ``code/`` or ``constants.pkl``
    TorchScript; anything else is a torch.save archive."""
    if "archive_format" in members:
        return TorchArchive.EXPORT
    if "constants.pkl" in members or _has_code(members):
        return TorchArchive.TORCHSCRIPT
    return TorchArchive.SAVE


def servable_kind(source: bytes | Path) -> TorchArchive:
    """What the runtime can rebuild a model from: a TorchScript archive with both its code and
    its constants, or an export program; SAVE for anything else, legacy streams included."""
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    if not zipfile.is_zipfile(file):
        return TorchArchive.SAVE
    with zipfile.ZipFile(file) as archive:
        members = {n.split("/", 1)[1] if "/" in n else n for n in archive.namelist()}
    if _has_code(members) and "constants.pkl" in members:
        return TorchArchive.TORCHSCRIPT
    if "archive_format" in members or "models/model.json" in members:
        return TorchArchive.EXPORT
    return TorchArchive.SAVE


def ensure_servable(path: Path, fmt: ModelFormat) -> None:
    """Accept what the runtime serves; refuse a torch.save file with how to export instead, and
    a ``.pt2`` that is not a torch.export program."""
    kind = servable_kind(path)
    if kind is TorchArchive.SAVE:
        raise NotServable(
            "this file was written by torch.save (a state_dict or a pickled module): it holds "
            "weights without the model's code and cannot be served; " + HOW_TO_EXPORT,
            details={"howToExport": HOW_TO_EXPORT},
        )
    if fmt is ModelFormat.PT2 and kind is not TorchArchive.EXPORT:
        raise NotExportProgram(
            f"a .pt2 file must be a torch.export program (torch.export.save); this is a {kind} "
            "archive: upload it as .pt",
            details={"howToExport": HOW_TO_EXPORT},
        )


def sniff(head: bytes) -> tuple[Container, str] | None:
    if head.startswith(_ZIP_SIGNATURES):
        return Container.ZIP, "zip signature"
    version = pickle.protocol(head)
    if version is not None and _LEGACY_MAGIC in head[:32]:
        return Container.PICKLE, f"pickle protocol {version}"
    return None


SPEC = FormatSpec(
    name="torch",
    family=Family.TORCH,
    formats=(ModelFormat.PT, ModelFormat.PTH, ModelFormat.PT2),
    containers=frozenset({Container.ZIP, Container.PICKLE}),
    sniff=sniff,
    scanner="modelport.core.scan.torch:scan_torch",
    loader="modelport.runtime.loaders.torch",
    image="runtime-torch",
    gpu_image=True,
    ensure_servable=ensure_servable,
)
