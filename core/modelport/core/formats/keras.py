"""``.h5``: a Keras model saved as HDF5 (by Keras 3 or tf.keras 2.x)."""

from __future__ import annotations

from modelport.core.formats.spec import Container, Family, FormatSpec, ModelFormat

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def sniff(head: bytes) -> tuple[Container, str] | None:
    if head.startswith(HDF5_SIGNATURE):
        return Container.HDF5, "hdf5 signature"
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
    gpu_image=True,
)
