"""Scanner benchmark: who catches what (Modelport vs picklescan vs modelscan), and throughput.

    .venv/bin/python benchmarks/scan_bench.py [--no-peers] [--no-keras] [--size-mb 500]

The peers run from PyPI in their own virtual environment (created on first use with uv):
    ~/.cache/modelport/bench-venv-scanners  (picklescan==1.0.5, modelscan==0.8.8)
Both are driven through their Python APIs in one helper process and mapped to the exit codes
their CLIs would return (picklescan: 0 clean, 1 dangerous, 2 scan error; modelscan: 0 clean,
1 issues, 2 errors, 3 nothing scanned). The malicious files are the test suite's builders
(tests/core/scan/malicious.py); the benign files are real models trained here.

Prints markdown tables: per-technique detection, false positives, throughput in MB/s (in this
process and in the limited child process the API scans uploads in, plain and zlib-compressed),
and what refusing a 1.5 GiB decompression bomb costs: time, this process's peak RSS growth, the
scan child's peak RSS.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from modelport.core.scan import Outcome, scan
from modelport.core.scan.sandbox import run_isolated, scan_isolated

from testing.bombs import zlib_joblib_bomb
from testing.malicious import CASES, write_all
from testing.memory import peak_rss, reset_peak_rss

PEER_VENV = Path.home() / ".cache/modelport/bench-venv-scanners"
PEER_PINS = ["picklescan==1.0.5", "modelscan==0.8.8", "numpy", "h5py"]

PEER_HELPER = r"""
import json, sys, io, contextlib, logging
logging.disable(logging.CRITICAL)
from picklescan.scanner import scan_file_path
from modelscan.modelscan import ModelScan

def picklescan_rc(path, strict):
    try:
        r = scan_file_path(path, strict=strict)
    except Exception:
        return 2
    if r.scan_err:
        return 2
    return 0 if r.issues_count == 0 else 1

def modelscan_rc(path):
    ms = ModelScan()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            ms.scan(path)
        except Exception:
            return 2
    if not ms.scanned:
        return 3
    if ms.errors:
        return 2
    return 1 if ms.issues.all_issues else 0

out = {}
for path in json.load(sys.stdin):
    out[path] = {"picklescan": picklescan_rc(path, False),
                 "picklescan --strict": picklescan_rc(path, True),
                 "modelscan": modelscan_rc(path)}
