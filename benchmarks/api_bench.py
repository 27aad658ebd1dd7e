"""Control-API benchmark: upload throughput and peak memory, and list requests per second.

    .venv/bin/python benchmarks/api_bench.py                      # 1 GiB upload, 10 000 models
    .venv/bin/python benchmarks/api_bench.py --size-mib 256 --models 2000

Starts a private PostgreSQL (testing/postgres.py) and ``modelport-api`` as its own process
(artifacts in a file:// store in a temp folder, no deployer), then:

* **upload**: streams a ``.joblib`` model of ``--size-mib`` MiB (a numpy array, written to disk
  first) as multipart through ``POST /api/v1/models``: format check, security scan, envelope
  encryption into the store, rows. Reports MB/s (10^6 bytes per second of wall time) and the API
  process's peak RSS sampled every 20 ms: total (VmHWM) and anonymous (RssAnon: the process's
  own memory, without the page cache of files it maps, such as the scanner's mmap of the spool
  file). The target is a peak anonymous RSS of at most 150 MB whatever the file size.
* **list**: inserts ``--models`` models for one user straight into PostgreSQL, then measures
  ``GET /api/v1/models?limit=50`` (with total count) from ``--clients`` concurrent clients.

Prints one table. Timings vary with the machine; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from modelport.api.db.session import migrate  # noqa: E402
from modelport.core.keys import new_master_key_entry  # noqa: E402

from testing.ports import free_port  # noqa: E402
from testing.postgres import PostgresServer, find_bindir  # noqa: E402

MIB = 1 << 20


class Sampler:
    """Peak RSS of a process, read from /proc every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_anon = 0
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> dict[str, int]:
        values: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
        return values

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                v = self._read()
            except OSError:
                return
            self.peak_anon = max(self.peak_anon, v.get("RssAnon", 0))
            self.peak_total = max(self.peak_total, v.get("VmRSS", 0))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_total = max(self.peak_total, self._read().get("VmHWM", 0))


