"""Ed25519 keys and signatures for release manifests (CONTRACT.md sections 4 and 6).

The private key never leaves its PEM file: nothing here logs, returns or prints its bytes. Without a
configured key a development key is generated once under the user's home, so local runs sign
reproducibly, and callers are told (`is_dev`) so they can warn that it proves nothing to anyone else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key with what may be shown about it: its public half and its fingerprint."""

    private_key: Ed25519PrivateKey = field(repr=False)
    public_pem: bytes
    fingerprint: str
    is_dev: bool

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


def dev_key_path() -> Path:
    """Read at call time, so a changed HOME (tests, sudo) is honoured."""
    return Path.home() / ".annobase" / "dev_signing_key.pem"


def generate_key_pem() -> bytes:
    """A new Ed25519 private key as unencrypted PKCS8 PEM, for operators and tests."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """`sha256:` + hex sha256 of the raw 32-byte public key: what manifests and messages name a key by."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class SigningKeyMissing(ValueError):
    """No signing key is configured where a development key must not stand in for one."""


def load_signing_key(path: str | None, allow_dev: bool = True) -> SigningKey:
    """The key at `path` (unencrypted PKCS8 PEM, Ed25519 only), or the development key when None.

    `allow_dev=False` (a store others read: S3) refuses to sign with the development key: a release
    signed by a key generated on some machine's home directory proves nothing to anyone else.
    """
    if path is None:
        if not allow_dev:
            raise SigningKeyMissing(
                "ANNOBASE_SIGNING_KEY is not set: releases to an S3 store must be signed with the base's "
                "own Ed25519 key (the development key is for the embedded store only)"
            )
        return _signing_key(_load_private_pem(_dev_key_pem(), str(dev_key_path())), is_dev=True)
    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read signing key {path}: {error.strerror or error}") from error
    return _signing_key(_load_private_pem(pem, path), is_dev=False)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from SubjectPublicKeyInfo PEM; any other key type is refused."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ValueError(f"not a PEM public key: {error}") from error
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"the public key is {_key_kind(key)}; releases are verified with Ed25519 keys only")
    return key


def sign(data: bytes, key: SigningKey) -> bytes:
    """The raw 64-byte Ed25519 signature of `data`, base64-encoded ASCII: the `.sig` file's content."""
    return base64.b64encode(key.private_key.sign(data))


def verify_signature(data: bytes, signature_b64: bytes | str, public_key: Ed25519PublicKey) -> bool:
    """True only for a well-formed signature of exactly `data` by `public_key`; never raises on bad input."""
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _signing_key(private_key: Ed25519PrivateKey, is_dev: bool) -> SigningKey:
    public_key = private_key.public_key()
    return SigningKey(private_key, public_pem(public_key), fingerprint(public_key), is_dev)


def _load_private_pem(pem: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as error:  # cryptography's way of saying "encrypted, and no password given"
        raise ValueError(f"signing key {source} is encrypted; an unencrypted PKCS8 PEM is needed") from error
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ValueError(f"signing key {source} is not a PEM private key: {error}") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(
            f"signing key {source} is {_key_kind(key)}; releases are signed with Ed25519 keys only"
        )
    return key


def _key_kind(key: object) -> str:
    """'an RSA key'-style wording for refusals, from the key's type only, never its material."""
    kind = type(key).__name__.removesuffix("PrivateKey").removesuffix("PublicKey").lstrip("_")
    return f"an {kind} key" if kind[:1] in "AEFHILMNORSX" else f"a {kind} key"


def _dev_key_pem() -> bytes:
    """The development key's PEM, generated on first use.

    Written to a private temp file and hard-linked into place, so the file is 0600 from its first byte
    and two processes racing to create it agree on one key (the loser reads the winner's).
    """
    path = dev_key_path()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mkstemp creates it 0600
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(generate_key_pem())
            temp.flush()
            os.fsync(temp.fileno())
        try:
            os.link(temp_name, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temp_name)
    return path.read_bytes()
