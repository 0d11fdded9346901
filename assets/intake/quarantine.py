"""Quarantine: what intake refused, kept under `quarantine/{client_id}/{delivery_id}/` with its reasons.

Uploads are never moved, changed or deleted; quarantine holds copies and a machine-readable
`rejection.json` per rejected delivery or item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath

from annobase.keys import DeliveryRef
from annobase.object_store import ObjectStore, SymbolicLink
from assets.intake.manifest import FileSpec
from assets.intake.reasons import Reason

INVALID_KEYS_PREFIX = "quarantine/_invalid_keys/"


def _record(scope: str, reasons: Sequence[Reason], **context) -> bytes:
    document = {"scope": scope, **context, "reasons": [reason.as_dict() for reason in reasons]}
    return json.dumps(document, ensure_ascii=False, indent=2, default=_json_default).encode()


def _json_default(value):
    return value.isoformat() if isinstance(value, datetime) else str(value)


def quarantine_delivery(
    store: ObjectStore,
    ref: DeliveryRef,
    reasons: Sequence[Reason],
    manifest: bytes | None,
    *,
    manifest_etag: str,
    run_id: str,
    rejected_at: datetime,
) -> str:
    """Record a refused delivery: the manifest version it was judged on (`manifest`, the bytes read,
    not whatever the key holds now; None when it was refused unread) and `rejection.json`; returns
    the record's key."""
    if manifest is not None:
        store.put(ref.quarantine_prefix + "manifest.json", manifest)
    key = ref.quarantine_prefix + "rejection.json"
    store.put(
        key,
        _record(
            "delivery",
            reasons,
            client_id=ref.client_id,
            delivery_id=ref.delivery_id,
            manifest_key=ref.manifest_key,
            manifest_etag=manifest_etag,
            dagster_run_id=run_id,
            rejected_at=rejected_at,
        ),
    )
    return key


def quarantine_item(
    store: ObjectStore,
    ref: DeliveryRef,
    item_reference: str,
    item_id: str | None,
    reasons: Sequence[Reason],
    files: Sequence[FileSpec],
    *,
    manifest_etag: str,
    run_id: str,
    rejected_at: datetime,
) -> str:
    """Record a refused item: copies of those of its files that exist, and `rejection.json`."""
    prefix = f"{ref.quarantine_prefix}items/{item_reference}/"
    copies = {}
    for spec in files:
        if _is_object(store, spec.upload_key):
            target = prefix + f"{spec.part}{PurePosixPath(spec.path).suffix.lower()}"
            store.copy(spec.upload_key, target)
            copies[spec.part] = target
    key = prefix + "rejection.json"
    store.put(
        key,
        _record(
            "item",
            reasons,
            client_id=ref.client_id,
            delivery_id=ref.delivery_id,
            item_id=item_id,
            files={spec.part: spec.upload_key for spec in files},
            copies=copies,
            manifest_etag=manifest_etag,
            dagster_run_id=run_id,
            rejected_at=rejected_at,
        ),
    )
    return key


def _is_object(store: ObjectStore, key: str) -> bool:
    """A symbolic link (local store) is no object: never copied, since it leads elsewhere."""
    try:
        return store.head(key) is not None
    except SymbolicLink:
        return False


def quarantine_invalid_key(store: ObjectStore, key: str, reason: Reason, rejected_at: datetime) -> str:
    """A manifest key with ids outside the contract cannot be named by them: file it by its hash."""
    record_key = INVALID_KEYS_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:32] + ".json"
    store.put(record_key, _record("upload_key", [reason], upload_key=key, rejected_at=rejected_at))
    return record_key
