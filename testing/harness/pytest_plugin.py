"""Pytest fixtures for a real test cluster.

Enable with `pytest_plugins = ["testing.harness.pytest_plugin"]` in the root conftest.py.

`k8s_cluster` is session-scoped: one cluster per test process, on its own free ports and in its
own folder, so several pytest-xdist workers can each run one at once. Tests that use it get the
`cluster` marker (`-m "not cluster"` leaves them out).
Set MODELPORT_E2E_KEEP=1 to keep the cluster folder (logs, certificates, kubeconfig) afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.harness.cluster import Cluster

CLUSTER_FIXTURES = frozenset({"k8s_cluster", "kubeconfig", "k8s_namespace"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use the cluster `cluster`, so `-m "not cluster"` leaves them out."""
    for item in items:
        if CLUSTER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def k8s_cluster() -> Iterator[Cluster]:
    """A started cluster with two CPU and two GPU fake nodes, stopped after the session."""
    keep = os.environ.get("MODELPORT_E2E_KEEP") == "1"
    with Cluster(keep_dir=keep) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kubeconfig(k8s_cluster: Cluster) -> Path:
    """The admin kubeconfig of `k8s_cluster`."""
    return k8s_cluster.kubeconfig


@pytest.fixture
def k8s_namespace(k8s_cluster: Cluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards.

    It is yielded once its `default` ServiceAccount exists, so pods can be created at once.
    """
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    k8s_cluster.kubectl("create", "namespace", name)
    k8s_cluster.kubectl(
        "wait", "serviceaccount/default", "-n", name, "--for=create", "--timeout=60s"
    )
    yield name
    k8s_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
