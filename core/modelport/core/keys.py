"""Master-key ring: the key-encryption keys a process may use, loaded from one setting.

The setting reads ``"k1:<base64 32 bytes>,k2:<base64 32 bytes>"``; the caller reads it from the
environment (``MODELPORT_API_MASTER_KEYS``, say) and passes the string to :func:`parse_key_ring`.

Rotation: add the new key to the setting and make it current (new uploads are wrapped with it),
re-wrap stored data keys with :meth:`KeyRing.rewrap` (artifacts stay as they are), then drop the
old key from the setting once :meth:`KeyRing.needs_rewrap` is false for every stored key. Each
wrapping is bound to its artifact (:class:`~modelport.core.crypto.KeyBinding`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from modelport.core.crypto import (
    MASTER_KEY_BYTES,
    KeyBinding,
    KeyFormatError,
    MasterKey,
    UnknownKeyIdError,
    WrappedKey,
    b64decode_strict,
    check_key_id,
    generate_master_key,
    rewrap,
    unwrap_data_key,
    wrap_data_key,
)

_MIN_DISTINCT_BYTES = 8  # a random 32-byte key has ~30; placeholders like b"\0" * 32 have 1


@dataclass(frozen=True)
class KeyRing:
    """Master keys by id, plus the id of the one that wraps new data keys."""

    masters: Mapping[str, MasterKey] = field(repr=False)
    current_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "masters", MappingProxyType(dict(self.masters)))
        if self.current_id not in self.masters:
            raise KeyFormatError(f"current master-key id {self.current_id!r} is not in the ring")

    @classmethod
    def of(cls, masters: Iterable[MasterKey], current_id: str | None = None) -> KeyRing:
        """Build a ring; ``current_id`` defaults to the last key given."""
        by_id: dict[str, MasterKey] = {}
        for master in masters:
            if master.key_id in by_id:
                raise KeyFormatError(f"master-key id {master.key_id!r} appears twice")
            by_id[master.key_id] = master
        if not by_id:
            raise KeyFormatError("no master key configured")
        return cls(by_id, current_id if current_id is not None else list(by_id)[-1])

    def __repr__(self) -> str:
        return f"KeyRing(ids={list(self.masters)!r}, current_id={self.current_id!r})"

    def __iter__(self) -> Iterator[MasterKey]:
        return iter(self.masters.values())

    @property
    def current(self) -> MasterKey:
        return self.masters[self.current_id]

    def get(self, key_id: str) -> MasterKey:
        try:
            return self.masters[key_id]
        except KeyError:
            raise UnknownKeyIdError(f"master key {key_id!r} is not configured") from None

    def wrap(self, data_key: bytes, binding: KeyBinding) -> WrappedKey:
        """Wrap a data key with the current master key, bound to its artifact."""
        return wrap_data_key(data_key, self.current, binding)

    def unwrap(self, wrapped: WrappedKey, binding: KeyBinding) -> bytes:
        """The data key of the artifact ``binding`` names (the bound form only)."""
        return unwrap_data_key(wrapped, self, binding)

    def needs_rewrap(self, wrapped: WrappedKey) -> bool:
        """Whether ``wrapped`` is under an older master key or in the unbound form."""
        return wrapped.key_id != self.current_id or not wrapped.bound

    def rewrap(self, wrapped: WrappedKey, binding: KeyBinding) -> WrappedKey:
        """Re-wrap under the current master key, bound (unchanged if it already is)."""
        if not self.needs_rewrap(wrapped):
            return wrapped
        return rewrap(wrapped, self, self.current, binding)


def parse_master_key(entry: str) -> MasterKey:
    """Parse one ``id:base64`` entry. Error messages never echo the key material."""
    key_id, sep, encoded = entry.strip().partition(":")
    if not sep:
        raise KeyFormatError("a master-key entry must read '<id>:<base64 of 32 bytes>'")
    check_key_id(key_id)
    key = b64decode_strict(encoded, what=f"master key {key_id!r}")
    if len(key) != MASTER_KEY_BYTES:
        raise KeyFormatError(
            f"master key {key_id!r} must decode to {MASTER_KEY_BYTES} bytes, got {len(key)}"
        )
    if len(set(key)) < _MIN_DISTINCT_BYTES:
        raise KeyFormatError(
            f"master key {key_id!r} looks like a placeholder, not random bytes; generate one with "
            "`python -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())'`"
        )
    return MasterKey(key_id, key)


def parse_key_ring(spec: str, current_id: str | None = None) -> KeyRing:
    """Parse ``"k1:<base64>,k2:<base64>"``; ``current_id`` defaults to the last entry."""
    entries = [entry for entry in spec.replace("\n", ",").split(",") if entry.strip()]
    return KeyRing.of((parse_master_key(entry) for entry in entries), current_id or None)


def format_master_key(master: MasterKey) -> str:
    """The ``id:base64`` entry for ``master`` (for generating settings, never for logging)."""
    return f"{master.key_id}:{base64.b64encode(master.key).decode('ascii')}"


def new_master_key_entry(key_id: str) -> str:
    """A fresh random ``id:base64`` entry to paste into the master-keys setting."""
    return format_master_key(generate_master_key(key_id))
