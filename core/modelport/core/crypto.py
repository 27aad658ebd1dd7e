"""Envelope encryption of artifacts: streaming, segmented AES-256-GCM.

Each artifact gets its own random 256-bit data key. The data key is stored only wrapped by a
master key (:func:`wrap_data_key`); rotating master keys re-wraps data keys (:func:`rewrap`) and
never touches the artifact. The wrapping binds the data key to the artifact it opens
(:class:`KeyBinding`: artifact id, model id, plaintext sha256), so that a wrapped key copied into
another model's database row does not open there.

The artifact is encrypted as a stream of authenticated segments, in the spirit of the STREAM
construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015), Tink's streaming AEAD and age. Nothing
ever holds the whole file: :func:`encrypt_stream` and :func:`decrypt_stream` are generators over
chunks of any size and re-chunk internally.

Layout (all integers big-endian)::

    header   = magic(8) ‖ version(1) ‖ segment_size(4) ‖ file_id(16)
               ‖ key_id_len(1) ‖ key_id ‖ key_check(16) ‖ header_mac(32)
    segment  = file_tag(8) ‖ index(4) ‖ last(1) ‖ length(4) ‖ AES-256-GCM(plaintext) ‖ tag(16)

* ``file_id`` is random per file; the segment key and the header MAC key are derived from the
  data key with HKDF-SHA256 salted by it, so nonces never repeat across files even if a data key
  were reused.
* Segment ``i`` is sealed with nonce ``file_id[:7] ‖ BE32(i) ‖ last`` and associated data
  ``sha256(header) ‖ framing``. The cleartext framing only serves diagnosis: the nonce comes from
  the decrypter's own counter and everything is authenticated, so reordering, splicing,
  truncation or a flipped bit can never yield unauthenticated plaintext; the framing merely lets
  each of them fail with its own error.
* ``key_check`` (a value derived from the data key) tells a wrong data key apart from a tampered
  file; ``header_mac`` authenticates the header before any segment is read.
* ``key_id`` is the id of the master key that wrapped the data key when the file was written. It
  is authenticated but informational: after a rotation the current id lives in the
  :class:`WrappedKey` record, not in the artifact.

Decryption yields a segment's plaintext only after its tag verified, and the stream is complete
only when a segment sealed with ``last = 1`` has verified and nothing follows it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from modelport.core.errors import ModelportError
from modelport.core.storage import ByteReader, iter_file, rechunk

if TYPE_CHECKING:
    from modelport.core.storage import ArtifactStore

DATA_KEY_BYTES = 32
MASTER_KEY_BYTES = 32
DEFAULT_SEGMENT_SIZE = 1 << 20
MIN_SEGMENT_SIZE = 1
MAX_SEGMENT_SIZE = 64 << 20
MAX_SEGMENTS = 1 << 32

MAGIC = b"\x89MPENC\r\n"
FORMAT_VERSION = 1
TAG_BYTES = 16
FILE_ID_BYTES = 16
FILE_TAG_BYTES = 8
KEY_CHECK_BYTES = 16
HEADER_MAC_BYTES = 32
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

_FIXED = struct.Struct(">8sBI16sB")  # magic, version, segment size, file id, key id length
_FRAMING = struct.Struct(">8sIBI")  # file tag, index, last, plaintext length
_WRAP_UNBOUND = 1  # written before the binding: associated data = master-key id only
_WRAP_BOUND = 2  # associated data = master-key id and the KeyBinding
_WRAP_NONCE_BYTES = 12
_LABEL = b"modelport/v1/"


# --------------------------------------------------------------------------- errors


class CryptoError(ModelportError):
    """Base of every encryption error. Messages never contain key material."""

    status = 500
    code = "crypto_error"


class KeyFormatError(CryptoError):
    """A key, key file or key-ring setting is malformed (wrong length, bad base64, bad id)."""

    code = "key_format"


class BadHeaderError(CryptoError):
    """The data does not start with a Modelport encrypted-artifact header this code can read."""

    code = "artifact_bad_header"


class TruncatedError(CryptoError):
    """The ciphertext ends before its final segment: it was cut short."""

    code = "artifact_truncated"


class TamperedError(CryptoError):
    """The ciphertext (header or a segment) failed authentication: it was altered."""

    code = "artifact_tampered"


class TrailingDataError(TamperedError):
    """Bytes follow the authenticated final segment."""

    code = "artifact_trailing_data"


class ReorderedError(CryptoError):
    """A segment appears at the wrong position: segments were reordered, dropped or repeated."""

    code = "artifact_reordered"


class SplicedError(CryptoError):
    """A segment belongs to another encrypted file."""

    code = "artifact_spliced"


class WrongKeyError(CryptoError):
    """The data key does not open this artifact, or a master key does not open a wrapped key."""

    code = "wrong_key"


class KeyBindingError(WrongKeyError):
    """A wrapped data key does not belong to the artifact and model asking for it."""

    code = "artifact_key_mismatch"


class UnboundKeyError(CryptoError):
    """A wrapped data key in the form written before keys were bound to their artifact."""

    code = "artifact_key_unbound"


class UnknownKeyIdError(CryptoError):
    """A wrapped key names a master-key id that none of the available master keys has."""

    code = "unknown_key_id"


# --------------------------------------------------------------------------- keys


def check_key_id(key_id: str) -> str:
    """Return ``key_id`` if it is a valid master-key id, else raise :class:`KeyFormatError`."""
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise KeyFormatError(
            f"invalid master-key id {key_id!r}: use 1-64 characters of A-Z a-z 0-9 . _ - "
            "starting with a letter or digit"
        )
    return key_id


def _check_data_key(data_key: bytes) -> bytes:
    if len(data_key) != DATA_KEY_BYTES:
        raise KeyFormatError(f"a data key must be {DATA_KEY_BYTES} bytes, got {len(data_key)}")
    return bytes(data_key)


@dataclass(frozen=True)
class MasterKey:
    """A 256-bit key-encryption key and its id. ``repr`` never shows the key."""

    key_id: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_key_id(self.key_id)
        if len(self.key) != MASTER_KEY_BYTES:
            raise KeyFormatError(
                f"master key {self.key_id!r} must be {MASTER_KEY_BYTES} bytes, got {len(self.key)}"
            )


@dataclass(frozen=True)
class KeyBinding:
    """What a wrapped data key belongs to: authenticated with it, never stored inside it.

    The wrapping only opens for the same artifact id, model id and plaintext sha256, so a wrapped
    key (or a storage key with its wrapped key) moved into another row fails to unwrap there.
    """

    artifact_id: str
    model_id: str
    sha256: str

    def encode(self) -> bytes:
        """Length-prefixed fields: no two bindings share an encoding."""
        parts = (self.artifact_id, self.model_id, self.sha256.lower())
        return b"".join(struct.pack(">H", len(p)) + p.encode("utf-8") for p in parts)


@dataclass(frozen=True)
class WrappedKey:
    """A data key sealed under master key ``key_id`` (AES-256-GCM; the id and the
    :class:`KeyBinding` are its associated data). The blob's first byte is its format: 2 bound,
    1 the unbound form written before the binding (read only to bind it)."""

    key_id: str
    blob: bytes = field(repr=False)

    @property
    def bound(self) -> bool:
        """Whether this wrapping authenticates a :class:`KeyBinding`."""
        return self.blob[:1] == bytes([_WRAP_BOUND])

    def encode(self) -> str:
        """Text form for a database column: ``<key id>:<base64 blob>``."""
        return f"{self.key_id}:{base64.b64encode(self.blob).decode('ascii')}"

    @classmethod
    def decode(cls, text: str) -> WrappedKey:
        """Parse the text form written by :meth:`encode`."""
        key_id, sep, blob = text.strip().partition(":")
        if not sep:
            raise KeyFormatError("a wrapped key must read '<key id>:<base64>'")
        return cls(check_key_id(key_id), b64decode_strict(blob, what="wrapped key"))


def b64decode_strict(text: str, *, what: str) -> bytes:
    """Decode standard base64 (surrounding whitespace allowed); the error names ``what`` only."""
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"{what} is not valid base64") from None


def generate_data_key() -> bytes:
    """A fresh random 256-bit data key; use a new one for every artifact, re-uploads included."""
    return AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)


def generate_master_key(key_id: str) -> MasterKey:
    """A fresh random master key with the given id."""
    return MasterKey(check_key_id(key_id), os.urandom(MASTER_KEY_BYTES))


def _wrap_aad(key_id: str, binding: KeyBinding | None) -> bytes:
    aad = _LABEL + b"wrap\x00" + key_id.encode("ascii")
    return aad if binding is None else aad + b"\x00bound\x00" + binding.encode()


def wrap_data_key(data_key: bytes, master: MasterKey, binding: KeyBinding) -> WrappedKey:
    """Seal ``data_key`` under ``master``, bound to ``binding`` and the master-key id."""
    nonce = os.urandom(_WRAP_NONCE_BYTES)
    aad = _wrap_aad(master.key_id, binding)
    sealed = AESGCM(master.key).encrypt(nonce, _check_data_key(data_key), aad)
    return WrappedKey(master.key_id, bytes([_WRAP_BOUND]) + nonce + sealed)


def unwrap_data_key(
    wrapped: WrappedKey,
    masters: Iterable[MasterKey],
    binding: KeyBinding,
    *,
    allow_unbound: bool = False,
) -> bytes:
    """Open a wrapped data key with the master key its id names, for the artifact ``binding``
    names.

    Raises :class:`UnknownKeyIdError` when no master key has that id, :class:`KeyBindingError`
    when the master key does not open it for this binding (the wrapped key belongs to another
    artifact or model, a different key has that id, or the blob was altered), and
    :class:`UnboundKeyError` for the unbound form unless ``allow_unbound`` (binding old keys,
    rotation).
    """
    by_id = {m.key_id: m for m in masters}
    master = by_id.get(wrapped.key_id)
    if master is None:
        known = ", ".join(sorted(by_id)) or "none"
        raise UnknownKeyIdError(
            f"the data key is wrapped by master key {wrapped.key_id!r}, which is not configured "
            f"(configured ids: {known})"
        )
    blob = wrapped.blob
    if len(blob) != 1 + _WRAP_NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES or blob[0] not in (
        _WRAP_BOUND,
        _WRAP_UNBOUND,
    ):
        raise KeyFormatError(f"wrapped key under {wrapped.key_id!r} has an unknown format")
    if not wrapped.bound and not allow_unbound:
        raise UnboundKeyError(
            f"the data key of artifact {binding.artifact_id} is in the unbound form written "
            "before keys were bound to their artifact; the API binds such keys when it starts "
            "(or run `modelport-api rotate-keys`)"
        )
    nonce, sealed = blob[1 : 1 + _WRAP_NONCE_BYTES], blob[1 + _WRAP_NONCE_BYTES :]
    aad = _wrap_aad(wrapped.key_id, binding if wrapped.bound else None)
    try:
        return AESGCM(master.key).decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise KeyBindingError(
            f"master key {wrapped.key_id!r} does not open the data key of artifact "
            f"{binding.artifact_id} of model {binding.model_id}: the wrapped key belongs to "
            "another artifact or model (a swapped database row), a different key has that id, "
            "or the wrapped key was altered"
        ) from None


def rewrap(
    wrapped: WrappedKey,
    old_masters: Iterable[MasterKey],
    new_master: MasterKey,
    binding: KeyBinding,
) -> WrappedKey:
    """Re-seal a data key under ``new_master``, bound to ``binding`` (master-key rotation, and
    binding keys of the unbound form; the artifact is untouched)."""
    data_key = unwrap_data_key(wrapped, old_masters, binding, allow_unbound=True)
    return wrap_data_key(data_key, new_master, binding)


def encode_data_key(data_key: bytes) -> str:
    """Base64 text of a data key, as stored in the per-model Secret's ``data-key`` entry."""
    return base64.b64encode(_check_data_key(data_key)).decode("ascii")


