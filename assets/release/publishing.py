"""Writing one release of an industry dataset, atomically and never over an existing version.

A version holds its documents; its media and texts lie in the industry's content-addressed pool
(assets/release/object_pool.py), where a file is written once: a version reads and writes only the
files no earlier version named, so its cost is what changed plus its documents.

Order is the guarantee: pool files, Parquet, Croissant card and quality report first; then
`MANIFEST.json` and its signature; `datasets/{industry}/LATEST` last. A version counts as
published once its signature exists: a run that died before that left an incomplete version that
no LATEST points at, and the next run redoes that same version number, first discarding what the
interrupted run left there (which may hold files of items no longer in the release).

A release signs only bytes intake verified: every upload pooled is read and hashed, and put in the
pool only if it is the bytes intake recorded; an item whose upload is not (it was changed or deleted
since) is withheld from the release whole, the reason in the quality report and the manifest's
lineage. A pool object is written only from bytes just hashed to its name, with `put_if_absent`;
one already there is trusted by its name when publishing and re-hashed by `annobase verify`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from annobase import ledger
from annobase.object_store import ObjectStore
from annotation_types import single_answer_columns
from assets.release.object_pool import POOL_PREFIX, extension_of, pool_key, pool_path
from assets.release.published_keys import publish_public_key
from assets.release.release_manifest import MANIFEST_NAME, SIGNATURE_NAME, build_manifest
from assets.release.signing import SigningKey, sign

VERSION = re.compile(r"v(\d{4,})")
DATA_FILE = "data/items.parquet"
PART_COLUMNS = {"text": "text_path", "image": "image_path", "audio": "audio_path"}
# Files copied into a release at once per Dask worker; the S3 client's connection pool holds 32.
COPY_THREADS = 16
# Files per Dask task: scheduling a task costs little next to 2,000 copies, and a release of
# 100,000 files still gives every worker of a large cluster several tasks.
FILES_PER_TASK = 2_000


def dataset_prefix(industry: str) -> str:
    return f"datasets/{industry}/"


@dataclass(frozen=True)
class Versions:
    published: list[int]
    incomplete: list[int]

    def next_version(self) -> str:
        """The lowest incomplete version above the last published one (to redo it), else a new one."""
        last = max(self.published, default=0)
        redo = [number for number in self.incomplete if number > last]
        return f"v{min(redo) if redo else last + 1:04d}"


def existing_versions(store: ObjectStore, industry: str) -> Versions:
    """From the versions' directories and their signatures: never a listing of the pool's files."""
    prefix = dataset_prefix(industry)
    seen: dict[int, bool] = {}
    for directory in store.list_prefixes(prefix):
        if match := VERSION.fullmatch(directory[len(prefix) : -1]):
            seen[int(match.group(1))] = store.head(directory + SIGNATURE_NAME) is not None
    return Versions(
        sorted(n for n, done in seen.items() if done), sorted(n for n, done in seen.items() if not done)
    )


def latest_manifest(store: ObjectStore, industry: str) -> dict | None:
    """The manifest LATEST names, or None before the first release."""
    head = store.head(dataset_prefix(industry) + "LATEST")
    if head is None:
        return None
    version = store.get(dataset_prefix(industry) + "LATEST").decode().strip()
    return json.loads(store.get(f"{dataset_prefix(industry)}{version}/{MANIFEST_NAME}"))


def content_fingerprint(items: pd.DataFrame, file_hashes: dict[str, str]) -> str:
    """What a release says, independent of when it was cut: its rows' answers and its files' bytes."""
    answer_columns = sorted(c for c in items.columns if c.startswith("label") or c in single_answer_columns())
    digest = hashlib.sha256()
    columns = ["item_key", *answer_columns]
    rows = items.sort_values("item_key")
    # from the columns' lists: iterating rows of Arrow-backed columns was most of the cost
    for values in zip(*(rows[c].tolist() for c in columns), strict=True):
        record = dict(zip(columns, values, strict=True))
        digest.update(json.dumps(record, sort_keys=True, default=str, ensure_ascii=False).encode())
    for path in sorted(file_hashes):
        digest.update(f"{path}={file_hashes[path]}".encode())
    return digest.hexdigest()


@dataclass
class ReleaseFiles:
    """What the version names: path -> (sha256, bytes), its own files as written and pooled files as
    their content address gives them; `withheld` maps the items kept out of the release to why;
    `pooled` counts the objects this version added to the pool (the rest were there already)."""

    prefix: str
    written: dict[str, tuple[str, int]] = field(default_factory=dict)
    withheld: dict[str, str] = field(default_factory=dict)
    pooled: int = 0

    def put(self, store: ObjectStore, path: str, data: bytes) -> None:
        self.written[path] = _put(store, self.prefix + path, data)

    def start_pooling(
        self, store: ObjectStore, uploads: list[tuple[str, str, str]], texts: dict[str, str], dask_client
    ) -> Callable[[], list[tuple[str | None, int]]]:
        """Start reading each upload (source key, pool path, sha256 intake verified) and putting it in
        the pool if its bytes are the ones intake verified, and putting each pool path's text, on the
        Dask workers in tasks of FILES_PER_TASK files. Returns what waits for them and gives each
        upload's (sha256, bytes) as read, (None, 0) for an upload that is gone."""
        key = functools.partial(pool_key, self.prefix.rstrip("/"))
        copy_chunks = _chunks([(source, key(path), sha256) for source, path, sha256 in uploads])
        text_chunks = _chunks([(key(path), text) for path, text in texts.items()])
        # sent to the workers in one go before any task runs (a worker busy copying is slow to take
        # data in), unhashed, and not embedded in the task graph: a release's texts are tens of MB.
        sent = (
            dask_client.scatter(copy_chunks + text_chunks, hash=False) if copy_chunks or text_chunks else []
        )
        copies = _map(dask_client, _pool_uploads, store, sent[: len(copy_chunks)])
        writes = _map(dask_client, _pool_texts, store, sent[len(copy_chunks) :])

        def finish() -> list[tuple[str | None, int]]:
            copied, created = _gathered(dask_client, copies), _gathered(dask_client, writes)
            self.pooled = sum(new for *_, new in copied) + sum(created)
            return [(digest, size) for digest, size, _ in copied]

        return finish


