"""Modelport's runtime against MLServer and KServe, on the same two scikit-learn models.

    .venv/bin/python benchmarks/runtime_bench.py [--quick] [--servers modelport,mlserver,kserve]

Trains a LogisticRegression and a RandomForest (100 trees) on 20 features, saves both with
joblib, and serves each file from each server in turn (one process, one worker, everything else
at its defaults). Before measuring, every server's predictions are checked equal to
scikit-learn's. Then wrk (one thread, closed loop, one row per request, round robin over 16 rows)
runs at concurrency 1, 8 and 64 against each server, alone on the machine. Also measured: cold
start (process start to the first correct prediction), memory after warm-up, two floors (a bare
ASGI app and a FastAPI route answering constant JSON) and the in-process predict rate of
scikit-learn and of Modelport's fast path. Prints Markdown tables.

MLServer and KServe live in their own virtual environment (they pin conflicting dependencies),
created on first use under ``${XDG_CACHE_HOME:-~/.cache}/modelport/bench-peers-venv`` from
``benchmarks/requirements-peers.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._servers.launch import Process, free_port, post_json
from benchmarks._servers.loadgen import LoadResult, run_wrk, wrk_path

ROOT = Path(__file__).resolve().parent.parent
SERVERS_DIR = Path(__file__).resolve().parent / "_servers"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-peers.txt"
MAIN_PYTHON = Path(sys.executable)
N_FEATURES = 20
N_ROWS = 16
CONCURRENCY = (1, 8, 64)
START_TIMEOUT_S = 180.0


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelport"


def peers_venv() -> Path:
    return cache_dir() / "bench-peers-venv"


def server_env() -> dict[str, str]:
    """Byte-code caching on for every server, in a folder of the benchmark's own.

    A built image ships compiled byte code; a shell with PYTHONDONTWRITEBYTECODE=1 would make
    every server recompile every module it imports at each start, and cold starts would measure
    the compiler. The first start of each server (``prime``) fills the cache.
    """
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(cache_dir() / "pycache")}


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass
class BenchModel:
    name: str
    path: Path
    estimator: Any
    rows: np.ndarray  # (N_ROWS, N_FEATURES) float64, the request rows


def prepare_models(workdir: Path) -> list[BenchModel]:
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(
        n_samples=4000, n_features=N_FEATURES, n_informative=10, random_state=0
    )
    train, test = slice(0, 3000), slice(3000, 3000 + N_ROWS)
    estimators = {
        "logreg": LogisticRegression(max_iter=1000),
        "forest": RandomForestClassifier(n_estimators=100, random_state=0),
    }
    models = []
    for name, estimator in estimators.items():
        estimator.fit(x[train], y[train])
        path = workdir / name / "model.joblib"
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(estimator, path)
        models.append(BenchModel(name, path, estimator, np.ascontiguousarray(x[test])))
    return models


# --------------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------------


def request_path(protocol: str, model: str) -> str:
    return f"/v2/models/{model}/infer" if protocol == "v2" else f"/v1/models/{model}:predict"


def request_body(protocol: str, row: np.ndarray, output: str | None = None) -> bytes:
    """One row; OIP v2 asks for no output by name (KServe refuses names it does not produce)."""
    values = [float(v) for v in row]
    if protocol == "v1":
        return json.dumps({"instances": [values]}).encode()
    tensor = {"name": "input-0", "shape": [1, len(values)], "datatype": "FP64", "data": values}
    request: dict[str, Any] = {"inputs": [tensor]}
    if output is not None:
        request["outputs"] = [{"name": output}]
    return json.dumps(request).encode()


def response_values(protocol: str, body: Any, output: str = "predict") -> list[Any]:
    if protocol == "v1":
        return list(body["predictions"])
    outputs = body["outputs"]
    chosen = next((o for o in outputs if o["name"] == output), outputs[0])
    return list(chosen["data"])


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    protocols: tuple[str, ...]
    serves_proba: bool
    launch: Callable[[BenchModel, int, Path], tuple[list[str], dict[str, str]]]


def launch_modelport(
    model: BenchModel, port: int, workdir: Path
) -> tuple[list[str], dict[str, str]]:
    argv = [
        str(MAIN_PYTHON.parent / "modelport-runtime"),
        "--model-name", model.name,
        "--artifact-uri", model.path.as_uri(),
        "--format", "joblib",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--metrics-host", "127.0.0.1",
        "--metrics-port", str(free_port()),
    ]  # fmt: skip
    return argv, {"MODELPORT_RUNTIME_AUTH_REQUIRED": "false"}


def launch_modelport_batching(
    model: BenchModel, port: int, workdir: Path
) -> tuple[list[str], dict[str, str]]:
    """The same, with adaptive batching on (off by default): up to 64 rows, no added wait."""
    argv, env = launch_modelport(model, port, workdir)
    return [*argv, "--max-batch-size", "64", "--max-batch-wait-ms", "0"], env


def launch_mlserver(
    model: BenchModel, port: int, workdir: Path
) -> tuple[list[str], dict[str, str]]:
    folder = workdir / "mlserver" / model.name
    (folder / model.name).mkdir(parents=True, exist_ok=True)
    settings = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": model.name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model.path)},
    }
    (folder / model.name / "model-settings.json").write_text(json.dumps(model_settings))
    return [str(peers_venv() / "bin" / "mlserver"), "start", str(folder)], {}


def launch_kserve(model: BenchModel, port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
    argv = [
        str(peers_venv() / "bin" / "python"),
        str(SERVERS_DIR / "kserve_sklearn.py"),
        "--model_name", model.name,
        "--model_file", str(model.path),
        "--http_port", str(port),
        "--grpc_port", str(free_port()),
    ]  # fmt: skip
    return argv, {}


SERVERS = {
    "modelport": Server("modelport", ("v2", "v1"), True, launch_modelport),
    "modelport+batching": Server("modelport+batching", ("v2",), True, launch_modelport_batching),
    "mlserver": Server("mlserver", ("v2",), True, launch_mlserver),
    "kserve": Server("kserve", ("v2", "v1"), False, launch_kserve),
}


def ensure_peers_venv() -> None:
    venv = peers_venv()
    if (venv / "bin" / "mlserver").exists():
        return
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("runtime_bench: uv is needed to create the peers' virtual environment")
    print(f"# creating {venv} from {REQUIREMENTS.name} (once)", flush=True)
    subprocess.run([uv, "venv", "--python", "3.11", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([uv, "pip", "install", "--python", python, "-r", str(REQUIREMENTS)], check=True)


# --------------------------------------------------------------------------------------------
# Measuring one server
# --------------------------------------------------------------------------------------------


class BenchFailure(Exception):
    """A server did not start or answered wrongly; its cells are left out."""


@dataclass
class ServerRun:
    server: str
    model: str
    cold_start_s: float | None = None
    rss_mb: float | None = None
    pss_mb: float | None = None
    processes: int | None = None
    checked: str = ""
    cells: list[tuple[str, LoadResult]] = field(default_factory=list)
    failure: str | None = None


def expected_predictions(model: BenchModel) -> list[Any]:
    return [model.estimator.predict(model.rows[i : i + 1]).tolist()[0] for i in range(N_ROWS)]


def wait_first_correct(proc: Process, model: BenchModel) -> float:
    """Seconds from process start to the first correct prediction (OIP v2, row 0)."""
    body = request_body("v2", model.rows[0])
    want = expected_predictions(model)[0]
    deadline = proc.started_at + START_TIMEOUT_S
    status, answer = 0, None
    while time.perf_counter() < deadline:
        if not proc.alive():
            raise BenchFailure(f"exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        try:
            status, answer = post_json(proc.port, request_path("v2", model.name), body, timeout=5)
        except OSError:
            status, answer = 0, None
        if status == 200 and response_values("v2", answer) == [want]:
            return float(time.perf_counter() - proc.started_at)
        time.sleep(0.01)
    raise BenchFailure(f"no correct prediction in {START_TIMEOUT_S:.0f} s: {status} {answer}")


def check_predictions(proc: Process, server: Server, model: BenchModel) -> str:
    """Every request row on every protocol, and predict_proba where served: equal to sklearn."""
    want = expected_predictions(model)
    for protocol in server.protocols:
        for i in range(N_ROWS):
            body = request_body(protocol, model.rows[i])
            status, answer = post_json(proc.port, request_path(protocol, model.name), body)
            if status != 200 or response_values(protocol, answer) != [want[i]]:
                raise BenchFailure(f"{protocol} row {i}: {status} {answer} != {want[i]}")
    if not server.serves_proba:
        return "predict"
    # One row at a time, as the servers compute it (a matmul over 16 rows rounds differently).
    proba = [model.estimator.predict_proba(model.rows[i : i + 1])[0] for i in range(N_ROWS)]
    for i in range(N_ROWS):
        body = request_body("v2", model.rows[i], output="predict_proba")
        status, answer = post_json(proc.port, request_path("v2", model.name), body)
        got = response_values("v2", answer, output="predict_proba") if status == 200 else None
        if got != proba[i].tolist():
            raise BenchFailure(f"predict_proba row {i}: {status} {answer} != {proba[i].tolist()}")
    return "predict + predict_proba, bit for bit"


def bodies_file(workdir: Path, model: BenchModel, protocol: str) -> Path:
    path = workdir / f"bodies-{model.name}-{protocol}.jsonl"
    lines = [request_body(protocol, model.rows[i]).decode() for i in range(N_ROWS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def load_cells(
    port: int, path: str, bodies: Path, *, seconds: float, warmup_s: float
) -> list[LoadResult]:
    url = f"http://127.0.0.1:{port}{path}"
    body = bodies.read_bytes().splitlines()[0]
    run_wrk(url, bodies, connections=8, seconds=warmup_s)
    cells = []
    for connections in CONCURRENCY:
        drain(port, path, body)
        cells.append(run_wrk(url, bodies, connections=connections, seconds=seconds))
    return cells


def drain(port: int, path: str, body: bytes) -> None:
    """Wait for the requests wrk left in flight: a server still working through 64 abandoned
    requests would start the next cell late."""
    try:
        post_json(port, path, body, timeout=120)
    except OSError as exc:
        raise BenchFailure(f"no answer after a load cell: {exc}") from exc


@contextmanager
def started(
    name: str, argv: list[str], env: dict[str, str], port: int, log: Path
) -> Iterator[Process]:
    proc = Process.start(name, argv, port=port, env={**server_env(), **env}, log_path=log)
    try:
        yield proc
    finally:
        proc.stop()


def prime(server: Server, model: BenchModel, workdir: Path) -> None:
    """Start the server once, untimed, so that its byte code is cached for the measured starts."""
    port = free_port()
    argv, env = server.launch(model, port, workdir)
    print(f"# {server.name} / {model.name}: priming the byte-code cache", flush=True)
    try:
        with started(server.name, argv, env, port, workdir / f"{server.name}-prime.log") as proc:
            wait_first_correct(proc, model)
    except BenchFailure as exc:
        print(f"# {server.name}: priming failed: {exc}", flush=True)


def measure_server(
    server: Server, model: BenchModel, workdir: Path, *, seconds: float, warmup_s: float
) -> ServerRun:
    run = ServerRun(server.name, model.name)
    port = free_port()
    argv, env = server.launch(model, port, workdir)
    log = workdir / f"{server.name}-{model.name}.log"
    print(f"# {server.name} / {model.name}: starting", flush=True)
    try:
        with started(server.name, argv, env, port, log) as proc:
            run.cold_start_s = wait_first_correct(proc, model)
            run.checked = check_predictions(proc, server, model)
            for protocol in server.protocols:
                bodies = bodies_file(workdir, model, protocol)
                path = request_path(protocol, model.name)
                for cell in load_cells(port, path, bodies, seconds=seconds, warmup_s=warmup_s):
                    run.cells.append((protocol, cell))
                    print(f"#   {protocol} c={cell.connections}: {cell.rps:.0f} req/s", flush=True)
            run.rss_mb, run.pss_mb, run.processes = proc.memory_mb()
    except (BenchFailure, RuntimeError, OSError) as exc:
        run.failure = str(exc)
        print(f"# {server.name} / {model.name} FAILED: {exc}", flush=True)
    return run


def measure_floor(kind: str, workdir: Path, *, seconds: float, warmup_s: float) -> list[LoadResult]:
    port = free_port()
    argv = [str(MAIN_PYTHON), str(SERVERS_DIR / "floor.py"), "--kind", kind, "--port", str(port)]
    bodies = workdir / "bodies-floor.jsonl"
    bodies.write_text(request_body("v2", np.zeros(N_FEATURES)).decode() + "\n")
    with started(kind, argv, {}, port, workdir / f"floor-{kind}.log") as proc:
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            try:
                if post_json(proc.port, "/", b"{}", timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.02)
        return load_cells(
            port, "/v2/models/floor/infer", bodies, seconds=seconds, warmup_s=warmup_s
        )


# --------------------------------------------------------------------------------------------
# In process
# --------------------------------------------------------------------------------------------


@dataclass
class InProcess:
    model: str
    implementation: str
    rows: int
    calls_per_s: float
    p50_us: float
    p99_us: float


def time_calls(fn: Callable[[], Any], seconds: float) -> tuple[float, float, float]:
    fn()
    samples: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < 20:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    arr = np.array(samples) * 1e6
    return (
        len(arr) / (arr.sum() / 1e6),
        float(np.percentile(arr, 50)),
        float(np.percentile(arr, 99)),
    )


def measure_in_process(models: list[BenchModel], seconds: float) -> list[InProcess]:
    from modelport.runtime.fastpath import compile_estimator

    results = []
    for model in models:
        compiled = compile_estimator(model.estimator)
        impls: list[tuple[str, Any]] = [("scikit-learn", model.estimator)]
        if compiled is not None:
            impls.append(("Modelport fast path", compiled))
        for label, impl in impls:
            for n in (1, 64):
                batch = np.ascontiguousarray(np.resize(model.rows, (n, N_FEATURES)))
                rate, p50, p99 = time_calls(partial(impl.predict, batch), seconds)
                results.append(InProcess(model.name, label, n, rate, p50, p99))
    return results


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def http_table(runs: list[ServerRun], floors: dict[str, list[LoadResult]]) -> str:
    rows = []
    for run in runs:
        if run.failure:
            rows.append([run.server, run.model, "-", "-", "failed", "-", "-", "-"])
        for protocol, cell in run.cells:
            rows.append([
                run.server, run.model, protocol, str(cell.connections), fmt(cell.rps, 0),
                fmt(cell.p50_ms, 2), fmt(cell.p99_ms, 2), str(cell.failed),
            ])  # fmt: skip
    for kind, cells in floors.items():
        label = "floor: bare ASGI" if kind == "asgi" else "floor: FastAPI route"
        for cell in cells:
            rows.append([
                label, "(constant JSON)", "-", str(cell.connections), fmt(cell.rps, 0),
                fmt(cell.p50_ms, 2), fmt(cell.p99_ms, 2), str(cell.failed),
            ])  # fmt: skip
    headers = ["server", "model", "protocol", "c", "req/s", "p50 ms", "p99 ms", "errors"]
    return table(headers, rows)


def start_table(runs: list[ServerRun]) -> str:
    rows = [
        [
            run.server, run.model, fmt(run.cold_start_s, 2), fmt(run.rss_mb, 0),
            fmt(run.pss_mb, 0), str(run.processes or "-"), run.checked or (run.failure or "")[:60],
        ]
        for run in runs
    ]  # fmt: skip
    headers = ["server", "model", "cold start s", "RSS MB", "PSS MB", "processes", "checked"]
    return table(headers, rows)


def in_process_table(results: list[InProcess]) -> str:
    rows = [
        [r.model, r.implementation, str(r.rows), fmt(r.calls_per_s, 0), fmt(r.p50_us, 0),
         fmt(r.p99_us, 0)]
        for r in results
    ]  # fmt: skip
    return table(["model", "predict by", "rows", "calls/s", "p50 µs", "p99 µs"], rows)


def _cell(
    runs: list[ServerRun], server: str, model: str, c: int, protocol: str
) -> LoadResult | None:
    for run in runs:
        if run.server == server and run.model == model:
            for used, cell in run.cells:
                if used == protocol and cell.connections == c:
                    return cell
    return None


def targets_table(runs: list[ServerRun]) -> str:
    rows = []
    peers = (("mlserver", 3.0, "v2"), ("kserve", 2.0, "v2"), ("kserve", 2.0, "v1"))
    for model in sorted({run.model for run in runs}):
        for peer, factor, protocol in peers:
            ours = _cell(runs, "modelport", model, 64, protocol)
            theirs = _cell(runs, peer, model, 64, protocol)
            if ours is None or theirs is None or not theirs.rps:
                continue
            ratio = ours.rps / theirs.rps
            verdict = "met" if ratio >= factor and ours.p99_ms < theirs.p99_ms else "missed"
            rows.append([
                model, f"{factor:.0f}x {peer} req/s at c=64 ({protocol}), lower p99",
                f"{ratio:.1f}x", f"{fmt(ours.p99_ms, 1)} vs {fmt(theirs.p99_ms, 1)} ms", verdict,
            ])  # fmt: skip
    for run in runs:
        if run.server != "modelport" or run.failure:
            continue
        cold_ok = run.cold_start_s is not None and run.cold_start_s < 1.5
        rss_ok = run.rss_mb is not None and run.rss_mb < 150
        rows.append([run.model, "cold start < 1.5 s", fmt(run.cold_start_s, 2) + " s", "",
                     "met" if cold_ok else "missed"])  # fmt: skip
        rows.append([run.model, "RSS < 150 MB", fmt(run.rss_mb, 0) + " MB", "",
                     "met" if rss_ok else "missed"])  # fmt: skip
    return table(["model", "target", "Modelport", "p99", "verdict"], rows)


def environment() -> str:
    import sklearn

    peer_versions = subprocess.run(
        [str(peers_venv() / "bin" / "python"), "-c",
         "import importlib.metadata as m; print(m.version('mlserver'), m.version('kserve'))"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    load = os.getloadavg()
    return (
        f"date {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average at start {load[0]:.2f}; Python "
        f"{platform.python_version()}, scikit-learn {sklearn.__version__}, "
        f"mlserver {peer_versions[0] if peer_versions else '?'}, "
        f"kserve {peer_versions[1] if len(peer_versions) > 1 else '?'}; wrk 1 thread"
    )


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per cell instead of 6")
    parser.add_argument("--seconds", type=float, help="seconds per measured cell")
    parser.add_argument("--servers", default="modelport,modelport+batching,mlserver,kserve")
    parser.add_argument("--no-floors", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 6.0)
    warmup_s = 1.0 if args.quick else 2.0
    servers = [SERVERS[name] for name in args.servers.split(",") if name]
    wrk_path()
    if any(not s.name.startswith("modelport") for s in servers):
        ensure_peers_venv()
    warnings.simplefilter("ignore")

    with tempfile.TemporaryDirectory(prefix="modelport-bench-") as tmp:
        workdir = Path(tmp)
        header = environment()
        models = prepare_models(workdir)
        for server in servers:
            for model in models:
                prime(server, model, workdir)
        runs = [
            measure_server(server, model, workdir, seconds=seconds, warmup_s=warmup_s)
            for server in servers
            for model in models
        ]
        floors = {}
        if not args.no_floors:
            for kind in ("asgi", "fastapi"):
                floors[kind] = measure_floor(kind, workdir, seconds=seconds, warmup_s=warmup_s)
        in_process = measure_in_process(models, seconds=min(seconds, 3.0))

    print()
    python = os.path.relpath(sys.executable, Path.cwd())
    print(f"Command: {' '.join([python, *sys.argv])}")
    print(f"Environment: {header}")
    print(
        f"Each cell: wrk -t1, {seconds:.0f} s closed loop after a warm-up, one row per request.\n"
    )
    print("### Throughput and latency over HTTP\n")
    print(http_table(runs, floors))
    print(
        "\n### Cold start (process start to first correct prediction) and memory after the load\n"
    )
    print(start_table(runs))
    print("\n### In-process predict (no HTTP)\n")
    print(in_process_table(in_process))
    print("\n### Targets (issue 2)\n")
    print(targets_table(runs))
    if args.json:
        raw = {
            "environment": header,
            "runs": [
                run.__dict__ | {"cells": [(p, c.__dict__) for p, c in run.cells]} for run in runs
            ],
            "floors": {k: [c.__dict__ for c in v] for k, v in floors.items()},
            "in_process": [r.__dict__ for r in in_process],
        }
        args.json.write_text(json.dumps(raw, indent=2, default=str))


if __name__ == "__main__":
    main()