def decode_data_key(text: str | bytes) -> bytes:
    """Parse base64 text of a 32-byte data key; refuse any other length."""
    raw = text.decode("ascii", errors="replace") if isinstance(text, bytes) else text
    return _check_data_key(b64decode_strict(raw, what="data key"))


def read_data_key_file(path: Path) -> bytes:
    """Read a data-key file as mounted from the per-model Secret (base64 text)."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFormatError(f"cannot read data-key file {path}: {exc.strerror}") from None
    try:
        return decode_data_key(text)
    except KeyFormatError as exc:
        raise KeyFormatError(f"data-key file {path}: {exc.message}") from None


# --------------------------------------------------------------------------- header


def _hkdf(data_key: bytes, salt: bytes | None, info: str, length: int = 32) -> bytes:
    kdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=_LABEL + info.encode())
    return kdf.derive(data_key)


def _key_check(data_key: bytes) -> bytes:
    return _hkdf(data_key, None, "key-check", KEY_CHECK_BYTES)


@dataclass(frozen=True)
class ArtifactHeader:
    """The parsed header of an encrypted artifact."""

    version: int
    segment_size: int
    file_id: bytes
    key_id: str
    key_check: bytes = field(repr=False)
    mac: bytes = field(repr=False)

    def signed_part(self) -> bytes:
        """The header bytes covered by the header MAC."""
        key_id = self.key_id.encode("ascii")
        fixed = _FIXED.pack(MAGIC, self.version, self.segment_size, self.file_id, len(key_id))
        return fixed + key_id + self.key_check

    def to_bytes(self) -> bytes:
        return self.signed_part() + self.mac


def _check_segment_size(segment_size: int) -> int:
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(
            f"segment size must be between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE} bytes"
        )
    return segment_size


def _read_header(reader: ByteReader) -> ArtifactHeader:
    magic = reader.read(len(MAGIC))
    if magic != MAGIC:
        if len(magic) < len(MAGIC) and MAGIC.startswith(magic):
            raise TruncatedError("the encrypted artifact ends inside its header")
        raise BadHeaderError("not a Modelport encrypted artifact (bad magic bytes)")
    rest = reader.read(_FIXED.size - len(MAGIC))
    if len(rest) < _FIXED.size - len(MAGIC):
        raise TruncatedError("the encrypted artifact ends inside its header")
    _, version, segment_size, file_id, key_id_len = _FIXED.unpack(magic + rest)
    if version != FORMAT_VERSION:
        raise BadHeaderError(f"unsupported encrypted-artifact format version {version}")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise BadHeaderError(f"segment size {segment_size} in the header is out of range")
    tail_len = key_id_len + KEY_CHECK_BYTES + HEADER_MAC_BYTES
    tail = reader.read(tail_len)
    if len(tail) < tail_len:
        raise TruncatedError("the encrypted artifact ends inside its header")
    try:
        key_id = tail[:key_id_len].decode("ascii")
    except UnicodeDecodeError:
        raise BadHeaderError("the master-key id in the header is not ASCII") from None
    if key_id and not KEY_ID_PATTERN.fullmatch(key_id):
        raise BadHeaderError("the master-key id in the header is malformed")
    return ArtifactHeader(
        version=version,
        segment_size=segment_size,
        file_id=file_id,
        key_id=key_id,
        key_check=tail[key_id_len : key_id_len + KEY_CHECK_BYTES],
        mac=tail[key_id_len + KEY_CHECK_BYTES :],
    )


def read_header(chunks: Iterable[bytes]) -> ArtifactHeader:
    """Parse (without authenticating) the header at the start of an encrypted artifact."""
    return _read_header(ByteReader(chunks))


def ciphertext_size(
    plaintext_size: int, *, segment_size: int = DEFAULT_SEGMENT_SIZE, key_id: str = ""
) -> int:
    """The exact size of the encrypted form of ``plaintext_size`` bytes."""
    _check_segment_size(segment_size)
    segments = max(1, -(-plaintext_size // segment_size))
    header = _FIXED.size + len(key_id) + KEY_CHECK_BYTES + HEADER_MAC_BYTES
    return header + plaintext_size + segments * (_FRAMING.size + TAG_BYTES)


# --------------------------------------------------------------------------- segments


class _SegmentCipher:
    """Seals and opens the segments of one file."""

    def __init__(self, data_key: bytes, header: ArtifactHeader) -> None:
        self._aead = AESGCM(_hkdf(data_key, header.file_id, "segment"))
        self._prefix = header.file_id[:7]
        self.file_tag = header.file_id[:FILE_TAG_BYTES]
        self._header_digest = hashlib.sha256(header.to_bytes()).digest()

    def _nonce(self, index: int, last: bool) -> bytes:
        return self._prefix + struct.pack(">IB", index, 1 if last else 0)

    def framing(self, index: int, last: bool, length: int) -> bytes:
        return _FRAMING.pack(self.file_tag, index, 1 if last else 0, length)

    def seal(self, index: int, last: bool, plaintext: bytes) -> bytes:
        framing = self.framing(index, last, len(plaintext))
        aad = self._header_digest + framing
        return framing + self._aead.encrypt(self._nonce(index, last), plaintext, aad)

    def open(self, index: int, last: bool, framing: bytes, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(
                self._nonce(index, last), sealed, self._header_digest + framing
            )
        except InvalidTag:
            raise TamperedError(
                f"segment {index} of the encrypted artifact failed authentication: "
                "the artifact was altered"
            ) from None


def _new_header(data_key: bytes, segment_size: int, key_id: str) -> ArtifactHeader:
    file_id = os.urandom(FILE_ID_BYTES)
    unsigned = ArtifactHeader(
        FORMAT_VERSION, segment_size, file_id, key_id, _key_check(data_key), b""
    )
    mac = hmac.digest(_hkdf(data_key, file_id, "header"), unsigned.signed_part(), "sha256")
    return ArtifactHeader(FORMAT_VERSION, segment_size, file_id, key_id, unsigned.key_check, mac)


def encrypt_stream(
    chunks: Iterable[bytes],
    data_key: bytes,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    key_id: str = "",
) -> Iterator[bytes]:
    """Encrypt a stream of plaintext chunks (any sizes) into a stream of ciphertext pieces.

    ``key_id`` records which master key wraps ``data_key`` (empty when none does). Memory stays
    within about two segments whatever the input's chunking.
    """
    data_key = _check_data_key(data_key)  # arguments fail here, not at the first next()
    _check_segment_size(segment_size)
    if key_id:
        check_key_id(key_id)
    return _encrypt(chunks, _new_header(data_key, segment_size, key_id), data_key)


def _encrypt(chunks: Iterable[bytes], header: ArtifactHeader, data_key: bytes) -> Iterator[bytes]:
    cipher = _SegmentCipher(data_key, header)
    segment_size = header.segment_size
    yield header.to_bytes()
    for index, (segment, last) in enumerate(rechunk(chunks, segment_size)):
        if index >= MAX_SEGMENTS:
            raise CryptoError("artifact too large for one encrypted stream (2^32 segments)")
        yield cipher.seal(index, last, segment)


def _verify_header(header: ArtifactHeader, data_key: bytes) -> None:
    if not hmac.compare_digest(header.key_check, _key_check(data_key)):
        raise WrongKeyError(
            "the data key does not open this artifact (wrong key, or the header's key check "
            "was altered)"
        )
    expected = hmac.digest(
        _hkdf(data_key, header.file_id, "header"), header.signed_part(), "sha256"
    )
    if not hmac.compare_digest(header.mac, expected):
        raise TamperedError("the encrypted artifact's header failed authentication")


def _read_segment(
    reader: ByteReader, cipher: _SegmentCipher, index: int, segment_size: int
) -> tuple[bytes, bool]:
    framing = reader.read(_FRAMING.size)
    if not framing:
        raise TruncatedError(
            f"the encrypted artifact ends after segment {index - 1} without its final segment"
        )
    if len(framing) < _FRAMING.size:
        raise TruncatedError(f"the encrypted artifact ends inside segment {index}")
    file_tag, found, last_flag, length = _FRAMING.unpack(framing)
    if not hmac.compare_digest(file_tag, cipher.file_tag):
        raise SplicedError(f"segment {index} belongs to another encrypted file")
    if found != index:
        raise ReorderedError(
            f"expected segment {index} but found segment {found}: segments were reordered, "
            "dropped or repeated"
        )
    last = last_flag == 1
    if last_flag > 1 or length > segment_size or (not last and length != segment_size):
        raise TamperedError(f"segment {index} has altered framing")
    sealed = reader.read(length + TAG_BYTES)
    if len(sealed) < length + TAG_BYTES:
        raise TruncatedError(f"the encrypted artifact ends inside segment {index}")
    return cipher.open(index, last, framing, sealed), last


def decrypt_stream(chunks: Iterable[bytes], data_key: bytes) -> Iterator[bytes]:
    """Decrypt a stream produced by :func:`encrypt_stream`, yielding verified plaintext segments.

    Each yielded piece has been authenticated; the stream is complete only if the generator
    finishes without raising. Errors: :class:`BadHeaderError`, :class:`WrongKeyError`,
    :class:`TruncatedError`, :class:`ReorderedError`, :class:`SplicedError`,
    :class:`TamperedError` (and its :class:`TrailingDataError`).
    """
    return _decrypt(chunks, _check_data_key(data_key))


def _decrypt(chunks: Iterable[bytes], data_key: bytes) -> Iterator[bytes]:
    reader = ByteReader(chunks)
    header = _read_header(reader)
    _verify_header(header, data_key)
    cipher = _SegmentCipher(data_key, header)
    index = 0
    while True:
        plaintext, last = _read_segment(reader, cipher, index, header.segment_size)
        if last:
            if not reader.at_eof():
                raise TrailingDataError("bytes follow the final segment of the encrypted artifact")
            if plaintext:
                yield plaintext
            return
        yield plaintext
        index += 1


# --------------------------------------------------------------------------- store helpers


@dataclass(frozen=True)
class EncryptedObject:
    """The object :func:`encrypt_to_store` wrote: its URI, the plaintext's size and sha256, and
    the bytes it takes in the store."""

    uri: str
    size: int
    sha256: str
    stored_size: int


class _Digest:
    """Counts and hashes plaintext while it streams through."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def tap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.hash.update(chunk)
            self.size += len(chunk)
            yield chunk


def encrypt_to_store(
    store: ArtifactStore,
    key: str,
    source: Iterable[bytes] | IO[bytes],
    data_key: bytes,
    *,
    key_id: str = "",
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> EncryptedObject:
    """Encrypt a file object or chunk iterator straight into ``store`` under ``key``.

    Returns the plaintext size and sha256 (what the runtime verifies after decrypting).
    """
    # Anything with read() is a file object (iterating one would split it at newlines).
    chunks = iter_file(cast("IO[bytes]", source)) if hasattr(source, "read") else source
    digest = _Digest()
    encrypted = encrypt_stream(
        digest.tap(chunks), data_key, key_id=key_id, segment_size=segment_size
    )
    stored = store.put_stream(key, encrypted)
    return EncryptedObject(store.uri_for(key), digest.size, digest.hash.hexdigest(), stored)


def decrypt_from_store(
    store: ArtifactStore, key: str, data_key: bytes, *, chunk_size: int = 1 << 20
) -> Iterator[bytes]:
    """Stream the verified plaintext of an artifact stored by :func:`encrypt_to_store`."""
    return decrypt_stream(store.get_stream(key, chunk_size=chunk_size), data_key)
