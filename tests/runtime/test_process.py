"""``modelport-runtime`` as a real process: a real OIP client, tamper refusals, SIGTERM drain."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from modelport.core.crypto import encode_data_key, generate_data_key

from tests.runtime.helpers import (
    Artifact,
    RuntimeProcess,
    encrypt_file,
    running,
    runtime_args,
    write_keys,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def artifact(sklearn_model_files, tmp_path: Path) -> Artifact:
    mf = sklearn_model_files["sklearn_logreg_joblib"]
    return encrypt_file(mf.path, tmp_path, "joblib")


@pytest.fixture
def logreg(sklearn_model_files):
    return sklearn_model_files["sklearn_logreg_joblib"]


def no_auth() -> dict[str, str]:
    return {"MODELPORT_RUNTIME_AUTH_REQUIRED": "false"}


@pytest.mark.parametrize("binary", [False, True])
def test_tritonclient_works_unchanged(artifact, logreg, binary: bool):
    with running(runtime_args(artifact, "churn"), no_auth()) as proc:
        client = triton.InferenceServerClient(url=f"127.0.0.1:{proc.port}")
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("churn")
        meta = client.get_model_metadata("churn")
        assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
        rows = logreg.sample_input
        tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        wanted = [
            triton.InferRequestedOutput("predict", binary_data=binary),
            triton.InferRequestedOutput("predict_proba", binary_data=binary),
        ]
        result = client.infer("churn", [tensor], outputs=wanted, request_id="r1")
        np.testing.assert_array_equal(result.as_numpy("predict"), logreg.expected_output)
        np.testing.assert_array_equal(
            result.as_numpy("predict_proba"), logreg.outputs["predict_proba"]
        )
        assert result.get_response()["id"] == "r1"


def test_auth_is_on_by_default_with_the_mounted_keys_file(artifact, tmp_path: Path):
    keys = tmp_path / "auth-keys.json"
    write_keys(keys, {"k_1": ("mp_live_secret", 1)})
    with running(runtime_args(artifact, "m", "--auth-keys-file", str(keys))) as proc:
        body = {"instances": [[0.1, 0.2, 0.3, 0.4]]}
        url = proc.url + "/v1/models/m:predict"
        assert httpx.post(url, json=body).status_code == 401
        assert (
            httpx.post(url, json=body, headers={"X-API-Key": "mp_live_secret"}).status_code == 200
        )
        limited = httpx.post(url, json=body, headers={"X-API-Key": "mp_live_secret"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_auth_required_without_a_keys_file_refuses_to_start(artifact):
    proc = RuntimeProcess(runtime_args(artifact), {})
    proc.start()
    assert proc.wait_exit() == 2
    assert "auth_keys_file is not set" in proc.log()


def refused(artifact: Artifact, fragment: str, *extra: str) -> None:
    """The runtime exits non-zero with ``fragment`` in its log and in its one-line termination
    message, and never reports ready."""
    message = Path(artifact.key_file).parent / "termination-log"
    env = {**no_auth(), "MODELPORT_RUNTIME_TERMINATION_MESSAGE_PATH": str(message)}
    proc = RuntimeProcess(runtime_args(artifact, "m", *extra), env)
    proc.start()
    ready_seen = False
    while proc.process is not None and proc.process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            ready_seen |= httpx.get(proc.url + "/v2/health/ready", timeout=1).status_code == 200
        time.sleep(0.05)
    assert proc.wait_exit() == 1
    log = proc.log()
    assert fragment in log, log
    assert "failed to load, exiting" in log
    assert not ready_seen
    reason = message.read_text()
    assert reason.startswith("model failed to load: ") and fragment in reason, reason
    assert reason.count("\n") == 1


def test_wrong_sha256_exits_nonzero_and_never_serves(artifact):
    wrong = Artifact(artifact.uri, artifact.key_file, "0" * 64, artifact.format)
    refused(wrong, "was pinned: refusing to load it")


def test_wrong_data_key_exits_nonzero(artifact, tmp_path: Path):
    other = tmp_path / "other.key"
    other.write_text(encode_data_key(generate_data_key()))
    refused(Artifact(artifact.uri, other, artifact.sha256, artifact.format), "key")


def test_tampered_ciphertext_exits_nonzero(artifact, tmp_path: Path):
    path = Path(artifact.uri.removeprefix("file://"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped = tmp_path / "flipped.enc"
    flipped.write_bytes(bytes(data))
    refused(Artifact(flipped.as_uri(), artifact.key_file, artifact.sha256, "joblib"), "segment")


def test_missing_artifact_exits_nonzero(artifact, tmp_path: Path):
    missing = (tmp_path / "nope.enc").as_uri()
    gone = Artifact(missing, artifact.key_file, artifact.sha256, "joblib")
    refused(gone, "not in the artifact store")


def test_state_dict_exits_nonzero_with_how_to_export(torch_model_files, tmp_path: Path):
    artifact = encrypt_file(torch_model_files["state_dict_pth"].path, tmp_path, "pth")
    refused(artifact, "torch.jit.script")


def test_joblib_holding_a_dict_exits_with_the_reason(tmp_path: Path):
    import joblib

    plain = tmp_path / "settings.joblib"
    joblib.dump({"coef": [1.0, 2.0]}, plain)
    artifact = encrypt_file(plain, tmp_path, "joblib")
    refused(artifact, "the joblib file holds a dict, which has no predict()")


def test_sigterm_drains_in_flight_requests_then_exits(artifact, logreg):
    extra = ["--debug-predict-delay-seconds", "1.5", "--drain-seconds", "20"]
    proc = RuntimeProcess(runtime_args(artifact, "m", *extra), no_auth())
    proc.start()
    try:
        proc.wait_ready()
        results: list[httpx.Response] = []
        body = {"instances": logreg.sample_input[:1].tolist()}

        def call() -> None:
            results.append(httpx.post(proc.url + "/v1/models/m:predict", json=body, timeout=30))

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.5)  # the request is inside the model call now
        assert proc.process is not None
        proc.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.TransportError):  # no longer accepting connections
            httpx.get(proc.url + "/v2/health/live", timeout=2)
        worker.join(30)
        # After draining, uvicorn re-raises the signal: the status says "ended by SIGTERM".
        assert proc.wait_exit(30) == -signal.SIGTERM
        [response] = results
        assert response.status_code == 200
        assert response.json() == {"predictions": logreg.expected_output[:1].tolist()}
        assert "draining in-flight requests" in proc.log()
    finally:
        proc.terminate()
