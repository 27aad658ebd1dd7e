"""Which MLModel specs the operator serves: the MLModel is a trust boundary.

Whoever can write an MLModel decides what a runtime pod mounts and where it is published, so the
operator checks every spec before it creates anything (``reconcile.py`` turns problems into a
Failed status with reason ``NotAllowed`` and an Event). The chart's ValidatingAdmissionPolicy
(``charts/modelport/templates/mlmodel-policy.yaml``) makes the same checks at admission; this
module is the second line, for clusters without the policy.

A spec may only use what belongs to its own model ``<name>`` in namespace ``<ns>``:

* ``artifact.keySecretRef.name`` is ``mlmodel-<name>-key``;
* ``artifact.uri`` is ``<store>/models/<name>/<file>``, as the control API names artifacts (under
  the configured ``artifact_root`` when one is set; no ``.`` or ``..`` segments);
* ``runtimeImage`` is one of the configured images, or lies under a configured registry prefix;
* ``ingress.host`` is the model's own host (``<name>.<ns>.<domain>`` or a host under it; the
  shared domain with path routing) and ``ingress.path`` the model's own path
  (``<prefix>/<ns>/<name>`` or below it) with path routing;
* each of ``gpu.tolerations`` equals one of the configured GPU tolerations.

Pure functions: a typed model and the settings in, a list of readable problems out.
"""

from __future__ import annotations

from modelport.core import constants as c
from modelport.core.spec import Ingress, MLModel, Routing, Toleration
from modelport.operator.settings import OperatorSettings

MODELS_SEGMENT = "models"


def problems(model: MLModel, settings: OperatorSettings) -> list[str]:
    """Every way `model` reaches beyond itself; empty when the operator may serve it."""
    name, namespace = model.metadata.name, str(model.metadata.namespace)
    found = [
        _key_secret(model, name),
        _artifact(model.spec.artifact.uri, name, settings.artifact_root),
        _image(model.spec.runtime_image, settings),
        *_ingress(model.spec.ingress, name, namespace, settings),
        _tolerations(model.spec.gpu.tolerations, settings),
    ]
    return [p for p in found if p]


def _key_secret(model: MLModel, name: str) -> str | None:
    ref = model.spec.artifact.key_secret_ref
    wanted = c.key_secret_name(name)
    if ref is None or ref.name == wanted:
        return None
    return f"spec.artifact.keySecretRef.name must be {wanted}, not {ref.name}"


def artifact_prefix(root: str | None, name: str) -> str:
    """Where model `name`'s artifacts lie: ``<root>/models/<name>/`` (``.../models/<name>/``
    under any store when `root` is None)."""
    base = root.rstrip("/") if root else "..."
    return f"{base}/{MODELS_SEGMENT}/{name}/"


def _artifact(uri: str, name: str, root: str | None) -> str | None:
    path = uri.partition("://")[2]
    segments = path.split("/")
    own = (
        len(segments) >= 3
        and segments[-3:-1] == [MODELS_SEGMENT, name]
        and segments[-1] not in ("", ".", "..")
        and not {".", ".."} & set(segments)
    )
    if own and root is not None:
        own = uri.startswith(artifact_prefix(root, name))
    if own:
        return None
    return f"spec.artifact.uri must be a file directly under {artifact_prefix(root, name)}"


def _image(image: str | None, settings: OperatorSettings) -> str | None:
    if image is None or settings.image_allowed(image):
        return None
    allowed = ", ".join(f"{p}/" for p in settings.allowed_image_prefixes())
    return f"spec.runtimeImage {image} is not from an allowed registry ({allowed})"


def own_host(name: str, namespace: str, settings: OperatorSettings) -> str:
    """The host a model may publish under: its own with host routing, the shared domain else."""
    return settings.endpoint_rule().host(name, namespace)


def own_path(name: str, namespace: str, settings: OperatorSettings) -> str:
    """The path a model may publish under: ``/`` of its own host, or its own path prefix."""
    return settings.endpoint_rule().path(name, namespace)


def _ingress(ingress: Ingress, name: str, namespace: str, settings: OperatorSettings) -> list[str]:
    found: list[str] = []
    host, path = own_host(name, namespace, settings), own_path(name, namespace, settings)
    if ingress.host is not None:
        mine = ingress.host == host or (
            settings.routing is Routing.HOST and ingress.host.endswith(f".{host}")
        )
        if not mine:
            found.append(f"spec.ingress.host must be the model's own host {host}")
    routed_by_path = settings.routing is Routing.PATH and ingress.path is not None
    if routed_by_path and ingress.path != path and not str(ingress.path).startswith(f"{path}/"):
        found.append(f"spec.ingress.path must be {path} or a path below it")
    return found


def _tolerations(tolerations: list[Toleration], settings: OperatorSettings) -> str | None:
    allowed = [Toleration.model_validate(t).wire() for t in settings.gpu_tolerations]
    unknown = [t.wire() for t in tolerations if t.wire() not in allowed]
    if not unknown:
        return None
    return f"spec.gpu.tolerations may only repeat the configured GPU tolerations, not {unknown}"
