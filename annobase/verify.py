"""`annobase verify RELEASE [--public-key PEM] [--fingerprint FP]`: re-hash a published release and
check its signature.

Exit codes: 0 the release matches its signed manifest, 1 it does not (the first mismatch is printed),
2 the command was used wrongly (malformed release name, unreadable or non-Ed25519 key).

The key: `--public-key` if given; else the key the manifest names, from the base's published
`datasets/KEYS`; else the public half of the configured signing key (the development key with a
warning). A key read from the same store as the release proves only that the store is consistent:
`--fingerprint` pins the key a reader trusts, and a release signed by any other key is a mismatch.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from assets.release.published_keys import published_keys
from assets.release.release_manifest import MANIFEST_NAME, parse_release, verify_release
from assets.release.signing import dev_key_path, fingerprint, load_public_key, load_signing_key
from resources import object_store_from_env


def run_verify(release: str, public_key_path: str | None, pinned_fingerprint: str | None = None) -> int:
    """Verify `release` (`datasets/{industry}/{version}`) in the store the environment configures."""
    store = None
    try:
        parse_release(release)
        if public_key_path is not None:
            public_key = load_public_key(Path(public_key_path).read_bytes())
        else:
            store = object_store_from_env().process_config_and_initialize().open()
            public_key = _published_key(store, release) or _configured_key()
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    key = fingerprint(public_key)
    if pinned_fingerprint is not None and key != pinned_fingerprint:
        print(f"MISMATCH: signed by key {key}, not the pinned {pinned_fingerprint}", file=sys.stderr)
        return 1
    store = store or object_store_from_env().process_config_and_initialize().open()
    result = verify_release(store, release, public_key)
    if not result.ok:
        print(f"MISMATCH: {result.first_mismatch}", file=sys.stderr)
        return 1
    print(f"OK: {result.checked_files} files of {release} match its signed manifest (key {key})")
    return 0


def _published_key(store, release: str):
    """The published key the release's manifest names, or None (no KEYS, no such key, no manifest)."""
    try:
        named = json.loads(store.get(f"{release}/{MANIFEST_NAME}")).get("signing_key_fingerprint")
    except (KeyError, ValueError, AttributeError):
        return None
    return published_keys(store).get(named)


def _configured_key():
    signing_key = load_signing_key(os.environ.get("ANNOBASE_SIGNING_KEY") or None)
    if signing_key.is_dev:
        print(
            f"warning: ANNOBASE_SIGNING_KEY is not set and the release's key is not published; verifying "
            f"with the development key {dev_key_path()} ({signing_key.fingerprint})",
            file=sys.stderr,
        )
    return signing_key.public_key