def _put(store: ObjectStore, key: str, data: bytes) -> tuple[str, int]:
    store.put(key, data)
    return _digest(data)


def _chunks(calls: list[tuple]) -> list[pd.DataFrame]:
    """Tasks of FILES_PER_TASK calls: a release's copies are independent, so they spread over the
    workers (1 → 2 workers: 21.5 → 15.7 s for 100,000 files, benchmarks/FINDINGS.md). As frames:
    Dask serialises a list element by element, 40 times slower for 2,000 pairs of strings."""
    return [pd.DataFrame(calls[i : i + FILES_PER_TASK]) for i in range(0, len(calls), FILES_PER_TASK)]


def _map(dask_client, function: Callable, store: ObjectStore, chunks: list) -> list:
    return dask_client.map(function, [store] * len(chunks), chunks, pure=False) if chunks else []


def _gathered(dask_client, futures: list) -> list:
    """The tasks' results in call order; the first error cancels the tasks not yet done."""
    try:
        return [result for chunk in dask_client.gather(futures) for result in chunk]
    except BaseException:
        dask_client.cancel(futures)
        raise


class PoolObjectAltered(Exception):
    """A pool object's size is not that of the bytes its content address names: someone changed the
    pool, which annobase never does; publishing stops rather than name it."""


def _into_pool(store: ObjectStore, key: str, data: bytes) -> bool:
    """`data` (whose sha256 the key names) put at `key` unless an object is there already, which its
    key vouches for (`annobase verify` re-hashes it); True if this call created it."""
    if store.put_if_absent(key, data):
        return True
    if (head := store.head(key)) is not None and head.size != len(data):
        raise PoolObjectAltered(f"{key} holds {head.size} bytes, its content address {len(data)}")
    return False


def _pool_texts(store: ObjectStore, calls: pd.DataFrame) -> list[bool]:
    """Each (key, text) of `calls` put in the pool: whether each was new."""
    return _in_threads(store, lambda key, text: _into_pool(store, key, text.encode()), _pairs(calls))


def _pool_uploads(store: ObjectStore, calls: pd.DataFrame) -> list[tuple[str | None, int, bool]]:
    """Each (source key, pool key, sha256 intake verified) of `calls`: the upload read and hashed, and
    put in the pool only if it is the bytes intake verified. (sha256, bytes) as read, and whether the
    pool gained an object; (None, 0, False) where the source no longer exists (a client deleted its
    upload: that item is withheld, not the release failed)."""

    def pool(source: str, key: str, verified: str) -> tuple[str | None, int, bool]:
        try:
            data = store.get(source)
        except KeyError:
            return None, 0, False
        sha256 = hashlib.sha256(data).hexdigest()
        return sha256, len(data), sha256 == verified and _into_pool(store, key, data)

    return _in_threads(store, pool, list(zip(*(calls[c].tolist() for c in calls.columns), strict=True)))


