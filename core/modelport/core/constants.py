"""Names shared by every component: API group, labels, annotations, Secret keys."""

from __future__ import annotations

GROUP = "modelport.io"
VERSION = "v1alpha1"
KIND = "MLModel"
PLURAL = "mlmodels"

LABEL_MODEL = f"{GROUP}/model"
LABEL_COMPONENT = f"{GROUP}/component"
LABEL_OWNER = f"{GROUP}/owner"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "modelport"

ANNOTATION_MODEL_ID = f"{GROUP}/model-id"
ANNOTATION_VERSION = f"{GROUP}/version"

SECRET_DATA_KEY = "data-key"  # noqa: S105 (a key name, not a secret)
SECRET_AUTH_KEYS = "auth-keys.json"  # noqa: S105
#: The model's own bearer token for usage reports (derived by the control API).
SECRET_USAGE_TOKEN = "usage-token"  # noqa: S105
RUNTIME_PORT = 8080
#: The runtime's Prometheus port: reached in-cluster only, never routed by an Ingress or proxy.
RUNTIME_METRICS_PORT = 9090
#: The runtime's container in a model's pod (the control API reads its log by this name).
RUNTIME_CONTAINER = "runtime"
#: Where the runtime writes why it failed to start; the kubelet's default path.
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
ENV_PREFIX_RUNTIME = "MODELPORT_RUNTIME_"


def key_secret_name(model: str) -> str:
    return f"mlmodel-{model}-key"
