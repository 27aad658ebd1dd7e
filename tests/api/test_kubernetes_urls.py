"""The endpoint URL the Kubernetes deployer reports before the operator writes one: the
operator's rule, under host and path routing alike."""

from __future__ import annotations

import pytest
from kubernetes.client import Configuration
from modelport.api.deployers.kubernetes import KubernetesDeployer
from modelport.api.settings import ApiSettings
from modelport.core.spec import Routing


def _url(settings: ApiSettings) -> str:
    deployer = KubernetesDeployer(
        namespace="team-a",
        configuration=Configuration(),
        public_url=settings.public_url,
        endpoints=settings.endpoint_rule(),
    )
    try:
        return deployer.endpoint_url("m0123")
    finally:
        deployer.close()


@pytest.mark.parametrize(
    ("routing", "url"),
    [
        (Routing.HOST, "https://m0123.team-a.models.example.com"),
        (Routing.PATH, "https://models.example.com/models/team-a/m0123"),
    ],
)
def test_the_url_follows_the_routing(routing: Routing, url: str) -> None:
    settings = ApiSettings(kubernetes_ingress_host="models.example.com", kubernetes_routing=routing)
    assert _url(settings) == url


def test_plain_http_and_a_custom_prefix() -> None:
    settings = ApiSettings(
        kubernetes_ingress_host="models.example.com",
        kubernetes_routing=Routing.PATH,
        kubernetes_path_prefix="/serve/",
        kubernetes_ingress_tls=False,
    )
    assert _url(settings) == "http://models.example.com/serve/team-a/m0123"


def test_without_an_ingress_domain_the_api_url_is_used() -> None:
    assert _url(ApiSettings(public_url="http://api.example/")) == "http://api.example/models/m0123"
