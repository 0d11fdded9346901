"""`annobase verify RELEASE [--public-key PEM]`: re-hash a published release and check its signature.

Exit codes: 0 the release matches its signed manifest, 1 it does not (the first mismatch is printed),
2 the command was used wrongly (malformed release name, unreadable or non-Ed25519 key).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from assets.release.release_manifest import parse_release, verify_release
from assets.release.signing import dev_key_path, fingerprint, load_public_key, load_signing_key
from resources import object_store_from_env


def run_verify(release: str, public_key_path: str | None) -> int:
    """Verify `release` (`datasets/{industry}/{version}`) in the store the environment configures.

    The key is `public_key_path` if given, else the public half of the signing key the publisher uses
    (`ANNOBASE_SIGNING_KEY`, or the development key, with a warning since it proves nothing to others).
    """
    try:
        parse_release(release)
        if public_key_path is not None:
            public_key = load_public_key(Path(public_key_path).read_bytes())
        else:
            signing_key = load_signing_key(os.environ.get("ANNOBASE_SIGNING_KEY") or None)
            if signing_key.is_dev:
                print(
                    f"warning: ANNOBASE_SIGNING_KEY is not set; verifying with the development key "
                    f"{dev_key_path()} ({signing_key.fingerprint})",
                    file=sys.stderr,
                )
            public_key = signing_key.public_key
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    store = object_store_from_env().process_config_and_initialize().open()
    result = verify_release(store, release, public_key)
    if not result.ok:
        print(f"MISMATCH: {result.first_mismatch}", file=sys.stderr)
        return 1
    key = fingerprint(public_key)
    print(f"OK: {result.checked_files} files of {release} match its signed manifest (key {key})")
    return 0
