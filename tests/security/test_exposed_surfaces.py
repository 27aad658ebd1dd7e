"""Surfaces that answered strangers: metrics through a model's public URL and on the API's own
port, model metadata without a key, and API docs that loaded scripts from a CDN.

Real components: a real runtime process, the live control API on PostgreSQL and the S3 server,
and real local runtimes behind the API's proxy (the ``modelport up`` deployer)."""

from __future__ import annotations

import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from modelport.api.settings import SubscriptionLimits
from modelport.api.up import embedded_settings

from testing.payloads import onnx_add_one
from tests.api.conftest import LiveApi, MakeApi
from tests.runtime.helpers import Artifact, encrypt_file, running, runtime_args, write_keys

KEY = "mp_live_metadata-secret"


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def _refused(response: httpx.Response) -> None:
    """A 401 in the design's error shape that tells nothing about the model."""
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthenticated"


# --- the runtime ---------------------------------------------------------------------------


@pytest.fixture
def artifact(sklearn_model_files, tmp_path: Path) -> Artifact:
    return encrypt_file(sklearn_model_files["sklearn_logreg_joblib"].path, tmp_path, "joblib")


@pytest.mark.slow
def test_runtime_metadata_needs_key(artifact: Artifact, tmp_path: Path) -> None:
    """A stranger who knows a model's URL learns nothing from its metadata: server and model
    metadata (v2, versioned v2 and KServe v1) need the key inference needs; the probes'
    health endpoints stay open."""
    keys = tmp_path / "auth-keys.json"
    write_keys(keys, {"k_1": (KEY, None)})
    usage_token = tmp_path / "usage-token"
    usage_token.write_text("the-models-usage-token\n")
    env = {"MODELPORT_RUNTIME_USAGE_TOKEN_FILE": str(usage_token)}
    with running(runtime_args(artifact, "m", "--auth-keys-file", str(keys)), env) as proc:
        metadata = ["/v2", "/v2/models/m", "/v2/models/m/versions/1", "/v1/models", "/v1/models/m"]
        control_api = {"Authorization": "Bearer the-models-usage-token"}
        for path in metadata:
            _refused(httpx.get(proc.url + path))
            _refused(httpx.get(proc.url + path, headers={"X-API-Key": "mp_live_wrong"}))
            with_key = httpx.get(proc.url + path, headers={"Authorization": f"Bearer {KEY}"})
            assert with_key.status_code == 200, (path, with_key.text)
            # The control API reads the schema it shows the owner with the usage token...
            assert httpx.get(proc.url + path, headers=control_api).status_code == 200
        # ...which calls no model.
        body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
        infer = httpx.post(proc.url + "/v2/models/m/infer", json=body, headers=control_api)
        assert infer.status_code == 401
        assert httpx.get(proc.url + "/v2/models/m").status_code == 401
        assert httpx.get(proc.url + "/v2/health/live").json() == {"live": True}
        assert httpx.get(proc.url + "/v2/health/ready").json() == {"ready": True}
        assert httpx.get(proc.url + "/v2/models/m/ready").json() == {"name": "m", "ready": True}


@pytest.mark.slow
def test_runtime_metrics_not_on_inference_port(artifact: Artifact) -> None:
    """Whoever reaches the inference port (through the Ingress, say) gets no metrics: they are
    served on the metrics port only."""
    with running(runtime_args(artifact, "m"), {"MODELPORT_RUNTIME_AUTH_REQUIRED": "false"}) as proc:
        on_inference_port = httpx.get(proc.url + "/metrics")
        assert on_inference_port.status_code == 404
        assert "modelport_runtime" not in on_inference_port.text
        scraped = httpx.get(proc.metrics_url)
        assert scraped.status_code == 200
        assert 'modelport_runtime_model_ready{model="m"} 1.0' in scraped.text


@pytest.mark.slow
def test_dns_rebinding_cannot_read_metrics(artifact: Artifact) -> None:
    """A web page that rebinds its own name to the metrics address (loopback under ``modelport
    up``) sends that name as ``Host``: refused. Scrapers address pods by IP."""
    with running(runtime_args(artifact, "m"), {"MODELPORT_RUNTIME_AUTH_REQUIRED": "false"}) as proc:
        rebound = httpx.get(proc.metrics_url, headers={"Host": "evil.example"})
        assert rebound.status_code == 400, rebound.text
        assert "modelport_runtime" not in rebound.text
        port = proc.metrics_url.split(":")[2].split("/")[0]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "10.1.2.3:9090"):
            assert httpx.get(proc.metrics_url, headers={"Host": host}).status_code == 200, host


