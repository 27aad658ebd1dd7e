"""The ``modelport`` command: ``scan`` delegates to the scanner with its exit codes."""

from __future__ import annotations

from pathlib import Path

from modelport.api.cli import cli
from typer.testing import CliRunner

from testing.payloads import malicious_pickle, onnx_add_one


def test_scan_exit_codes(tmp_path: Path) -> None:
    safe, unsafe = tmp_path / "model.onnx", tmp_path / "model.pkl"
    safe.write_bytes(onnx_add_one())
    unsafe.write_bytes(malicious_pickle())
    runner = CliRunner()
    assert runner.invoke(cli, ["scan", str(safe)]).exit_code == 0
    result = runner.invoke(cli, ["scan", str(safe), str(unsafe)])
    assert result.exit_code == 1
    assert "model.pkl" in result.output


def test_upload_needs_a_key(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(onnx_add_one())
    result = CliRunner().invoke(cli, ["upload", str(model), "--name", "m"], env={})
    assert result.exit_code == 2
