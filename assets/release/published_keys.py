"""`datasets/KEYS`: the public keys releases are signed with, published beside the releases.

A reader who pins a key's fingerprint (`annobase verify --fingerprint`) needs the key itself, and a
release names only its signer's fingerprint; KEYS holds every key that ever signed a release here
(PEM, each under a comment line naming its fingerprint), so old releases stay verifiable after the
key rotates. A key is added before the first release it signs is published.
"""

from __future__ import annotations

import re
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from annobase.object_store import ObjectStore
from assets.release.signing import SigningKey, fingerprint, load_public_key

KEYS_KEY = "datasets/KEYS"
HEADER = "# annobase release signing keys (Ed25519, PEM); each key follows the line naming its fingerprint\n"
_ENTRY = re.compile(
    r"^# fingerprint: (?P<fingerprint>sha256:[0-9a-f]{64})[^\n]*\n"
    r"(?P<pem>-----BEGIN PUBLIC KEY-----\n.*?\n-----END PUBLIC KEY-----\n)",
    re.S | re.M,
)


def published_keys(store: ObjectStore) -> dict[str, Ed25519PublicKey]:
    """fingerprint -> key, for every key in KEYS whose PEM really has the fingerprint it is listed under."""
    try:
        text = store.get(KEYS_KEY).decode("utf-8", errors="replace")
    except KeyError:
        return {}
    keys = {}
    for entry in _ENTRY.finditer(text):
        try:
            key = load_public_key(entry["pem"].encode())
        except ValueError:
            continue
        if fingerprint(key) == entry["fingerprint"]:
            keys[entry["fingerprint"]] = key
    return keys


def publish_public_key(store: ObjectStore, key: SigningKey, now: datetime) -> None:
    """Add `key`'s public half to KEYS unless it is there already.

    Read, extend, write: two publishes adding the same key at once write the same content; a base
    signs with one key at a time, so two different new keys never race."""
    if key.fingerprint in published_keys(store):
        return
    try:
        text = store.get(KEYS_KEY).decode("utf-8")
    except KeyError:
        text = HEADER
    entry = (
        f"# fingerprint: {key.fingerprint} (first used {now.date().isoformat()})\n{key.public_pem.decode()}"
    )
    store.put(KEYS_KEY, (text + entry).encode())
