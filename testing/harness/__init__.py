"""A real Kubernetes test cluster for Modelport's end-to-end tests (see `cluster.py`)."""

from testing.harness.binaries import ensure_binaries
from testing.harness.cluster import Cluster, ClusterError, CommandError

__all__ = ["Cluster", "ClusterError", "CommandError", "ensure_binaries"]
