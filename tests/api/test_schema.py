"""Property-based tests from the API's own OpenAPI schema: no 5xx, no schema violations."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from testing.payloads import onnx_add_one
from tests.api.conftest import LiveApi, MakeApi

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]


@pytest.fixture
def seeded(make_api: MakeApi) -> tuple[LiveApi, dict[str, str]]:
    api = make_api()
    user = api.user()
    assert api.upload(user, onnx_add_one()).status_code == 201
    return api, user.headers


def _schema(api: LiveApi) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json")


def _check_operation(op, *, headers: dict[str, str], base_url: str) -> None:
    # What a schema cannot express is refused with 400 even for schema-valid requests: which
    # bytes make a model file (uploads), and minReplicas <= maxReplicas (model settings).
    cross_field = "multipart" in str(op.definition.raw) or (
        op.method == "patch" and op.path == "/api/v1/models/{model_id}"
    )
    excluded: list[Any] = [positive_data_acceptance] if cross_field else []

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=op.as_strategy())
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, base_url=base_url, excluded_checks=excluded)

    check()


def test_openapi_schema_holds_under_generated_requests(
    seeded: tuple[LiveApi, dict[str, str]],
) -> None:
    api, headers = seeded
    failures: list[str] = []
    operation: Any
    for operation in _schema(api).get_all_operations():
        op = operation.ok()
        if op.path.startswith("/api/v1/internal"):
            continue
        try:
            _check_operation(op, headers=headers, base_url=api.url)
        except BaseException as exc:  # collect every operation's failure, not only the first
            failures.append(f"{op.method.upper()} {op.path}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
