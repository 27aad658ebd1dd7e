"""Pytest fixtures for a real test cluster.

Enable with `pytest_plugins = ["e2e.harness.pytest_plugin"]` in the root conftest.py.

`k8s_cluster` is session-scoped: one cluster per test process (each pytest-xdist worker starts
its own, on its own ports and folder). Tests that use it get the `cluster` marker, so
`-m "not cluster"` leaves them out. Set MODELPORT_E2E_KEEP=1 to keep the cluster folder (logs,
certificates, kubeconfig) after the session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.harness.cluster import Cluster

CLUSTER_FIXTURES = frozenset({"k8s_cluster", "kubeconfig", "k8s_namespace"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
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
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    k8s_cluster.kubectl("create", "namespace", name)
    yield name
    k8s_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