def write_joblib(path: Path, size: int) -> None:
    import joblib
    import numpy as np

    joblib.dump({"weights": np.ones(size // 4, dtype=np.float32)}, path)


def start_api(db_url: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
    env.update(
        {
            "MODELPORT_API_DATABASE_URL": db_url,
            "MODELPORT_API_ARTIFACT_URI": (folder / "artifacts").as_uri(),
            "MODELPORT_API_MASTER_KEYS": new_master_key_entry("bench"),
            "MODELPORT_API_JWT_SECRET": uuid.uuid4().hex * 2,
            "MODELPORT_API_DEPLOYER": "none",
            "MODELPORT_API_SPOOL_DIR": str(folder),
            "MODELPORT_API_MAX_UPLOAD_BYTES": str(8 << 30),
            "MODELPORT_API_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
    )
    log = (folder / "api.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from modelport.api.main import main; main()",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not start; see {folder / 'api.log'}")


def sign_up(url: str) -> tuple[str, dict[str, str]]:
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "benchmark password"
    user = httpx.post(f"{url}/api/v1/auth/signup", json={"email": email, "password": password})
    token = httpx.post(f"{url}/api/v1/auth/login", json={"email": email, "password": password})
    return user.json()["id"], {"Authorization": f"Bearer {token.json()['accessToken']}"}


def unlimit(db_url: str, user_id: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET requests_per_minute = 0, models_limit = 1000000 WHERE id = :u"),
            {"u": user_id},
        )
    engine.dispose()


def bench_upload(
    url: str, headers: dict[str, str], pid: int, folder: Path, size: int
) -> dict[str, Any]:
    path = folder / "model.joblib"
    write_joblib(path, size)
    actual = path.stat().st_size
    with Sampler(pid) as sampler, path.open("rb") as handle:
        started = time.perf_counter()
        r = httpx.post(
            f"{url}/api/v1/models",
            headers=headers,
            files={"file": ("model.joblib", handle, "application/octet-stream")},
            data={"modelName": "bench"},
            timeout=httpx.Timeout(3600.0),
        )
        elapsed = time.perf_counter() - started
    path.unlink()
    if r.status_code != 201:
        raise RuntimeError(f"upload failed: {r.status_code} {r.text[:500]}")
    return {
        "bytes": actual,
        "seconds": elapsed,
        "mb_s": actual / elapsed / 1e6,
        "peak_anon": sampler.peak_anon,
        "peak_total": sampler.peak_total,
    }


def seed_models(db_url: str, user_id: str, count: int) -> None:
    """Insert ``count`` models (one version and artifact each) in a few statements."""
    import psycopg2  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    u = make_url(db_url)
    conn = psycopg2.connect(host=u.host, port=u.port, user=u.username, dbname=u.database)
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            WITH ids AS (SELECT g, 'mb' || lpad(g::text, 14, '0') AS mid
                         FROM generate_series(1, %(n)s) AS g)
            INSERT INTO models (id, owner_id, name, description, format, status, endpoint_url,
                                active_version, settings, request_count, error_count,
                                created_at, updated_at)
            SELECT mid, %(u)s, 'model ' || g, '', 'onnx', 'active',
                   'http://example/models/' || mid, 1, '{}', 0, 0,
                   now() - g * interval '1 second', now() FROM ids
            """,
            {"n": count, "u": user_id},
        )
        cur.execute(
            """
            INSERT INTO model_versions (id, model_id, number, created_at)
            SELECT 'v' || substr(id, 3), id, 1, created_at FROM models WHERE id LIKE 'mb%%'
            """
        )
        cur.execute(
            """
            INSERT INTO stored_artifacts (id, version_id, original_name, storage_key, storage_uri,
                                          size, sha256, format, wrapped_data_key, master_key_id,
                                          created_at)
            SELECT 'a' || substr(model_id, 3), id, 'model.onnx', 'k/' || model_id,
                   's3://b/k/' || model_id, 1, repeat('0', 64), 'onnx', NULL, NULL, created_at
            FROM model_versions WHERE model_id LIKE 'mb%%'
            """
        )
    conn.close()


def bench_list(url: str, headers: dict[str, str], clients: int, requests: int) -> dict[str, Any]:
    def worker(n: int) -> int:
        ok = 0
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for _ in range(n):
                ok += client.get("/api/v1/models", params={"limit": 50}).status_code == 200
        return ok

    worker(5)  # warm up
    per = requests // clients
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        ok = sum(pool.map(worker, [per] * clients))
    elapsed = time.perf_counter() - started
    total = httpx.get(f"{url}/api/v1/models", params={"limit": 1}, headers=headers).json()["total"]
    return {
        "requests": per * clients,
        "ok": ok,
        "seconds": elapsed,
        "rps": per * clients / elapsed,
        "total": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=800)
    args = parser.parse_args()

    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL binaries not found (apt-get install postgresql)")
    pg = PostgresServer(bindir)
    folder = Path(tempfile.mkdtemp(prefix="modelport-api-bench-"))
    proc = None
    try:
        pg.start()
        db_url = pg.create_database("bench")
        migrate(db_url)
        proc, url = start_api(db_url, folder)
        user_id, headers = sign_up(url)
        unlimit(db_url, user_id)
        up = bench_upload(url, headers, proc.pid, folder, args.size_mib * MIB)
        seed_models(db_url, user_id, args.models)
        listing = bench_list(url, headers, args.clients, args.requests)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        pg.destroy()
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"# Modelport control-API benchmark ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()})"
    )
    print()
    print("| measurement | value |")
    print("|---|---|")
    print(f"| upload size | {up['bytes'] / MIB:.0f} MiB (.joblib) |")
    print(f"| upload time | {up['seconds']:.1f} s |")
    print(f"| upload throughput | {up['mb_s']:.1f} MB/s |")
    print(f"| API peak RSS, anonymous (target <= 150 MB) | {up['peak_anon'] / 1e6:.0f} MB |")
    print(f"| API peak RSS, total incl. mapped file pages | {up['peak_total'] / 1e6:.0f} MB |")
    print(f"| models of the listing user | {listing['total'] - 1} (+1 uploaded) |")
    print(
        f"| GET /api/v1/models?limit=50 | {listing['rps']:.0f} req/s "
        f"({listing['requests']} requests, {args.clients} clients, {listing['ok']} ok) |"
    )


if __name__ == "__main__":
    main()
