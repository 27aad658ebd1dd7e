"""Keras models: ``.h5`` (HDF5, by Keras 3 or tf.keras 2.x) and ``.keras`` (Keras 3's native zip of
``metadata.json``, ``config.json`` and ``model.weights.h5``).

The two are separate families: their bytes differ, and Keras itself picks its reader by the
extension, so an HDF5 file named ``.keras`` (or a ``.keras`` zip named ``.h5``) is a mismatch.
Both are served by the same loader module and runtime image. No GPU build of that image exists
(runtime-image/Dockerfile's ``gpu`` target carries torch and onnxruntime, not TensorFlow), so a
Keras model on a GPU node runs in the CPU image.
"""

from __future__ import annotations

import struct

from modelport.core.formats.spec import Container, Family, FormatSpec, ModelFormat

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Where else HDF5 readers look for the signature (after a user block): a file with it there
#: reads as HDF5 whatever it starts with.
HDF5_OFFSETS = (512, 1024, 2048, 4096)

#: The members ``model.save("m.keras")`` writes, in the order it writes them; the loader reads
#: ``config.json`` and ``model.weights.h5``, and would extract anything else to disk as assets.
ARCHIVE_MEMBERS = ("metadata.json", "config.json", "model.weights.h5")

_LOCAL_HEADER = b"PK\x03\x04"


def sniff(head: bytes) -> tuple[Container, str] | None:
    if head.startswith(HDF5_SIGNATURE):
        return Container.HDF5, "hdf5 signature"
    return None


def first_member(head: bytes) -> str | None:
    """The name in a zip's first local header, or None for anything else."""
    if not head.startswith(_LOCAL_HEADER) or len(head) < 30:
        return None
    (length,) = struct.unpack_from("<H", head, 26)
    raw = head[30 : 30 + length]
    return raw.decode("ascii", "replace") if len(raw) == length else None


def sniff_archive(head: bytes) -> tuple[Container, str] | None:
    """A zip whose first member is one of a Keras archive's own (a torch archive's members all
    sit under one top-level folder, so its first name always has a slash)."""
    name = first_member(head)
    if name in ARCHIVE_MEMBERS:
        return Container.ZIP, f"zip whose first member is {name}"
    return None


SPEC = FormatSpec(
    name="keras",
    family=Family.HDF5,
    formats=(ModelFormat.H5,),
    containers=frozenset({Container.HDF5}),
    sniff=sniff,
    scanner="modelport.core.scan.keras:scan_h5",
    loader="modelport.runtime.loaders.keras",
    image="runtime-keras",
)

ARCHIVE_SPEC = FormatSpec(
    name="keras-zip",
    family=Family.KERAS,
    formats=(ModelFormat.KERAS,),
    containers=frozenset({Container.ZIP}),
    sniff=sniff_archive,
    scanner="modelport.core.scan.keras:scan_keras",
    loader="modelport.runtime.loaders.keras",
    image="runtime-keras",
)
