"""Root pytest configuration: registers the fixtures that start real services.

Each plugin starts its service lazily, the first time a test asks for it.
"""

from __future__ import annotations

pytest_plugins = [
    "testing.s3",
    "testing.postgres",
    "testing.models",
    "testing.up",
    "testing.harness.pytest_plugin",
]


def pytest_configure(config: object) -> None:
    """TensorFlow and Triton (which torch.export pulls in) each bundle LLVM, and Triton loaded
    after TensorFlow aborts the process; so every test process loads Triton first."""
    from testing.models import load_llvm_users_in_a_safe_order

    load_llvm_users_in_a_safe_order()