print(json.dumps(out))
"""


def ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin/python"
    if not python.exists():
        subprocess.run(["uv", "venv", "-q", "--python", "3.11", str(PEER_VENV)], check=True)
        subprocess.run(
            ["uv", "pip", "install", "-q", "--python", str(python), *PEER_PINS], check=True
        )
    return python


def run_peers(paths: list[Path]) -> dict[str, dict[str, int]]:
    python = ensure_peer_venv()
    proc = subprocess.run(
        [str(python), "-c", PEER_HELPER],
        input=json.dumps([str(p) for p in paths]),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, dict[str, int]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def benign_files(folder: Path, keras: bool) -> list[tuple[str, Path]]:
    """Real models: sklearn (pickle, joblib at each compression), torch, ONNX, Keras."""
    import joblib
    from modelport.core.scan._estimators import sklearn_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = sklearn_models()
    out: list[tuple[str, Path]] = []
    for name in ("logistic_regression", "random_forest", "hist_gradient_boosting", "pipeline",
                 "svc", "kmeans", "mlp"):  # fmt: skip
        path = folder / f"{name}.pkl"
        path.write_bytes(pickle.dumps(models[name], protocol=5))
        out.append((f"sklearn {name} (pickle)", path))
        for compress in (0, "zlib", "xz", "lz4"):
            path = folder / f"{name}-{compress}.joblib"
            buf = io.BytesIO()
            joblib.dump(models[name], buf, compress=(compress, 3) if compress else 0)
            path.write_bytes(buf.getvalue())
            out.append((f"sklearn {name} (joblib {compress or 'raw'})", path))
    out.extend(_torch_files(folder))
    out.extend(_onnx_files(folder, models))
    if keras:
        out.extend(_keras_files(folder))
    return out


def _torch_files(folder: Path) -> list[tuple[str, Path]]:
    import torch

    from testing.torch_model import Net

    net = Net().eval()
    example = torch.randn(3, 4)
    files = {
        "torch state_dict (zip)": folder / "sd.pt",
        "torch state_dict (legacy)": folder / "legacy.pth",
        "TorchScript (script)": folder / "script.pt",
        "TorchScript (trace)": folder / "trace.pt",
        "torch.export program": folder / "program.pt",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(net.state_dict(), files["torch state_dict (zip)"])
        torch.save(net.state_dict(), files["torch state_dict (legacy)"],
                   _use_new_zipfile_serialization=False)  # fmt: skip
        torch.jit.save(torch.jit.script(net), files["TorchScript (script)"])
        traced = torch.jit.trace(net, example)  # type: ignore[no-untyped-call]
        torch.jit.save(traced, files["TorchScript (trace)"])
        torch.export.save(torch.export.export(net, (example,)), files["torch.export program"])
        onnx_path = folder / "torch.onnx"
        torch.onnx.export(net, (example,), onnx_path, dynamo=False)
    return [*files.items(), ("ONNX from torch.onnx", onnx_path)]


def _onnx_files(folder: Path, models: dict[str, Any]) -> list[tuple[str, Path]]:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).random((30, 3)).astype(np.float32)
    path = folder / "skl2onnx.onnx"
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    path.write_bytes(to_onnx(model, x[:1]).SerializeToString())
    return [("ONNX from skl2onnx", path)]


def _keras_files(folder: Path) -> list[tuple[str, Path]]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tf_keras

    out = []
    for tag, k in (("Keras 3", keras), ("tf_keras", tf_keras)):
        model = k.Sequential([k.layers.Input((4,)), k.layers.Dense(2, activation="relu")])
        model.compile(optimizer="adam", loss="mse")
        path = folder / f"{tag.replace(' ', '_')}.h5"
        model.save(path)
        out.append((f"{tag} Sequential (.h5)", path))
        if k is keras:
            path = path.with_suffix(".keras")
            model.save(path)
            out.append((f"{tag} Sequential (.keras)", path))
    return out


def ours(path: Path) -> str:
    verdict = scan(path)
    if verdict.outcome is Outcome.SAFE:
        return "✗"
    return "✓" if verdict.outcome is Outcome.UNSAFE else "U"


def peer_mark(rc: int) -> str:
    return {0: "✗", 1: "✓"}.get(rc, "E")


def detection_table(folder: Path, peers: bool) -> tuple[str, dict[str, int]]:
    marker = folder / "MARKER"
    files = write_all(folder, marker)
    peer = run_peers([p for _, p in files]) if peers else {}
    tools = ["Modelport", "picklescan", "picklescan --strict", "modelscan"]
    caught = dict.fromkeys(tools, 0)
    rows = ["| # | technique | file | " + " | ".join(tools) + " |",
            "|---|---|---|" + "---|" * len(tools)]  # fmt: skip
    for i, (case, path) in enumerate(files, 1):
        marks = [ours(path)] + [peer_mark(peer[str(path)][t]) if peers else "-" for t in tools[1:]]
        for tool, mark in zip(tools, marks, strict=True):
            caught[tool] += mark == "✓"
        rows.append(f"| {i} | {case.technique} | `{case.filename}` | " + " | ".join(marks) + " |")
    assert not marker.exists(), "a payload ran during scanning"
    return "\n".join(rows), caught


def false_positive_table(folder: Path, peers: bool, keras: bool) -> str:
    files = benign_files(folder, keras)
    peer = run_peers([p for _, p in files]) if peers else {}
    tools = ["Modelport", "picklescan", "picklescan --strict", "modelscan"]
    rows = ["| model | " + " | ".join(tools) + " |", "|---|" + "---|" * len(tools)]
    for label, path in files:
        verdict = scan(path)
        marks = ["accepted" if verdict.safe else f"refused ({verdict.findings[0].code})"]
        for tool in tools[1:]:
            rc = peer[str(path)][tool] if peers else -1
            marks.append({0: "accepted", 1: "flagged", -1: "-"}.get(rc, f"error (rc {rc})"))
        rows.append(f"| {label} | " + " | ".join(marks) + " |")
    return "\n".join(rows)


def throughput(folder: Path, size_mb: int) -> str:
    import hashlib

    import joblib

    path = folder / "big.joblib"
    packed = folder / "big-zlib.joblib"
    n_arrays = 50
    per = size_mb * (1 << 20) // 8 // n_arrays
    rng = np.random.default_rng(0)
    model = {"coef": [rng.random(per) for _ in range(n_arrays)], "meta": {"n": n_arrays}}
    joblib.dump(model, path)
    joblib.dump(model, packed, compress=("zlib", 1))
    del model
    size = path.stat().st_size
    rows = ["| what | size (MB) | seconds | MB/s |", "|---|---|---|---|"]

    def row(what: str, seconds: float) -> None:
        rows.append(f"| {what} | {size / 1e6:.0f} | {seconds:.2f} | {size / 1e6 / seconds:.0f} |")

    scan(path)  # warm the page cache
    for label, file, isolated in (
        ("Modelport scan in-process (sha256 + walk), numeric joblib", path, False),
        ("Modelport scan in the limited child process, numeric joblib", path, True),
        ("Modelport scan in-process, the same joblib zlib-compressed (windowed walk)",
         packed, False),
        ("Modelport scan in the limited child process, zlib-compressed", packed, True),
    ):  # fmt: skip
        t = time.perf_counter()
        verdict = scan_isolated(file) if isolated else scan(file)
        row(label, time.perf_counter() - t)
        assert verdict.safe, verdict.findings
    t = time.perf_counter()
    with open(path, "rb") as fh:
        hashlib.file_digest(fh, "sha256")
    row("sha256 alone (lower bound for any scan that hashes)", time.perf_counter() - t)
    path.unlink()
    packed.unlink()
    return "\n".join(rows)


def bomb(folder: Path) -> str:
    """A 1.5 MB zlib joblib that decompresses to 1.5 GiB: time to refuse it, memory it costs."""
    path = folder / "bomb.joblib"
    path.write_bytes(zlib_joblib_bomb(1536 << 20))
    rows = ["| where the scan runs | verdict | seconds | this process's peak RSS growth (MiB) "
            "| scan child's peak RSS (MiB) |", "|---|---|---|---|---|"]  # fmt: skip
    for where in ("in this process", "limited child process (the API's way)"):
        reset_peak_rss()
        start = peak_rss()
        t = time.perf_counter()
        if where == "in this process":
            verdict, child = scan(path), "-"
        else:
            run = run_isolated(path)
            verdict = run.verdict
            child = f"{run.peak_rss_bytes / (1 << 20):.0f}" if run.peak_rss_bytes else "?"
        seconds = time.perf_counter() - t
        growth = (peak_rss() - start) / (1 << 20)
        outcome = f"{verdict.outcome.value} ({verdict.findings[0].location})"
        rows.append(f"| {where} | {outcome} | {seconds:.2f} | {growth:.0f} | {child} |")
    size = path.stat().st_size
    path.unlink()
    return f"File: {size / 1e6:.1f} MB, decompresses to 1536 MiB.\n\n" + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-peers", action="store_true", help="skip picklescan and modelscan")
    parser.add_argument("--no-keras", action="store_true", help="skip Keras benign files")
    parser.add_argument("--size-mb", type=int, default=500)
    args = parser.parse_args()
    peers = not args.no_peers
    with tempfile.TemporaryDirectory(prefix="modelport-scan-bench-") as tmp:
        base = Path(tmp)
        (base / "bad").mkdir()
        (base / "good").mkdir()
        table, caught = detection_table(base / "bad", peers)
        print(f"## Malicious files ({len(CASES)})\n")
        print("✓ flagged as malicious · ✗ passed as clean · E scan error or skipped "
              "(exit code 2/3) · U undecidable\n")  # fmt: skip
        print(table)
        print("\nFlagged: " + ", ".join(f"{k} {v}/{len(CASES)}" for k, v in caught.items()))
        print("\n## Real models (false positives)\n")
        print(false_positive_table(base / "good", peers, not args.no_keras))
        print(f"\n## Throughput (one core, {args.size_mb} MB numeric joblib)\n")
        print(throughput(base, args.size_mb))
        print("\n## Decompression bomb (target: API growth under 64 MiB, refused in under 2 s)\n")
        print(bomb(base))


if __name__ == "__main__":
    main()