def _pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame[0].tolist(), frame[1].tolist(), strict=True))


def _in_threads(store: ObjectStore, function: Callable, calls: list[tuple]) -> list:
    """`function(*call)` for every call, results in call order; COPY_THREADS at a time on a remote
    store, where a copy is mostly waiting on the server, one at a time on the local store, where it
    is a few system calls and threads only add contention for the GIL (benchmarks/FINDINGS.md).
    The first error stops the calls not yet started."""
    if not store.remote:
        return [function(*call) for call in calls]
    with ThreadPoolExecutor(COPY_THREADS) as pool:
        try:
            return list(pool.map(lambda call: function(*call), calls))
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def parquet_file(items: pd.DataFrame):
    """The release's Parquet bytes and their Arrow schema, with every column typed: a column empty in
    this release (no audio in a text-only industry) is a nullable string, not Arrow's `null`, which
    no schema reader can use."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(items, preserve_index=False)
    schema = pa.schema(
        [field.with_type(pa.string()) if pa.types.is_null(field.type) else field for field in table.schema]
    )
    buffer = io.BytesIO()
    pq.write_table(table.cast(schema), buffer)
    return buffer.getvalue(), schema


def _drafted(
    store: ObjectStore,
    files: ReleaseFiles,
    items: pd.DataFrame,
    data_files: dict[str, tuple[str, int]],
    documents: Callable[..., dict[str, bytes]],
    manifest: Callable[[dict[str, tuple[str, int]]], bytes],
) -> tuple[dict[str, bytes], bytes]:
    """Write the Parquet; return the documents built on it and the manifest listing them with
    `data_files` (path -> sha256, bytes) and the Parquet. Every file listed is one intake verified."""
    data, schema = parquet_file(items.assign(files_verified=True))
    files.put(store, DATA_FILE, data)
    hashes = {path: sha256 for path, (sha256, _) in data_files.items()}
    contents = documents(items, {**hashes, DATA_FILE: files.written[DATA_FILE][0]}, schema, files.withheld)
    listing = {**data_files, DATA_FILE: files.written[DATA_FILE]}
    listing.update({path: _digest(data) for path, data in contents.items()})
    return contents, manifest(listing)


def _digest(data: bytes) -> tuple[str, int]:
    return hashlib.sha256(data).hexdigest(), len(data)


def pooled_files(manifest: dict | None) -> dict[str, tuple[str, int]]:
    """The pool paths a published version's manifest names, with their sha256 and size: a new
    version names them again without reading their uploads (their bytes were verified when pooled)."""
    if manifest is None:
        return {}
    # a pool path was checked against its sha256 when the manifest was written, and a new version
    # only looks up the paths it computes itself from the sha256 intake verified
    return {
        entry["path"]: (entry["sha256"], entry["bytes"])
        for entry in manifest.get("files", ())
        if entry["path"].startswith(POOL_PREFIX)
    }


def write_release(
    store: ObjectStore,
    industry: str,
    version: str,
    items: pd.DataFrame,
    uploads: pd.DataFrame,
    texts: dict[str, str],
    documents: Callable[..., dict[str, bytes]],
    lineage: dict,
    key: SigningKey,
    created_at: datetime,
    code_version: str,
    dask_client,
    previous: dict | None = None,
    before_commit: Callable[[], None] = lambda: None,
) -> ReleaseFiles | None:
    """Write a whole release; None (and nothing left under the version) when every item was withheld.

    `uploads` (item_key, part, upload_key, sha256, bytes) are the media files, pooled byte for byte;
    `texts` are the cleaned texts (PII-masked where the industry requires it), pooled instead of the
    uploaded text files, which may hold what masking removed. A file the `previous` version's manifest
    (the one LATEST names) already names in the pool is named again and not read; the others are read,
    hashed and pooled on the Dask workers of `dask_client`. `documents(items, hashes, schema, withheld)`
    returns the Croissant card and quality report, given the sha256 of every data file (media, texts,
    Parquet) by path, the Parquet's Arrow schema and the items withheld (item_key -> reason).
    `before_commit` runs before the manifest and signature are written (the publish lease's last
    check).
    """
    release = f"{dataset_prefix(industry)}{version}"
    if store.head(f"{release}/{SIGNATURE_NAME}") is not None:
        raise ValueError(f"{release} is already published; a release is never written over")
    store.discard_unpublished(release + "/")  # what an interrupted attempt left, if any
    files = ReleaseFiles(release + "/")
    items = items.copy()
    named_before = pooled_files(previous)
    paths: dict[tuple[str, str], str] = {}
    expected: dict[str, tuple[str, int]] = {}  # what intake verified of each pool path
    copies: list[tuple[str, str, str]] = []
    copied: list[tuple[str, str]] = []  # (item_key, part) of each copy
    # from the columns' lists: iterating rows of Arrow-backed columns was most of the cost
    columns = (uploads[c].tolist() for c in ("item_key", "part", "upload_key", "sha256", "bytes"))
    for item_key, part, upload_key, sha256, size in zip(*columns, strict=True):
        path = pool_path(sha256, extension_of(upload_key))
        paths[(item_key, part)] = path
        expected[path] = (sha256, size)
        if named_before.get(path) != (sha256, size):
            copies.append((upload_key, path, sha256))
            copied.append((item_key, part))
    text_files = {}
    for item_key, text in texts.items():
        digest = _digest(text.encode())
        path = pool_path(digest[0], ".txt")
        paths[(item_key, "text")] = path
        expected[path] = digest
        if named_before.get(path) != expected[path]:
            text_files[path] = text
    finish_pooling = files.start_pooling(store, copies, text_files, dask_client)
    item_keys = items.item_key.tolist()
    for part, column in PART_COLUMNS.items():
        items[column] = [paths.get((item_key, part)) for item_key in item_keys]
    items["files_present"] = items[list(PART_COLUMNS.values())].notna().any(axis=1)
    media = {path for (_, part), path in paths.items() if part != "text"}

    def manifest(listing: dict[str, tuple[str, int]]) -> bytes:
        return build_manifest(
            release=release,
            industry=industry,
            version=version,
            files=listing,
            lineage={**lineage, "withheld_items": _withheld_lineage(files.withheld)},
            signing_key_fingerprint=key.fingerprint,
            created_at=created_at.isoformat(),
            code_version=code_version,
            # a pool path is named only for bytes that hash to what intake verified
            intake_hashes={path: listing[path][0] for path in listing.keys() & media},
        )

    # drafted while the workers copy, from the hashes and sizes intake recorded (the documents and
    # the manifest list every file's); drafted again if an item had to be withheld
    draft = _drafted(store, files, items, expected, documents, manifest)
    read = dict(zip(copied, finish_pooling(), strict=True))
    unverified = {
        (item_key, part): entry
        for (item_key, part), entry in read.items()
        if entry != expected[paths[(item_key, part)]]
    }
    if unverified:
        files.withheld = _withheld_items(unverified, paths, expected)
        items = items[~items.item_key.isin(files.withheld)]
        if items.empty:
            store.discard_unpublished(release + "/")
            return None
        kept = {path for (item_key, _), path in paths.items() if item_key not in files.withheld}
        expected = {path: entry for path, entry in expected.items() if path in kept}
        draft = _drafted(store, files, items, expected, documents, manifest)
    contents, manifest_bytes = draft
    for path, data in contents.items():
        files.put(store, path, data)
    files.written.update(expected)
    publish_public_key(store, key, created_at)
    before_commit()
    store.put(f"{release}/{MANIFEST_NAME}", manifest_bytes)
    store.put(f"{release}/{SIGNATURE_NAME}", sign(manifest_bytes, key))
    ledger.record_release(store, industry, version, manifest_bytes, lineage)  # before LATEST names it
    store.put(dataset_prefix(industry) + "LATEST", version.encode())
    return files


def _withheld_items(
    unverified: dict[tuple[str, str], tuple[str | None, int]],
    paths: dict[tuple[str, str], str],
    expected: dict[str, tuple[str, int]],
) -> dict[str, str]:
    """item_key -> why it stays out: its first upload that was not the bytes intake verified."""
    withheld: dict[str, str] = {}
    for (item_key, part), (sha256, _) in sorted(unverified.items()):
        if item_key in withheld:
            continue
        if sha256 is None:
            withheld[item_key] = f"upload_missing: the {part} upload no longer exists"
        else:
            withheld[item_key] = (
                f"sha256_mismatch: the {part} upload is {sha256[:12]}…, "
                f"intake verified {expected[paths[(item_key, part)]][0][:12]}…"
            )
    return withheld


def _withheld_lineage(withheld: dict[str, str]) -> list[dict[str, str]]:
    return [{"item_key": item_key, "reason": reason} for item_key, reason in sorted(withheld.items())]
