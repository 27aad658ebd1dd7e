"""One version: the package metadata is the source; every other copy must agree with it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from modelport.core.version import VERSION

ROOT = Path(__file__).resolve().parents[1]


def test_the_running_code_reports_the_package_version() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert declared == VERSION


def test_the_chart_deploys_this_version() -> None:
    chart = yaml.safe_load((ROOT / "charts" / "modelport" / "Chart.yaml").read_text())
    assert chart["appVersion"] == VERSION


def test_the_operator_pulls_runtime_images_of_its_own_version() -> None:
    from modelport.operator.settings import OperatorSettings

    assert OperatorSettings().image_tag == VERSION
