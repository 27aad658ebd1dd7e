"""Root pytest configuration: registers the fixtures that start real services.

Each plugin starts its service lazily, the first time a test asks for it.
"""

from __future__ import annotations

import importlib.util

_PLUGINS = (
    "tests.fixtures.s3",
    "tests.fixtures.postgres",
    "tests.fixtures.models",
    "e2e.harness.pytest_plugin",
)

pytest_plugins = [name for name in _PLUGINS if importlib.util.find_spec(name) is not None]
