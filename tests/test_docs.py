"""The commands in README.md and docs/ are the ones that exist and they work as written.

* every ``modelport ...`` command line in a shell block or an inline code span names a real
  command and real options (the CLI parses it);
* every ``MODELPORT_*`` variable the docs mention is read somewhere in the code or scripts;
* the README's "Try it" block runs, as written, against a real ``modelport up`` (only the key,
  the address and the model id it returns are filled in).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from testing.models import ModelFile
from testing.up import RunningModelport, wait_for

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_COMMAND_START = re.compile(r"(?:^|&&|\|\||;|\$\(|\|)\s*(?:\S*/)?(modelport\s[^|;&`)#]*)")


def _shell_lines(text: str) -> list[str]:
    """The lines of the shell blocks, continuation lines joined."""
    lines: list[str] = []
    for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [ln.strip().removeprefix("$ ") for ln in joined.splitlines()]
    return lines


def _usage_to_args(text: str) -> list[str]:
    """A documented command line as arguments: ``[--x]`` optional parts kept, ``a|b`` choices
    reduced to the first, ``PATH...`` to ``PATH``."""
    text = text.replace("[", " ").replace("]", " ").replace("...", "")
    text = re.sub(r"(\S+)\|\S+", r"\1", text)
    return shlex.split(text)


def documented_commands() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for doc in DOCS:
        text = doc.read_text()
        candidates = [m.group(1) for ln in _shell_lines(text) for m in _COMMAND_START.finditer(ln)]
        candidates += re.findall(r"`(modelport\s[^`]+)`", text)
        for candidate in candidates:
            args = _usage_to_args(candidate)[1:]
            if args:
                found.append((f"{doc.name}: {candidate.strip()}", args))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_modelport_commands() -> None:
    shown = {args[0] for _, args in COMMANDS}
    assert {"up", "upload", "login", "models", "keys", "predict", "scan"} <= shown


@pytest.mark.parametrize(("where", "args"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_parses(where: str, args: list[str]) -> None:
    from modelport.api.cli import cli

    if args[0] == "scan":  # the scanner parses its own arguments (argparse)
        from modelport.core.scan.cli import _parser

        rest = [a for a in args[1:] if a != "--help"]
        if rest:
            _parser().parse_args(rest)
        return
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, f"{where}\n{result.output}"


def _known_variables() -> set[str]:
    sources = [
        *REPO.glob("*/modelport/**/*.py"),
        *REPO.glob("scripts/*"),
        *REPO.glob("testing/**/*.py"),
        *REPO.glob("charts/modelport/templates/*"),
        *REPO.glob(".ci/*"),
    ]
    names: set[str] = set()
    for path in sources:
        if path.is_file():
            names |= set(re.findall(r"MODELPORT_[A-Z0-9_]+", path.read_text(errors="replace")))
    for settings_class, prefix in _settings_classes():
        for field in settings_class.model_fields:
            names.add(prefix + field.upper())
    return names


def _settings_classes() -> list[tuple[type[BaseSettings], str]]:
    from modelport.api.settings import ApiSettings
    from modelport.operator.settings import OperatorSettings
    from modelport.runtime.settings import RuntimeSettings

    return [
        (cls, str(cls.model_config.get("env_prefix", "")))
        for cls in (ApiSettings, OperatorSettings, RuntimeSettings)
    ]


def test_documented_variables_exist() -> None:
    known = _known_variables()
    unknown = []
    for doc in DOCS:
        for name in set(re.findall(r"MODELPORT_[A-Z0-9_]+", doc.read_text())):
            nested = name.split("__")[0]
            if name not in known and nested not in known:
                unknown.append(f"{doc.name}: {name}")
    assert not unknown, "the docs name variables nothing reads:\n" + "\n".join(sorted(unknown))


def _try_it_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Try it.*?```sh\n(.*?)```", text, re.S)
    assert block, "README.md has a 'Try it' section with a sh block"
    joined = re.sub(r"\\\n\s*", " ", block.group(1))
    return [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.startswith("#")]


def test_readme_try_it_runs_as_written(
    modelport_up: RunningModelport,
    onnx_model_files: dict[str, ModelFile],
    tmp_path: Path,
) -> None:
    (tmp_path / "model.onnx").write_bytes(onnx_model_files["onnx_sklearn_logreg"].path.read_bytes())
    model_id = "mf445e871df13581c"  # the README's example id, until the upload returns the real
    script = ""

    def fill(command: str) -> str:
        key = modelport_up.admin_key
        if "MODELPORT_INFERENCE_KEY=mp_..." in command:
            key = modelport_up.inference_key
        return (
            command.replace("mp_...", key)
            .replace("http://127.0.0.1:8000", modelport_up.url)
            .replace("mf445e871df13581c", model_id)
        )

    commands = _try_it_commands()
    assert [c.split()[0] for c in commands] == ["export", "export", "curl", "curl"], commands
    for command in commands:
        script += fill(command) + "\n"
        if not command.startswith("curl"):
            continue
        if "/predict" in command:
            predict = script
            wait_for(
                lambda: '"predictions"' in _bash(predict, tmp_path, ok=False),  # noqa: B023
                timeout=90,
                what="the README's prediction",
            )
            continue
        answer = _bash(script, tmp_path)
        found = re.search(r'"modelId":"(m[0-9a-f]+)"', answer)
        assert found, answer
        model_id = found.group(1)
        script = script.replace(fill(command) + "\n", "")  # upload once
    assert httpx.get(f"{modelport_up.url}/api/v1/models/{model_id}", headers={
        "Authorization": f"Bearer {modelport_up.admin_key}"}).status_code == 200  # fmt: skip


def _bash(script: str, cwd: Path, *, ok: bool = True) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if ok:
        assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    return done.stdout
