"""Crypto binding: a wrapped data key opens only for the artifact row it was made for, and each
token the API signs is good for one purpose only (real PostgreSQL and S3).

The attacker in the first tests can write the database (a leaked backup restored with changes,
say) but holds no master key: they move one model's wrapped data key and storage key into another
model's row, hoping the second model serves the first one's artifact. The attacker in the token
tests holds a token made for one purpose (an OpenID Connect ``state``, a runtime's usage token)
and presents it as a login token.
"""

from __future__ import annotations

import os
import time
import warnings

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from modelport.api.db.tables import ModelVersion, StoredArtifact
from modelport.api.deployers.base import DeploymentSpec, NoDeployer
from modelport.core import crypto
from modelport.core.crypto import KeyBinding, WrappedKey
from sqlalchemy import select, update

from testing.payloads import onnx_add_one
from tests.api.conftest import LiveApi, MakeApi, User

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import jwt


class _Recorder(NoDeployer):
    """Records every deployment it is asked to apply."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1")
        self.applied: list[DeploymentSpec] = []

    def apply(self, spec: DeploymentSpec) -> None:
        self.applied.append(spec)


_COLUMNS = ("storage_key", "storage_uri", "size", "sha256", "wrapped_data_key", "master_key_id")


def _row_of(api: LiveApi, model_id: str) -> StoredArtifact:
    with api.ctx.db.session() as session:
        row = session.scalars(
            select(StoredArtifact)
            .join(ModelVersion, StoredArtifact.version_id == ModelVersion.id)
            .where(ModelVersion.model_id == model_id)
        ).one()
        session.expunge(row)
    return row


def _write_row(api: LiveApi, artifact_id: str, **values: object) -> None:
    with api.ctx.db.session() as session:
        session.execute(
            update(StoredArtifact).where(StoredArtifact.id == artifact_id).values(**values)
        )


def _upload(api: LiveApi, user: User, name: str) -> str:
    r = api.upload(user, onnx_add_one(padding=len(name)), name=name)
    assert r.status_code == 201, r.text
    return str(r.json()["modelId"])


def test_swapped_artifact_row_does_not_decrypt(make_api: MakeApi) -> None:
    recorder = _Recorder()
    api = make_api(recorder)
    victim, attacker = api.user(prefix="victim"), api.user(prefix="attacker")
    theirs = _upload(api, victim, "victim's model")
    mine = _upload(api, attacker, "attacker's model")
    victim_row = _row_of(api, theirs)
    # The attacker copies everything that locates and opens the victim's artifact into the row
    # of their own model, then asks for a redeploy of their model.
    _write_row(api, _row_of(api, mine).id, **{c: getattr(victim_row, c) for c in _COLUMNS})
    recorder.applied.clear()

    r = api.client.patch(
        f"/api/v1/models/{mine}", headers=attacker.headers, json={"description": "redeploy"}
    )

    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert error["code"] == "artifact_key_mismatch"
    assert "another artifact or model" in error["message"]
    assert recorder.applied == [], "nothing is deployed from the swapped row"
    # The victim's own model still deploys with its key.
    recorder.applied.clear()
    r = api.client.patch(
        f"/api/v1/models/{theirs}", headers=victim.headers, json={"description": "still mine"}
    )
    assert r.status_code == 200, r.text
    assert [s.model_id for s in recorder.applied] == [theirs]


def test_wrapped_key_opens_only_for_its_own_binding() -> None:
    master = crypto.generate_master_key("k1")
    data_key = crypto.generate_data_key()
    own = KeyBinding(artifact_id="a01", model_id="m01", sha256="ab" * 32)
    wrapped = crypto.wrap_data_key(data_key, master, own)
    assert crypto.unwrap_data_key(wrapped, [master], own) == data_key
    for other in (
        KeyBinding(artifact_id="a02", model_id="m01", sha256="ab" * 32),
        KeyBinding(artifact_id="a01", model_id="m02", sha256="ab" * 32),
        KeyBinding(artifact_id="a01", model_id="m01", sha256="cd" * 32),
        # Field boundaries are part of the binding: no shifting of characters between fields.
        KeyBinding(artifact_id="a0", model_id="1m01", sha256="ab" * 32),
    ):
        with pytest.raises(crypto.KeyBindingError):
            crypto.unwrap_data_key(wrapped, [master], other)


def _unbound_form(data_key: bytes, master: crypto.MasterKey) -> str:
    """A data key wrapped the way releases before the binding wrapped it (format byte 1, the
    master-key id as the only associated data)."""
    nonce = os.urandom(12)
    aad = b"modelport/v1/wrap\x00" + master.key_id.encode()
    sealed = AESGCM(master.key).encrypt(nonce, data_key, aad)
    return WrappedKey(master.key_id, b"\x01" + nonce + sealed).encode()


def test_unbound_key_written_into_a_row_is_not_deployed(make_api: MakeApi) -> None:
    """The downgrade: the attacker writes a wrapped key in the old, unbound form (taken from a
    backup made before the upgrade) into a row of a running API."""
    recorder = _Recorder()
    api = make_api(recorder)
    attacker = api.user(prefix="attacker")
    mine = _upload(api, attacker, "attacker's model")
    master = api.ctx.keys.current
    _write_row(
        api,
        _row_of(api, mine).id,
        wrapped_data_key=_unbound_form(crypto.generate_data_key(), master),
    )
    recorder.applied.clear()

    r = api.client.patch(
        f"/api/v1/models/{mine}", headers=attacker.headers, json={"description": "redeploy"}
    )

    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"] == "artifact_key_unbound"
    assert recorder.applied == []


def test_keys_of_earlier_releases_are_bound_at_start_and_keep_serving(make_api: MakeApi) -> None:
    """An upgrade: rows written before the binding hold unbound keys; the API binds them when it
    starts, and the models deploy with the same data keys."""
    first = make_api()
    user = first.user()
    model_id = _upload(first, user, "old model")
    row = _row_of(first, model_id)
    bound_to = KeyBinding(artifact_id=row.id, model_id=model_id, sha256=row.sha256)
    data_key = first.ctx.keys.unwrap(WrappedKey.decode(row.wrapped_data_key or ""), bound_to)
    master = first.ctx.keys.current
    _write_row(first, row.id, wrapped_data_key=_unbound_form(data_key, master))

    recorder = _Recorder()
    second = make_api(
        recorder,
        master_keys=first.ctx.settings.master_keys,
        jwt_secret=first.ctx.settings.jwt_secret,
    )

    stored = WrappedKey.decode(_row_of(second, model_id).wrapped_data_key or "")
    assert stored.bound
    assert second.ctx.keys.unwrap(stored, bound_to) == data_key
    r = second.client.patch(
        f"/api/v1/models/{model_id}", headers=user.headers, json={"description": "upgraded"}
    )
    assert r.status_code == 200, r.text
    deployed = [s for s in recorder.applied if s.model_id == model_id]
    assert deployed and deployed[-1].data_key == data_key


# --- tokens -------------------------------------------------------------------------------------


def _status(api: LiveApi, token: str) -> int:
    r = api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


def _jwt(claims: dict[str, object], key: bytes | str) -> str:
    token: bytes = jwt.encode({"alg": "HS256"}, claims, key)
    return token.decode()


def test_jwt_without_audience_refused(api: LiveApi) -> None:
    user = api.user()
    keys = api.ctx.settings.signing_keys()
    now = int(time.time())
    claims = {"iss": "modelport", "sub": user.id, "iat": now, "exp": now + 600}
    login = {"aud": "modelport-api", "typ": "login"}
    assert _status(api, _jwt({**claims, **login}, keys.login)) == 200  # the control
    assert _status(api, _jwt({**claims, "typ": "login"}, keys.login)) == 401
    assert _status(api, _jwt({**claims, "aud": "modelport-api"}, keys.login)) == 401
    assert _status(api, _jwt({**claims, **login, "aud": "another-service"}, keys.login)) == 401
    # The earlier releases' form (no audience, the configured secret as the key), made now.
    secret = api.ctx.settings.jwt_secret.get_secret_value()
    assert _status(api, _jwt(claims, secret)) == 401


def test_oidc_state_cannot_sign_in(api: LiveApi) -> None:
    """A ``state`` (handed to any browser that starts a login) names no audience and is signed
    with its own key: even with a user's id in it, it is no login token."""
    user = api.user()
    keys = api.ctx.settings.signing_keys()
    now = int(time.time())
    state = {"iss": "modelport", "sub": user.id, "nonce": "n", "iat": now, "exp": now + 600}
    assert _status(api, _jwt(state, keys.oidc_state)) == 401
    login_shaped = {**state, "aud": "modelport-api", "typ": "login"}
    assert _status(api, _jwt(login_shaped, keys.oidc_state)) == 401


def test_usage_token_cannot_sign_in(api: LiveApi) -> None:
    """A runtime holds its model's usage token: neither the token nor the key it is derived from
    signs a user in."""
    user = api.user()
    keys = api.ctx.settings.signing_keys()
    token = api.ctx.usage_token("m0123456789abcdef")
    assert _status(api, token) == 401
    now = int(time.time())
    claims = {"iss": "modelport", "aud": "modelport-api", "typ": "login", "sub": user.id}
    assert _status(api, _jwt({**claims, "iat": now, "exp": now + 600}, keys.usage)) == 401
    assert len({keys.login, keys.oidc_state, keys.usage, keys.legacy}) == 4
