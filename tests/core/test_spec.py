"""The endpoint URL rule the operator and the control API share, under both routings."""

from __future__ import annotations

import pytest
from modelport.core.spec import EndpointRule, Ingress, IngressTls, Routing

HOST = EndpointRule(domain="models.example.com")
PATH = EndpointRule(domain="models.example.com", routing=Routing.PATH, path_prefix="/m/")


@pytest.mark.parametrize(
    ("rule", "host", "path", "url"),
    [
        (HOST, "iris.team-a.models.example.com", "/", "https://iris.team-a.models.example.com"),
        (
            PATH,
            "models.example.com",
            "/m/team-a/iris",
            "https://models.example.com/m/team-a/iris",
        ),
    ],
    ids=["host", "path"],
)
def test_each_routing_places_the_model(rule: EndpointRule, host: str, path: str, url: str) -> None:
    assert rule.host("iris", "team-a") == host
    assert rule.path("iris", "team-a") == path
    assert rule.url("iris", "team-a") == url


@pytest.mark.parametrize("routing", list(Routing))
def test_the_spec_overrides_win(routing: Routing) -> None:
    rule = EndpointRule(domain="models.example.com", routing=routing)
    ingress = Ingress(host="iris.acme.io", path="/v1/", tls=IngressTls(enabled=False))
    assert rule.url("iris", "team-a", ingress) == "http://iris.acme.io/v1"


def test_plain_http_without_tls() -> None:
    rule = EndpointRule(domain="models.example.com", routing=Routing.PATH, tls=False)
    assert rule.url("iris", "team-a") == "http://models.example.com/models/team-a/iris"
    assert not rule.secure(Ingress())
