"""The images a Modelport release publishes: one table for the release, the chart and the operator.

Every image is ``<registry>/<prefix>/<name>:<version>``. :data:`BUILDS` says which Dockerfile
target each name is built from; ``scripts/release.py images`` prints the references a release
pushes from it, the release workflow builds and pushes exactly those, the operator's default
runtime images are named by :func:`runtime_image_name` under :data:`DEFAULT_REPOSITORY`, and the
chart's ``values.yaml`` defaults spell the same registry and names (``tests/test_version.py``
holds them together).

A runtime image is named after the format family's ``FormatSpec.image`` (``runtime-onnx``), with
``-gpu`` on a GPU when the family declares a GPU build. One Dockerfile target may serve several
families: the ``sklearn`` target carries onnxruntime too, so it is pushed as ``runtime-sklearn``
and ``runtime-onnx``, and the ``gpu`` target as every ``-gpu`` name.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelport.core.formats.spec import FormatSpec

#: The registry host of released images (the chart's ``image.registry``).
REGISTRY = "ghcr.io"
#: The path under the registry every Modelport image shares (``ghcr.io/modelport/api``).
PREFIX = "modelport"
#: Registry and prefix together: the operator's ``image_registry`` default.
DEFAULT_REPOSITORY = f"{REGISTRY}/{PREFIX}"
#: Where the chart is pushed, under the same prefix: ``oci://ghcr.io/modelport/charts/modelport``.
CHART_REPOSITORY = "charts"
#: Every image is built for both.
PLATFORMS = ("linux/amd64", "linux/arm64")


@dataclass(frozen=True)
class ImageBuild:
    """One multi-platform build: a Dockerfile target, pushed under one or more names."""

    #: The Dockerfile, relative to the repository root (the build context).
    dockerfile: str
    #: The stage to build; None builds the Dockerfile's last stage.
    target: str | None
    #: The image names (``api``, ``runtime-onnx``) the one build is pushed as.
    names: tuple[str, ...]
    platforms: tuple[str, ...] = PLATFORMS

    @property
    def key(self) -> str:
        """A short, unique name for the build (``api``, ``runtime-gpu``)."""
        return self.names[0] if self.target is None else f"runtime-{self.target}"


RUNTIME_DOCKERFILE = "runtime-image/Dockerfile"

BUILDS: tuple[ImageBuild, ...] = (
    ImageBuild("control-api/Dockerfile", None, ("api",)),
    ImageBuild("operator/Dockerfile", None, ("operator",)),
    ImageBuild(RUNTIME_DOCKERFILE, "sklearn", ("runtime-sklearn", "runtime-onnx")),
    ImageBuild(RUNTIME_DOCKERFILE, "torch", ("runtime-torch",)),
    ImageBuild(RUNTIME_DOCKERFILE, "keras", ("runtime-keras",)),
    ImageBuild(RUNTIME_DOCKERFILE, "gpu", ("runtime-onnx-gpu", "runtime-torch-gpu")),
)


def reference(name: str, tag: str, *, repository: str = DEFAULT_REPOSITORY) -> str:
    """The full reference of image `name`: ``<repository>/<name>:<tag>``."""
    return f"{repository}/{name}:{tag}"


def runtime_image_name(spec: FormatSpec, *, gpu: bool) -> str:
    """The runtime image that serves `spec`'s formats, on a GPU node or not."""
    return f"{spec.image}-gpu" if gpu and spec.gpu_image else spec.image


def image_names() -> tuple[str, ...]:
    """Every image name a release pushes, in the table's order."""
    return tuple(name for build in BUILDS for name in build.names)
