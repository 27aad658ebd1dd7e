"""Invariants of the manifests over many specs (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from modelport.operator import drift, manifests
from modelport.operator.settings import OperatorSettings

from tests.operator.conftest import make_model

SETTINGS = OperatorSettings(_env_prefix="MODELPORT_OPERATOR_TEST_UNUSED_")  # type: ignore[call-arg]


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(0, 5))
    return {
        "format": draw(st.sampled_from(["pkl", "joblib", "h5", "keras", "onnx", "pt", "pth"])),
        "gpu": {"count": draw(st.integers(0, 8))},
        "replicas": draw(st.integers(0, 10)),
        "autoscaling": {
            "enabled": draw(st.booleans()),
            "minReplicas": low,
            "maxReplicas": draw(st.integers(max(low, 1), 10)),
        },
        "state": draw(st.sampled_from(["active", "inactive", "archived"])),
        "ingress": {"enabled": draw(st.booleans())},
        "authRequired": draw(st.booleans()),
    }


@settings(max_examples=150, deadline=None)
@given(specs(), st.one_of(st.none(), st.text("0123456789abcdef", min_size=8, max_size=8)))
def test_children_invariants(spec: dict[str, Any], checksum: str | None) -> None:
    model = make_model(**spec)
    children = manifests.children(model, SETTINGS, key_checksum=checksum)
    kinds = [o["kind"] for o in children.present] + [k.kind for k in children.absent]
    assert sorted(kinds) == sorted(k.kind for k in manifests.CHILD_KINDS)
    for obj in children.present:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["uid"] == model.metadata.uid and owner["controller"] is True
        assert obj["metadata"]["name"] == "mlmodel-iris"
        assert obj["metadata"]["labels"]["modelport.io/model"] == "iris"
        assert drift.drifted(obj, obj) == []

    deployment = next(o for o in children.present if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    gpus = container["resources"].get("limits", {}).get("nvidia.com/gpu")
    assert (gpus is not None) == (spec["gpu"]["count"] > 0)
    assert ("tolerations" in pod) == (spec["gpu"]["count"] > 0)

    replicas = deployment["spec"]["replicas"]
    if spec["state"] != "active":
        assert replicas == 0
        assert manifests.url(model, SETTINGS) is None
    elif spec["autoscaling"]["enabled"]:
        assert spec["autoscaling"]["minReplicas"] <= replicas <= spec["autoscaling"]["maxReplicas"]
    else:
        assert replicas == spec["replicas"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODELPORT_RUNTIME_AUTH_REQUIRED"] == str(spec["authRequired"]).lower()
    assert env["MODELPORT_RUNTIME_FORMAT"] == spec["format"]
