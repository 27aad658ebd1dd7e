"""Security tests: one test per attack, each named after the attack it stops (docs/security.md,
"Threat model", maps each boundary to its test). They run against the real components: the live
control API on PostgreSQL and the S3 server (the fixtures below), a real ``modelport up``
(``modelport_up``) and the real test cluster (``cluster``)."""

from __future__ import annotations

from tests.api.conftest import api, db_url, make_api

__all__ = ["api", "db_url", "make_api"]
