"""The content-addressed pool of release files: `datasets/{industry}/objects/sha256/{ab}/{sha256}{ext}`.

Every version of an industry's dataset names its media and texts here instead of holding copies, so
a version costs what changed: a file already in the pool is named again, not copied. The name is the
content's sha256 (`ab` its first two hex digits, to keep directories small), so an object is written
once, with `put_if_absent`, only from bytes whose hash was just computed, and never replaced. A
version's MANIFEST names a pooled file by its path relative to the version,
`../objects/sha256/{ab}/{sha256}{ext}`, which is also how the Parquet and the Croissant card name it:
a copy of `datasets/{industry}/` resolves every name offline.
"""

from __future__ import annotations

import re

POOL_DIRECTORY = "objects"
POOL_PREFIX = f"../{POOL_DIRECTORY}/"  # how a version names what lies in the pool
# the only path outside its version a manifest may name: a pool object whose name is its sha256
EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}")
POOL_PATH = re.compile(
    r"\.\./objects/sha256/(?P<fan>[0-9a-f]{2})/(?P<sha256>(?P=fan)[0-9a-f]{62})(?P<ext>\.[a-z0-9]{1,8})?"
)


def pool_path(sha256: str, extension: str) -> str:
    """`../objects/sha256/{ab}/{sha256}{ext}`: where the bytes hashing to `sha256` lie, seen from a
    version's root. `extension` ('.png', '' for none) keeps the file openable by its name."""
    return f"{POOL_PREFIX}sha256/{sha256[:2]}/{sha256}{extension.lower()}"


def extension_of(upload_key: str) -> str:
    """The upload's extension, lower-cased, or '' where it has none a pool name may carry."""
    suffix = upload_key[upload_key.rfind(".") :] if "." in upload_key.rpartition("/")[2] else ""
    return suffix.lower() if EXTENSION.fullmatch(suffix) else ""


def is_pool_path(path: str) -> bool:
    return POOL_PATH.fullmatch(path) is not None


def pool_sha256(path: str) -> str | None:
    """The sha256 a pool path's name says its bytes have; None for any other path."""
    match = POOL_PATH.fullmatch(path)
    return match["sha256"] if match else None


def pool_key(release_prefix: str, path: str) -> str:
    """The store key of pool path `path` named by the version at `release_prefix`
    (`datasets/{industry}/{version}`): `datasets/{industry}/objects/...`."""
    if not is_pool_path(path):
        raise ValueError(f"{path!r} is not a pool path")
    return f"{release_prefix.rsplit('/', 1)[0]}/{path[len('../') :]}"
