"""The ``modelport`` CLI against a running ``modelport up``: every client command, as a user runs
it (a subprocess with its own config folder)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from testing.up import RunningModelport, modelport_command


@pytest.fixture(scope="module")
def env(modelport_up: RunningModelport, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    config_home = tmp_path_factory.mktemp("cli-config")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
    return {**clean, "XDG_CONFIG_HOME": str(config_home), "COLUMNS": "200", "NO_COLOR": "1"}


def run(env: dict[str, str], *args: str, stdin: str | None = None, ok: bool = True):
    done = subprocess.run(
        [modelport_command(), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def as_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(run(env, *args, "--output", "json").stdout)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    est = LogisticRegression().fit(x, y)
    path = tmp_path_factory.mktemp("cli-model") / "churn.joblib"
    joblib.dump(est, path)
    rows = rng.normal(size=(3, 4))
    return path, rows, est.predict(rows)


@pytest.fixture(scope="module")
def logged_in(env: dict[str, str], modelport_up: RunningModelport) -> dict[str, str]:
    done = run(env, "login", "--url", modelport_up.url, "--key", modelport_up.admin_key,
               "--inference-key", modelport_up.inference_key)  # fmt: skip
    assert "signed in" in done.stdout
    config = Path(env["XDG_CONFIG_HOME"]) / "modelport" / "config.json"
    assert json.loads(config.read_text()) == {
        "url": modelport_up.url,
        "key": modelport_up.admin_key,
        "inference_key": modelport_up.inference_key,
    }
    assert config.stat().st_mode & 0o077 == 0, "the config file holds a key: owner-only"
    return env


def wait_ready(env: dict[str, str], model_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model: dict[str, Any] = as_json(env, "models", "show", model_id)
        if model["phase"] == "Ready":
            return model
        assert model["phase"] != "Failed", model
        time.sleep(0.5)
    raise AssertionError(f"{model_id} never became Ready")


def test_login_refuses_a_wrong_key(env: dict[str, str], modelport_up: RunningModelport) -> None:
    done = run(env, "login", "--url", modelport_up.url, "--key", "mp_nope_nope", ok=False)
    assert done.returncode == 1
    assert "401" in done.stderr


def test_whole_flow(logged_in: dict[str, str], model_file, tmp_path: Path) -> None:
    env = logged_in
    path, rows, expected = model_file

    shown = run(env, "upload", str(path), "--name", "churn", "--description", "v1")
    assert "model id:" in shown.stdout and "endpoint URL:" in shown.stdout
    # The progress bar goes to stderr with transfer columns.
    assert "uploading churn.joblib" in shown.stderr
    model_id = shown.stdout.split("model id:")[1].split()[0]

    listed = as_json(env, "models", "list")
    assert model_id in [m["id"] for m in listed["items"]]
    table = run(env, "models", "list").stdout
    assert "churn" in table and "joblib" in table

    ready = wait_ready(env, model_id)
    assert ready["fileFormat"] == "joblib"

    answer = json.loads(
        run(
            env, "predict", model_id, "--json", "-", "-o", "json", stdin=json.dumps(rows.tolist())
        ).stdout
    )
    assert answer["predictions"] == expected.tolist()
    body = tmp_path / "input.json"
    body.write_text(json.dumps({"inputData": rows.tolist()}))
    again = json.loads(run(env, "predict", model_id, "--json", str(body), "-o", "json").stdout)
    assert again["predictions"] == expected.tolist()

    updated = as_json(env, "models", "update", model_id, "--description", "churn, tuned")
    assert updated["description"] == "churn, tuned"

    versions = as_json(env, "versions", "list", model_id)
    assert [v["number"] for v in versions] == [1]
    assert versions[0]["active"] is True

    # Usage reaches the API within the runtime's report interval.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        usage = as_json(env, "usage", model_id, "--window", "1h")
        if usage["requestCount"] >= 2:
            break
        time.sleep(1)
    assert usage["requestCount"] >= 2
    assert "requests (all time)" in run(env, "usage", model_id).stdout
    # The buckets the web UI charts: all of the window's, the busy one with its percentiles.
    assert len(usage["buckets"]) == 12
    busy = next(b for b in usage["buckets"] if b["requests"])
    table = run(env, "usage", model_id, "--window", "1h").stdout
    assert "per bucket" in table and "p99 ms" in table
    assert f"{busy['latencyMs']['p99']:.1f}" in table

    run(env, "models", "delete", model_id, "--yes")
    gone = run(env, "models", "show", model_id, ok=False)
    assert gone.returncode == 1 and "404" in gone.stderr


def test_upload_wait_ends_ready_with_the_endpoint(
    logged_in: dict[str, str], model_file, modelport_up: RunningModelport
) -> None:
    path, _, _ = model_file
    done = run(logged_in, "upload", str(path), "--name", "waited", "--wait", "--timeout", "120")
    model_id = done.stdout.split("model id:")[1].split()[0]
    assert f"ready: {modelport_up.url}/models/{model_id}" in done.stdout
    assert "phase: Ready" in done.stderr
    run(logged_in, "models", "delete", model_id, "--yes")


def test_upload_wait_of_a_model_that_cannot_load_says_why(
    logged_in: dict[str, str], tmp_path: Path
) -> None:
    """A joblib file holding a dict passes the scanner; the runtime cannot serve it."""
    path = tmp_path / "settings.joblib"
    joblib.dump({"coef": [1.0, 2.0]}, path)
    done = run(logged_in, "upload", str(path), "--name", "dict", "--wait", ok=False)
    assert done.returncode == 1, done.stderr
    model_id = done.stdout.split("model id:")[1].split()[0]
    reason = "the joblib file holds a dict, which has no predict()"
    assert f"failed: LoadFailed: model failed to load: {reason}" in done.stderr, done.stderr
    assert "lines of the runtime log:" in done.stderr
    assert f"failed to load, exiting: {reason}" in done.stderr

    shown = run(logged_in, "models", "show", model_id).stdout
    assert "LoadFailed" in shown and reason in shown
    logged = run(logged_in, "logs", model_id, "--tail", "30").stdout.splitlines()
    assert 1 <= len(logged) <= 30 and any(reason in line for line in logged)
    as_doc = as_json(logged_in, "logs", model_id, "--tail", "1")
    assert as_doc["modelId"] == model_id and len(as_doc["lines"]) == 1

    waited = run(logged_in, "upload", str(path), "-n", "dict2", "--wait", "-o", "json", ok=False)
    doc = json.loads(waited.stdout)
    assert waited.returncode == 1
    assert (doc["model"]["phase"], doc["model"]["reason"]) == ("Failed", "LoadFailed")
    assert any(reason in line for line in doc["logs"])
    for made in (model_id, doc["upload"]["modelId"]):
        run(logged_in, "models", "delete", made, "--yes")


def test_keys(logged_in: dict[str, str], modelport_up: RunningModelport) -> None:
    env = logged_in
    created = as_json(env, "keys", "create", "ci-bot", "--scope", "account")
    assert created["key"].startswith("mp_") and created["scope"] == "account"
    listed = as_json(env, "keys", "list")
    mine = [k for k in listed if k["id"] == created["id"]]
    assert mine and "key" not in mine[0], "a listed key never shows its secret"
    assert mine[0]["scope"] == "account" and mine[0]["models"] is None
    table = run(env, "keys", "list").stdout
    assert "scope" in table and "inference" in table and "account" in table
    # The new key works...
    other = {**env, "MODELPORT_API_KEY": created["key"]}
    assert as_json(other, "models", "list")["total"] >= 0
    run(env, "keys", "revoke", created["id"])
    # ...and stops working once revoked.
    refused = run(other, "models", "list", ok=False)
    assert refused.returncode == 1 and "401" in refused.stderr
    revoked = [k for k in as_json(env, "keys", "list") if k["id"] == created["id"]]
    assert revoked[0]["revokedAt"] is not None


def test_upload_of_an_unsupported_file_is_refused_in_words(
    logged_in: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a model")
    done = run(logged_in, "upload", str(bad), "--name", "notes", ok=False)
    assert done.returncode == 1
    assert "400" in done.stderr and ".onnx" in done.stderr


def test_server_down_is_exit_2(env: dict[str, str]) -> None:
    done = run(env, "models", "list", "--url", "http://127.0.0.1:9", "--key", "mp_x_y", ok=False)
    assert done.returncode == 2
    assert "cannot reach" in done.stderr


def test_newcomer_details(logged_in: dict[str, str], model_file) -> None:
    """The name defaults to the file's stem; ids are never cut at 80 columns; settings print as
    rows, not a Python dict; a new version shows a progress bar; a whole key revokes by its id
    and is never echoed."""
    path, _, _ = model_file
    narrow = {**logged_in, "COLUMNS": "80"}
    shown = run(narrow, "upload", str(path))
    model_id = shown.stdout.split("model id:")[1].split()[0]
    model = as_json(narrow, "models", "show", model_id)
    assert model["name"] == "churn"

    table = run(narrow, "models", "list").stdout
    assert model_id in table, table
    assert max(len(line) for line in table.splitlines()) <= 80
    # The endpoint URL is shown whole where it fits; else not at all (the caption says where
    # it is), never folded over a row seven lines tall.
    if model["endpointUrl"] not in table:
        assert "/models/" not in table and "-o json" in table, table
    assert model["endpointUrl"] in run(logged_in, "models", "list").stdout

    details = run(narrow, "models", "show", model_id).stdout
    assert "settings.maxReplicas" in details and "{'" not in details, details

    again = run(narrow, "versions", "upload", model_id, str(path))
    assert "uploading churn.joblib" in again.stderr

    created = as_json(narrow, "keys", "create", "to-revoke")
    secret = created["key"].split("_", 2)[2]
    revoked = run(narrow, "keys", "revoke", created["key"])
    assert created["id"] in revoked.stdout
    assert secret not in revoked.stdout + revoked.stderr
    listed = [k for k in as_json(narrow, "keys", "list") if k["id"] == created["id"]]
    assert listed[0]["revokedAt"] is not None
    run(narrow, "models", "delete", model_id, "--yes")


def test_key_and_version_tables_fit_80_columns(logged_in: dict[str, str], model_file) -> None:
    """At 80 columns a key's id (what ``keys revoke`` takes) stays on one line, and times read
    as minutes, not as ISO timestamps folded over five lines."""
    path, _, _ = model_file
    narrow = {**logged_in, "COLUMNS": "80"}
    created = as_json(narrow, "keys", "create", "narrow-terminal")
    table = run(narrow, "keys", "list").stdout
    assert created["id"] in table, table
    assert "+00:00" not in table and ".0" not in table, table
    model_id = as_json(narrow, "upload", str(path), "--name", "narrow")["modelId"]
    versions = run(narrow, "versions", "list", model_id).stdout
    assert "+00:00" not in versions, versions
    run(narrow, "keys", "revoke", created["id"])
    run(narrow, "models", "delete", model_id, "--yes")


def test_revoking_a_malformed_id_does_not_echo_it(
    logged_in: dict[str, str], modelport_up: RunningModelport
) -> None:
    import httpx

    secretish = "mp_abcdefabcdef_" + "s3cr3t" * 6 + "x"
    answer = httpx.delete(
        f"{modelport_up.url}/api/v1/keys/{secretish}",
        headers={"Authorization": f"Bearer {modelport_up.admin_key}"},
    )
    assert answer.status_code == 404
    assert "s3cr3t" not in answer.text


@pytest.mark.parametrize("group", [[], ["keys"], ["models"], ["versions"]])
def test_help_gives_each_command_one_line(group: list[str]) -> None:
    """In a wide terminal each command's summary is one line (a docstring's own line break
    used to split a sentence in two)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    shown = subprocess.run(
        [modelport_command(), *group, "--help"], env=env, capture_output=True, text=True
    )
    commands = shown.stdout.split("Commands")[1].splitlines()[1:-1]
    continued = [line for line in commands if line.startswith("│    ")]
    assert continued == [], shown.stdout
