"""A real Kubernetes test cluster for Modelport's end-to-end tests (see `cluster.py`)."""

from e2e.harness.binaries import ensure_binaries
from e2e.harness.cluster import Cluster, ClusterError, CommandError

__all__ = ["Cluster", "ClusterError", "CommandError", "ensure_binaries"]
