"""The GitHub Actions workflows cannot run here, so they are linted: actionlint (built from its Go
module, pinned in tools/actionlint/go.mod) must find nothing in them, and must find each of a
handful of typos planted in a copy, so the check is known to bite."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from testing.harness.actionlint import ensure_actionlint
from testing.harness.binaries import tool_versions

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
RELEASE = WORKFLOWS / "release.yml"
#: An action pinned to a major version (`@v4`), or the one action that names its branch that way.
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@(v\d+|release/v\d+)$")


@pytest.fixture(scope="module")
def actionlint() -> Path:
    return ensure_actionlint()


def lint(actionlint: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    # shellcheck and pyflakes are turned off: actionlint would run them only where they happen to
    # be installed, and the verdict must not depend on the machine.
    argv = [str(actionlint), "-no-color", "-oneline", "-shellcheck=", "-pyflakes="]
    return subprocess.run(
        [*argv, *map(str, files)], capture_output=True, text=True, timeout=120, check=False
    )


def test_actionlint_is_the_pinned_version(actionlint: Path) -> None:
    pinned = re.search(
        r"github\.com/rhysd/actionlint (v\S+)", (ROOT / "tools/actionlint/go.mod").read_text()
    )
    assert pinned
    shown = subprocess.run([actionlint, "-version"], capture_output=True, text=True, check=True)
    assert shown.stdout.splitlines()[0] == pinned.group(1)


def test_both_workflows_pass_actionlint(actionlint: Path) -> None:
    result = lint(actionlint, CI, RELEASE)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ("    runs-on: ubuntu-24.04", "    run-on: ubuntu-24.04", "[syntax-check]"),
        ("          sbom: true", "          sbom-enabled: true", "[action]"),
        ("needs.plan.outputs.version }}/", "needs.plan.outputs.verison }}/", "[expression]"),
        ("      packages: write # push", "      package: write # push", "[permissions]"),
        ("needs: [plan, pypi]", "needs: [plan, pypy]", "[job-needs]"),
        ("${{ secrets.GITHUB_TOKEN }}", "${{ secret.GITHUB_TOKEN }}", "[expression]"),
    ],
)
def test_actionlint_flags_a_planted_typo(
    actionlint: Path, tmp_path: Path, old: str, new: str, rule: str
) -> None:
    text = RELEASE.read_text()
    assert old in text
    bad = tmp_path / "release.yml"
    bad.write_text(text.replace(old, new, 1))
    result = lint(actionlint, bad)
    assert result.returncode == 1
    assert rule in result.stdout


def _steps(workflow: Path) -> list[dict[str, object]]:
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    return [step for job in jobs.values() for step in job.get("steps", [])]


@pytest.mark.parametrize("workflow", [CI, RELEASE], ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_major_version(workflow: Path) -> None:
    uses = [str(step["uses"]) for step in _steps(workflow) if "uses" in step]
    assert uses
    assert [u for u in uses if not PINNED.match(u)] == []


@pytest.mark.parametrize("workflow", [CI, RELEASE], ids=lambda p: p.name)
def test_every_job_states_its_permissions(workflow: Path) -> None:
    """Least privilege: nothing at the top, and each job asks for what it needs."""
    document = yaml.safe_load(workflow.read_text())
    assert document["permissions"] == {}
    assert all("permissions" in job for job in document["jobs"].values())


def test_the_release_publishes_with_the_helm_the_tests_use() -> None:
    [setup] = [s for s in _steps(RELEASE) if str(s.get("uses", "")).startswith("azure/setup-helm")]
    assert setup["with"] == {"version": tool_versions().helm}


def test_ci_runs_the_test_script() -> None:
    assert any(step.get("run") == "bash scripts/test.sh" for step in _steps(CI))
