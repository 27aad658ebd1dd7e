"""The images' dependency locks are current: they agree with pyproject.toml's extras,
requirements/targets.toml and the Dockerfiles, without asking the package index anything (what it
publishes tomorrow must not change this test's answer)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.version import Version

from scripts.lock import (
    COMMAND_PREFIX,
    INPUTS_PREFIX,
    PLATFORMS,
    PYTHON,
    REQUIREMENTS,
    ROOT,
    Pin,
    Target,
    canonical,
    load_targets,
    merge,
    read_lock,
)

TARGETS = load_targets()
# Targets whose Dockerfile stage still installs without a lock, and why. The torch image's lock
# resolves torch from the PyTorch CPU index (targets.toml: torch-backend), which the machine that
# generated the others could not reach; `python scripts/lock.py runtime-torch` where it can.
UNLOCKED = {"runtime-torch": "the PyTorch CPU index was unreachable where the locks were made"}
LOCKED = sorted(set(TARGETS) - set(UNLOCKED))


def environment(machine: str) -> dict[str, str]:
    """The marker environment of an image's Python on one architecture."""
    return {
        "python_version": PYTHON,
        "python_full_version": f"{PYTHON}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": machine,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def requirements_of(target: Target) -> list[Requirement]:
    """Everything the target asks for: the core dependencies, its extras (following
    `modelport[...]` references) and its own requirements."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    found = [Requirement(r) for r in [*project["dependencies"], *target.requirements]]
    pending, seen = list(target.extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in map(Requirement, extras[extra]):
            if requirement.name == project["name"]:
                pending += requirement.extras
            else:
                found.append(requirement)
    return found


def pins_for(pins: list[Pin], machine: str) -> dict[str, Pin]:
    env = environment(machine)
    chosen: dict[str, Pin] = {}
    for pin in pins:
        if pin.marker is None or Marker(pin.marker).evaluate(env):
            assert pin.name not in chosen, f"{pin.name} is pinned twice for {machine}"
            chosen[pin.name] = pin
    return chosen


def stages(dockerfile: Path) -> dict[str, str]:
    """A Dockerfile's named stages, each with its text (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    parts = re.split(r"(?im)^FROM\s+\S+(?:\s+AS\s+(\S+))?\s*$", text)
    return {name: body for name, body in zip(parts[1::2], parts[2::2], strict=True) if name}


def pip_installs(stage: str) -> list[str]:
    return [m.strip() for m in re.findall(r"pip install([^&\n]*)", stage)]


def test_every_target_has_a_lock_and_no_lock_lacks_a_target() -> None:
    locks = {path.stem for path in REQUIREMENTS.glob("*.lock")}
    assert locks == set(LOCKED), "run `python scripts/lock.py` or update requirements/targets.toml"
    assert set(UNLOCKED) <= set(TARGETS)


@pytest.mark.parametrize("name", LOCKED)
def test_lock_header_names_the_command_and_inputs_that_made_it(name: str) -> None:
    target = TARGETS[name]
    lines = target.lock.read_text().splitlines()
    assert f"{COMMAND_PREFIX}{name}" in lines
    prefix = len(INPUTS_PREFIX)
    recorded = [json.loads(line[prefix:]) for line in lines if line.startswith(INPUTS_PREFIX)]
    assert recorded == [target.inputs()], (
        f"requirements/targets.toml changed: run `python scripts/lock.py {name}`"
    )


@pytest.mark.parametrize("name", LOCKED)
def test_every_pin_is_exact_and_hashed(name: str) -> None:
    pins = read_lock(TARGETS[name].lock)
    assert pins
    for pin in pins:
        Version(pin.version)  # a PEP 440 version, or this raises
        assert pin.hashes, f"{pin.name} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin.hashes), pin.name


@pytest.mark.parametrize("machine", sorted(PLATFORMS))
@pytest.mark.parametrize("name", LOCKED)
def test_lock_satisfies_every_requirement_of_its_target(name: str, machine: str) -> None:
    """Editing an extra in pyproject.toml without re-locking fails here."""
    target = TARGETS[name]
    pinned = pins_for(read_lock(target.lock), machine)
    for requirement in requirements_of(target):
        if requirement.marker and not requirement.marker.evaluate(environment(machine)):
            continue
        pin = pinned.get(canonical(requirement.name))
        assert pin is not None, f"{requirement} is missing: run `python scripts/lock.py {name}`"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{pin.name}=={pin.version} does not satisfy {requirement}: re-lock {name}"
        )


@pytest.mark.parametrize("name", LOCKED)
def test_dockerfile_stage_installs_its_lock_then_modelport_alone(name: str) -> None:
    target = TARGETS[name]
    stage = stages(ROOT / target.dockerfile)[target.stage]
    lock = f"requirements/{name}.lock"
    assert f"COPY {lock} requirements/" in stage
    installs = pip_installs(stage)
    assert installs[0] == f"--require-hashes --no-deps -r {lock}"
    assert installs[1:] in (["--no-deps ."], ["--no-deps /wheels/modelport-*.whl"])


@pytest.mark.parametrize("dockerfile", sorted({t.dockerfile for t in TARGETS.values()}))
def test_no_image_installs_dependencies_without_a_lock(dockerfile: str) -> None:
    """A new stage that installs packages must come with a target and a lock."""
    named = {t.stage: t.name for t in TARGETS.values() if t.dockerfile == dockerfile}
    for stage, text in stages(ROOT / dockerfile).items():
        installs = pip_installs(text)
        if stage == "build" and installs == ["build"]:
            continue  # the wheel's build frontend, removed before any target installs
        if not installs or named.get(stage) in UNLOCKED:
            continue
        assert stage in named, f"{dockerfile}: stage {stage} installs {installs} with no lock"


def test_merge_marks_only_the_pins_that_differ_by_machine(tmp_path: Path) -> None:
    same = "six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via x\n"
    x86 = "torch==2.0.0+cpu \\\n    --hash=sha256:" + "b" * 64 + "\n"
    arm = "torch==2.0.0 \\\n    --hash=sha256:" + "c" * 64 + "\n"
    lock = tmp_path / "merged.lock"
    lock.write_text(merge({"x86_64": same + x86, "aarch64": same + arm}))
    pins = read_lock(lock)
    assert pins_for(pins, "x86_64")["torch"].version == "2.0.0+cpu"
    assert pins_for(pins, "aarch64")["torch"].hashes == ("sha256:" + "c" * 64,)
    assert [p.marker for p in pins if p.name == "six"] == [None]
