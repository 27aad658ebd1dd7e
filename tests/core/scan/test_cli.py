"""``modelport scan``: human and JSON output, exit codes 0/1/2."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

from modelport.core.scan.cli import main

from testing.malicious import system


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    safe = tmp_path / "safe.pkl"
    safe.write_bytes(pickle.dumps({"w": [1, 2, 3]}, protocol=5))
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(system(f"touch {tmp_path / 'MARKER'}"))
    deep = tmp_path / "deep.pkl"
    deep.write_bytes(b"\x80\x02" + b"(" * 1000 + b"N" + b"t" * 1000 + b".")
    return safe, bad, deep


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_exit_codes(tmp_path: Path) -> None:
    safe, bad, deep = _files(tmp_path)
    assert _run(str(safe))[0] == 0
    assert _run(str(safe), str(bad))[0] == 1
    assert _run(str(safe), str(deep))[0] == 2
    assert _run(str(deep), str(bad))[0] == 1
    assert _run(str(tmp_path / "missing.pkl"))[0] == 2
    assert not (tmp_path / "MARKER").exists()


def test_human_output_names_the_finding(tmp_path: Path) -> None:
    _, bad, _ = _files(tmp_path)
    code, text = _run(str(bad))
    assert code == 1
    assert text.startswith("UNSAFE")
    assert "disallowed_global: import of os.system is not allowlisted" in text


def test_json_output(tmp_path: Path) -> None:
    safe, bad, deep = _files(tmp_path)
    code, text = _run("--json", str(safe), str(bad), str(deep))
    doc = json.loads(text)
    assert code == 1
    outcomes = [(Path(r["path"]).name, r["outcome"]) for r in doc["results"]]
    assert outcomes == [("safe.pkl", "safe"), ("bad.pkl", "unsafe"), ("deep.pkl", "undecidable")]
    assert doc["results"][1]["findings"][0]["code"] == "disallowed_global"
    assert len(doc["results"][0]["sha256"]) == 64
    assert doc["results"][2]["findings"][0]["location"] == "max_depth"


def test_format_override(tmp_path: Path) -> None:
    safe, _, _ = _files(tmp_path)
    code, text = _run("--format", "onnx", str(safe))
    assert code == 1
    assert "format_mismatch" in text


def test_runs_as_a_module(tmp_path: Path) -> None:
    safe, bad, _ = _files(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "modelport.core.scan.cli", str(safe), str(bad)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "SAFE" in proc.stdout and "UNSAFE" in proc.stdout


def test_a_file_that_is_not_a_model_is_not_scanned(tmp_path: Path) -> None:
    """A text file is refused with the supported types listed, without a digest of no bytes."""
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk\n")
    code, text = _run(str(notes))
    assert code == 2
    assert text.startswith("NOT SCANNED")
    assert "sha256" not in text
    assert "not a model file: unsupported file type 'txt'" in text and ".joblib" in text
    code, doc_text = _run("--json", str(notes))
    assert json.loads(doc_text)["results"][0]["sha256"] is None
