"""Master-key rotation re-wraps data keys and leaves the artifacts alone (real PostgreSQL, S3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from modelport.api.db.session import Database
from modelport.api.db.tables import ModelVersion, StoredArtifact
from modelport.api.services.rotation import rotate_master_key
from modelport.core.crypto import KeyBinding, WrappedKey
from modelport.core.keys import new_master_key_entry, parse_key_ring
from sqlalchemy import select

from tests.api.conftest import MakeApi


def _onnx_bytes() -> bytes:
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    est = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    return bytes(to_onnx(est, x[:1], options={"zipmap": False}).SerializeToString())


def _artifacts(db: Database, ids: set[str]) -> list[StoredArtifact]:
    with db.session() as session:
        rows = session.scalars(select(StoredArtifact).order_by(StoredArtifact.id)).all()
        session.expunge_all()
    return [a for a in rows if a.id in ids]


def _bindings(db: Database, ids: set[str]) -> dict[str, KeyBinding]:
    """What each artifact's data key is bound to (its id, its model's id, its sha256)."""
    with db.session() as session:
        rows = session.execute(
            select(StoredArtifact.id, ModelVersion.model_id, StoredArtifact.sha256).join(
                ModelVersion, StoredArtifact.version_id == ModelVersion.id
            )
        ).all()
    return {a: KeyBinding(artifact_id=a, model_id=m, sha256=h) for a, m, h in rows if a in ids}


def test_rotation_rewraps_keys_and_leaves_objects(make_api: MakeApi) -> None:
    old = new_master_key_entry("k1")
    api = make_api(master_keys=old)
    user = api.user()
    for name in ("a", "b"):
        r = api.upload(user, _onnx_bytes(), name=name)
        assert r.status_code == 201, r.text
    db = Database(api.ctx.settings.database_url)
    with db.session() as session:
        mine = {a.id for a in session.scalars(select(StoredArtifact)).all()}
    before = _artifacts(db, mine)
    old_ring = parse_key_ring(old)
    bound = _bindings(db, mine)
    data_keys = {
        a.id: old_ring.unwrap(WrappedKey.decode(a.wrapped_data_key or ""), bound[a.id])
        for a in before
    }
    etags = {
        k: api.s3.client().head_object(Bucket=api.bucket, Key=k)["ETag"] for k in api.objects()
    }

    new = new_master_key_entry("k2")
    ring = parse_key_ring(f"{old},{new}", "k2")
    with db.sessions() as session:
        report = rotate_master_key(session, keys=ring)
    assert report.current_key_id == "k2"
    assert report.rewrapped >= len(mine)

    after = _artifacts(db, mine)
    only_new = parse_key_ring(new)
    for artifact in after:
        assert artifact.master_key_id == "k2"
        wrapped = WrappedKey.decode(artifact.wrapped_data_key or "")
        # The new key alone opens it, and it is the same data key as before.
        assert only_new.unwrap(wrapped, bound[artifact.id]) == data_keys[artifact.id]
    # The encrypted artifacts were not touched.
    assert {
        k: api.s3.client().head_object(Bucket=api.bucket, Key=k)["ETag"] for k in api.objects()
    } == etags

    # Running it again changes nothing.
    with db.sessions() as session:
        again = rotate_master_key(session, keys=ring)
    assert again.rewrapped == 0
    db.dispose()


def test_rotate_keys_command(make_api: MakeApi, tmp_path: Path) -> None:
    old = new_master_key_entry("k1")
    api = make_api(master_keys=old)
    user = api.user()
    assert api.upload(user, _onnx_bytes(), name="c").status_code == 201
    new = new_master_key_entry("k9")
    env = {
        **os.environ,
        "MODELPORT_API_DATABASE_URL": api.ctx.settings.database_url,
        "MODELPORT_API_MASTER_KEYS": f"{old},{new}",
        "MODELPORT_API_MASTER_KEY_CURRENT": "k9",
        "MODELPORT_API_JWT_SECRET": "x" * 40,
        "MODELPORT_API_ARTIFACT_URI": f"s3://{api.bucket}/artifacts",
    }
    command = [str(Path(sys.executable).parent / "modelport-api"), "rotate-keys"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert "under 'k9'" in done.stdout, done.stderr
    db = Database(api.ctx.settings.database_url)
    with db.session() as session:
        rows = session.scalars(select(StoredArtifact)).all()
        by_key = {a.id: a.master_key_id for a in rows}
        mine = [a.id for a in rows if a.original_name == "model.onnx" and a.master_key_id == "k9"]
    db.dispose()
    assert mine, "this test's artifact is re-wrapped under k9"
    # Artifacts of other tests in the same database sit under master keys this command was not
    # given: they are named, left alone, and the command fails so that an operator notices.
    foreign = sorted(i for i, k in by_key.items() if k != "k9")
    assert done.returncode == (1 if foreign else 0), done.stderr
    for artifact_id in foreign:
        assert artifact_id in done.stderr
