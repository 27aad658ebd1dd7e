"""The pure helpers of reconcile.py (the rest runs against the test cluster)."""

from __future__ import annotations

import base64

import pytest
from modelport.operator import reconcile as r

from tests.operator.conftest import model_manifest


def test_parse_model_reports_every_problem_readably() -> None:
    body = model_manifest(format="exe", replicas=-1)
    with pytest.raises(r.InvalidSpec) as info:
        r.parse_model(body)
    message = str(info.value)
    assert message.startswith("invalid MLModel: ")
    assert "spec.format" in message and "spec.replicas" in message


def test_parse_model_ignores_status_and_server_metadata() -> None:
    body = model_manifest()
    body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    body["status"] = {"phase": "Ready", "unknown": 1}
    assert r.parse_model(body).metadata.name == "iris"


def test_key_checksum_is_a_digest_of_the_key_not_the_key() -> None:
    key = base64.b64encode(b"k" * 32)  # the Secret's value: base64 of the data key
    secret = {"data": {"data-key": base64.b64encode(key).decode()}}
    checksum = r.key_checksum(secret)
    assert checksum is not None and len(checksum) == 32
    assert key.decode() not in checksum
    other = {"data": {"data-key": base64.b64encode(b"x" * 44).decode()}}
    assert r.key_checksum(other) != checksum
    assert r.key_checksum({"data": {}}) is None
    assert r.key_checksum({}) is None


def test_children_name_their_model_by_label() -> None:
    child = {"metadata": {"namespace": "ns", "labels": {"modelport.io/model": "iris"}}}
    assert r.model_key_of_child(child) == ("ns", "iris")
    assert r.model_key_of_child({"metadata": {"namespace": "ns"}}) is None


def test_live_deployment_remembers_the_checksum() -> None:
    body = {
        "metadata": {"generation": 1},
        "spec": {"template": {"metadata": {"annotations": {"modelport.io/key-checksum": "c1"}}}},
        "status": {"replicas": 1, "readyReplicas": 1},
    }
    live = r.live_deployment(body)
    assert live.key_checksum == "c1"
    assert live.view.ready_replicas == 1