# --- the local proxy -----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.slow
def test_metrics_not_reachable_through_model_url(make_api: MakeApi) -> None:
    """``/models/{id}/metrics`` under the API's address (``modelport up``'s proxy) reaches no
    metrics, with or without a key; the runtime's metrics are on a loopback port of their own,
    which nothing forwards to."""
    api = make_api(
        local_runtimes=True, free=SubscriptionLimits(requests_per_minute=0, models_limit=10)
    )
    owner = api.user()
    created = api.client.post("/api/v1/keys", headers=owner.headers, json={"name": "k"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    r = api.upload(owner, onnx_add_one(), name="adder")
    assert r.status_code == 201, r.text
    model_id, endpoint = r.json()["modelId"], r.json()["endpointUrl"]

    def ready() -> bool:
        meta = api.client.get(f"/api/v1/models/{model_id}", headers=owner.headers)
        return bool(meta.json()["phase"] == "Ready")

    _wait_for(ready, "the runtime")
    for headers in ({}, {"Authorization": f"Bearer {key}"}):
        through_proxy = httpx.get(f"{endpoint}/metrics", headers=headers)
        assert through_proxy.status_code == 404, through_proxy.text
        assert "modelport_runtime" not in through_proxy.text
    _refused(httpx.get(f"{endpoint}/v2/models/{model_id}"))

    # The metrics exist, on the runtime's own loopback metrics port.
    process = api.ctx.deployer._supervisor._models[model_id].current  # type: ignore[attr-defined]
    assert process is not None and process.metrics_port != process.port
    scraped = httpx.get(f"http://127.0.0.1:{process.metrics_port}/metrics")
    assert f'modelport_runtime_model_ready{{model="{model_id}"}} 1.0' in scraped.text


# --- the control API -----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.s3
def test_api_metrics_not_on_public_port(api: LiveApi, tmp_path: Path) -> None:
    """The API's port (what the Ingress routes) serves no metrics; they are on the metrics port,
    and ``modelport up`` runs no metrics server at all."""
    api.client.get("/api/v1/models")  # a 401, counted
    public = api.client.get("/metrics")
    assert public.status_code == 404
    assert "modelport_api" not in public.text
    assert "modelport_api_requests_total" in api.metrics()
    assert urlsplit(api.metrics_url).port != urlsplit(api.url).port
    assert embedded_settings(tmp_path / "up", port=8000).metrics_port is None


class _References(HTMLParser):
    """Every URL a page makes the browser load: scripts, styles, icons, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href", "spec-url"):
            value = found.get(name)
            if value and tag in {"script", "link", "img", "iframe", "redoc"}:
                self.urls.append(value)
        if tag == "script" and not found.get("src"):
            self.inline_scripts += 1


@pytest.mark.postgres
@pytest.mark.s3
def test_docs_load_no_foreign_scripts(api: LiveApi) -> None:
    """A CDN (or whoever controls it) cannot run script in the API's origin: every page of the
    API loads its scripts, styles and images from the API itself, runs no inline script, and
    says so in a Content-Security-Policy that names no other origin."""
    origin = urlsplit(api.url).netloc
    for page in ("/docs", "/redoc", "/ui/"):
        response = api.client.get(page)
        assert response.status_code == 200, page
        refs = _References()
        refs.feed(response.text)
        assert refs.urls, page
        assert refs.inline_scripts == 0, page
        for url in refs.urls:
            absolute = urljoin(api.url + page, url)
            assert urlsplit(absolute).netloc == origin, (page, url)
            assert api.client.get(absolute).status_code == 200, (page, url)
        header = response.headers["content-security-policy"]
        policy = {
            name: value for name, _, value in (p.strip().partition(" ") for p in header.split(";"))
        }
        assert policy["script-src"] == "'self'", page
        assert "http" not in header and "*" not in header, page
