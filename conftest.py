"""Root pytest configuration: registers the fixtures that start real services.

Each plugin starts its service lazily, the first time a test asks for it.
"""

from __future__ import annotations

import importlib.util


def _present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


pytest_plugins = [
    name
    for name in (
        "tests.fixtures.s3",
        "tests.fixtures.postgres",
        "tests.fixtures.models",
        "tests.fixtures.up",
        "e2e.harness.pytest_plugin",
    )
    if _present(name)
]
