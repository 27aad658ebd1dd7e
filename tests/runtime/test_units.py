"""Settings, protocols, auth and usage pieces on their own."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modelport.core.errors import BadInput
from modelport.runtime.auth import KeyStore, presented_key
from modelport.runtime.protocols import tensors, v2
from modelport.runtime.settings import RuntimeSettings, load_settings
from modelport.runtime.signature import ModelSignature, TensorSpec
from modelport.runtime.usage import UsageReporter
from pydantic import ValidationError

from tests.runtime.helpers import write_keys

# ----------------------------------------------------------------------------- settings

BASE = ["--model-name", "m", "--artifact-uri", "file:///a", "--format", "onnx"]


def test_flags_override_environment(monkeypatch):
    monkeypatch.setenv("MODELPORT_RUNTIME_PORT", "9000")
    monkeypatch.setenv("MODELPORT_RUNTIME_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("MODELPORT_RUNTIME_AUTH_REQUIRED", "false")
    settings = load_settings([*BASE, "--port", "9100"])
    assert settings.port == 9100 and settings.max_batch_size == 8
    assert settings.auth_required is False
    assert settings.format.value == "onnx"


def test_defaults_follow_the_contract(tmp_path: Path):
    settings = load_settings([*BASE, "--auth-keys-file", str(tmp_path / "k.json")])
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.auth_required is True and settings.auth_reload_seconds == 10
    assert settings.max_batch_size == 1 and settings.usage_report_seconds == 15
    assert settings.rate_limit_per_minute == 0


def test_every_field_is_documented_and_is_a_flag():
    from modelport.runtime.settings import build_parser

    flags = {a.dest for a in build_parser()._actions}
    for name, field in RuntimeSettings.model_fields.items():
        assert field.description, name
        assert name in flags


@pytest.mark.parametrize(
    "argv",
    [
        [*BASE, "--auth-required", "false", "--format", "exe"],
        [*BASE, "--auth-required", "false", "--sha256", "abc"],
        [*BASE, "--auth-required", "false", "--model-name", "bad name"],
        BASE,  # auth required but no keys file
    ],
)
def test_invalid_settings_are_refused(argv):
    with pytest.raises(ValidationError):
        load_settings(argv)


# ----------------------------------------------------------------------------- protocols

SIG = ModelSignature(
    inputs=(TensorSpec("x", "FP32", (-1, 2)), TensorSpec("text", "BYTES", (-1,))),
    outputs=(TensorSpec("y", "FP32", (-1,)),),
)


def test_decode_several_inputs_of_several_datatypes():
    doc = {
        "inputs": [
            {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3, 4]]},
            {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
        ],
        "outputs": [{"name": "y"}],
    }
    inputs, requested, _ = v2.decode_inputs(doc, SIG, None)
    assert inputs["x"].dtype == np.float32 and inputs["x"].shape == (2, 2)
    assert inputs["text"].tolist() == ["a", "b"]
    assert requested == ["y"]


def test_decode_reports_every_schema_error_at_once():
    doc = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    with pytest.raises(BadInput) as caught:
        v2.decode_inputs(doc, SIG, None)
    errors = caught.value.details["errors"]
    assert {"input": "x", "error": "expected shape [-1, 2], got [1, 3]"} in errors
    assert {"input": "text", "error": "missing input"} in errors


def test_binary_bytes_and_bool_tensors_round_trip():
    strings = np.array([b"hello", b"", "wörld".encode()], dtype=object)
    blob = v2._to_binary(strings)
    assert v2._from_binary(memoryview(blob), "BYTES", 3).tolist() == strings.tolist()
    flags = np.array([True, False, True])
    back = v2._from_binary(memoryview(v2._to_binary(flags)), "BOOL", 3)
    np.testing.assert_array_equal(back, flags)
    bools = v2._from_json([[True, False]], "BOOL")
    assert bools.dtype == np.bool_


def test_bad_binary_sizes_are_schema_errors():
    doc = {
        "inputs": [
            {
                "name": "x",
                "shape": [1, 2],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 12},
            },
            {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]},
        ]
    }
    with pytest.raises(BadInput, match="does not match"):
        v2.decode_inputs(doc, SIG, memoryview(b"\0" * 8))


def test_encode_response_with_strings_and_binary_outputs():
    outputs = {"label": np.array(["cat", "dog"], dtype=object), "p": np.array([0.5, 0.25])}
    body, n = v2.encode_outputs(
        model_name="m", request_id="7", outputs=outputs, binary_outputs=["p"]
    )
    assert n is not None
    doc = json.loads(body[:n])
    assert doc["id"] == "7" and doc["outputs"][0] == {
        "name": "label", "datatype": "BYTES", "shape": [2], "data": ["cat", "dog"],
    }  # fmt: skip
    assert np.frombuffer(body[n:], "<f8").tolist() == [0.5, 0.25]


def test_instances_as_records_for_a_multi_input_model():
    rows = [{"x": [1, 2], "text": "a"}, {"x": [3, 4], "text": "b"}]
    inputs, single = tensors.decode_instances(rows, SIG)
    assert inputs["x"].shape == (2, 2) and inputs["text"].tolist() == ["a", "b"]
    assert not single


# ----------------------------------------------------------------------------- auth


def test_key_store_matches_digests_and_keeps_last_good_keys(tmp_path: Path):
    path = tmp_path / "keys.json"
    write_keys(path, {"k_a": ("alpha", 5)})
    store = KeyStore(path)
    entry = store.match("alpha")
    assert entry is not None and entry.id == "k_a" and entry.rate_limit_per_minute == 5
    assert store.match("alph") is None and store.match("alpha ") is None
    path.write_text("{broken")
    assert store.reload() is False
    assert store.match("alpha") is not None  # an unreadable file does not drop every key
    assert store.entries[0].digest == hashlib.sha256(b"alpha").digest()


def test_presented_key_from_either_header():
    assert presented_key({"authorization": "Bearer abc"}) == "abc"
    assert presented_key({"x-api-key": "def"}) == "def"
    assert presented_key({"authorization": "Basic abc"}) is None
    assert presented_key({}) is None


# ----------------------------------------------------------------------------- usage


async def test_usage_report_is_posted_as_deltas(tmp_path: Path):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((self.headers["authorization"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("usage-token\n")
    url = f"http://127.0.0.1:{server.server_port}/usage"
    reporter = UsageReporter(model="m", url=url, token_file=token, interval=60)
    try:
        reporter.record(key_id="k_1", seconds=0.004, error=False)
        reporter.record(key_id="k_1", seconds=0.010, error=True)
        await reporter.flush()
        await reporter.flush()  # nothing new: nothing sent
        reporter.record(key_id=None, seconds=0.002, error=False)
        await reporter.flush()
    finally:
        server.shutdown()
    assert [auth for auth, _ in received] == ["Bearer usage-token"] * 2
    first, second = (doc for _, doc in received)
    assert first["requests"] == 2 and first["errors"] == 1 and first["byKey"] == {"k_1": 2}
    assert first["latencyMs"]["p99"] == pytest.approx(9.94, abs=0.01)
    assert second["requests"] == 1 and second["byKey"] == {}
    assert first["window"]["start"] < second["window"]["end"]
