"""Shared test infrastructure: real servers (PostgreSQL, the S3-API server, the Kubernetes test
cluster, the operator as a process, a running ``modelport up``) and the model factories.

Tests, end-to-end tests and benchmarks import from here and never from ``tests``. The modules
that define pytest fixtures are registered as plugins by the root ``conftest.py``.
"""
