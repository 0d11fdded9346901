"""Taking in one delivery: read its manifest, verify its files on Dask, sort items into accepted and
quarantined, and describe the outcome as catalog rows."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from annobase.keys import DeliveryRef
from annobase.object_store import ObjectStore, PreconditionFailed
from annobase.settings import Settings
from assets.intake import reasons
from assets.intake.manifest import DeliveryRejected, ParsedManifest, parse_manifest, valid_item_reference
from assets.intake.quarantine import quarantine_delivery, quarantine_item
from assets.intake.reasons import Reason, shorten
from assets.intake.verify import ItemVerdict, verify_items


class ManifestVanished(Exception):
    """The manifest a run was requested for is gone: retried, since a client may be re-uploading it."""


class ManifestSuperseded(Exception):
    """The client replaced the manifest after this run was requested for it: the run leaves the
    delivery alone, and the new version's own run takes it in."""


@dataclass
class IntakeOutcome:
    delivery: dict
    items: list[dict] = field(default_factory=list)
    rejections: list[dict] = field(default_factory=list)

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(row["code"] for row in self.rejections).items()))


def current_etag(store: ObjectStore, ref: DeliveryRef) -> str:
    """The manifest's ETag now: the version a run launched without one (a UI backfill) takes in."""
    head = store.head(ref.manifest_key)
    if head is None:
        raise ManifestVanished(f"{ref.manifest_key} does not exist")
    return head.etag


def read_manifest_version(
    store: ObjectStore, ref: DeliveryRef, etag: str, settings: Settings
) -> bytes | None:
    """The bytes of exactly manifest version `etag` (S3 `If-Match`), or None when that version is
    larger than the configured limit (refused unread)."""
    head = store.head(ref.manifest_key)
    if head is None:
        raise ManifestVanished(f"{ref.manifest_key} does not exist")
    if etag != etag:
        raise ManifestSuperseded(f"{ref.manifest_key} is now version {etag}, not {etag}")
    if head.size > settings.limits.max_manifest_bytes:
        return None
    try:
        return store.get_version(ref.manifest_key, etag)
    except PreconditionFailed as changed:
        raise ManifestSuperseded(str(changed)) from changed
    except KeyError as gone:
        raise ManifestVanished(f"{ref.manifest_key} does not exist") from gone


def take_in_delivery(
    store: ObjectStore, ref: DeliveryRef, settings: Settings, run_id: str, dask_client, etag: str
) -> IntakeOutcome:
    """Take in manifest version `etag` of the delivery, every row recording that version."""
    raw = read_manifest_version(store, ref, etag, settings)
    now = datetime.now(UTC)
    common = {"manifest_etag": etag, "dagster_run_id": run_id}
    delivery = {
        "client_id": ref.client_id,
        "delivery_id": ref.delivery_id,
        "manifest_key": ref.manifest_key,
        "ingested_at": now,
        "in_progress": True,  # until cleaning and batching of this run finished it
        **common,
    }
    if raw is None:
        limit = settings.limits.max_manifest_bytes
        detail = f"the manifest exceeds the limit of {limit} bytes; refused unread"
        return _refused(store, ref, [Reason(reasons.MANIFEST_TOO_LARGE, detail)], None, delivery, common, now)
    try:
        parsed = parse_manifest(raw, ref, settings)
    except DeliveryRejected as rejected:
        return _refused(store, ref, rejected.reasons, raw, delivery, common, now, rejected.items_listed)

    verdicts = _verify_on_cluster(parsed, store, settings, dask_client)
    if (now_current := store.head(ref.manifest_key)) is None or now_current.etag != etag:
        # replaced while its files were verified: nothing of this version is recorded or quarantined
        raise ManifestSuperseded(f"{ref.manifest_key} changed while version {etag} was verified")
    outcome = IntakeOutcome(delivery)
    for rejected in parsed.rejected:
        record = quarantine_item(
            store,
            ref,
            valid_item_reference(rejected),
            rejected.item_id,
            rejected.reasons,
            rejected.files,
            manifest_etag=etag,
            run_id=run_id,
            rejected_at=now,
        )
        outcome.rejections += _rejection_rows(ref, rejected.reasons, rejected.files, record, now, common)
    for verdict in verdicts:
        if verdict.accepted:
            outcome.items += _item_rows(parsed, verdict, now, common)
            continue
        record = quarantine_item(
            store,
            ref,
            verdict.item.item_id,
            verdict.item.item_id,
            verdict.reasons,
            verdict.item.files,
            manifest_etag=etag,
            run_id=run_id,
            rejected_at=now,
        )
        outcome.rejections += _rejection_rows(ref, verdict.reasons, verdict.item.files, record, now, common)
    accepted = sum(verdict.accepted for verdict in verdicts)
    rejected_count = parsed.items_listed - accepted
    delivery.update(
        industry=parsed.industry,
        modality=parsed.modality,
        task=parsed.task,
        license=parsed.license,
        label_set=parsed.label_set,
        status="accepted" if rejected_count == 0 else ("rejected" if accepted == 0 else "partially_accepted"),
        reason=None if accepted else outcome.rejections[0]["code"],
        items_listed=parsed.items_listed,
        items_accepted=accepted,
        items_rejected=rejected_count,
        bytes_accepted=sum(row["bytes"] for row in outcome.items),
        manifest_sha256=parsed.sha256,
    )
    return outcome


def _refused(
    store: ObjectStore,
    ref: DeliveryRef,
    found: list[Reason],
    raw: bytes | None,
    delivery: dict,
    common: dict,
    now: datetime,
    items_listed: int = 0,
) -> IntakeOutcome:
    """The whole delivery quarantined with `found`: the manifest version read (`raw`) kept beside them."""
    record = quarantine_delivery(
        store,
        ref,
        found,
        raw,
        manifest_etag=common["manifest_etag"],
        run_id=common["dagster_run_id"],
        rejected_at=now,
    )
    delivery.update(
        status="rejected",
        reason=found[0].code,
        items_listed=items_listed,
        items_accepted=0,
        items_rejected=items_listed,
        bytes_accepted=0,
        manifest_sha256=hashlib.sha256(raw).hexdigest() if raw is not None else "",
    )
    rejections = [_rejection_row(ref, reason, record, now, common, ref.manifest_key) for reason in found]
    return IntakeOutcome(delivery, rejections=rejections)


def internal_error_outcome(
    store: ObjectStore, ref: DeliveryRef, error: BaseException, step: str, etag: str, run_id: str
) -> IntakeOutcome:
    """The delivery quarantined with `internal_error`: what went wrong in `step`, named by the
    exception's class and its message cut short, so one poison delivery never strands a run's others."""
    now = datetime.now(UTC)
    common = {"manifest_etag": etag, "dagster_run_id": run_id}
    delivery = {
        "client_id": ref.client_id,
        "delivery_id": ref.delivery_id,
        "manifest_key": ref.manifest_key,
        "ingested_at": now,
        "in_progress": True,
        **common,
    }
    detail = f"{step} failed: {type(error).__name__}: {shorten(str(error))}"
    try:  # kept beside the record when that version can still be read
        raw = store.get_version(ref.manifest_key, etag)
    except Exception:
        raw = None
    return _refused(store, ref, [Reason(reasons.INTERNAL_ERROR, detail)], raw, delivery, common, now)


def _verify_on_cluster(parsed: ParsedManifest, store: ObjectStore, settings: Settings, dask_client):
    """Chunks of items go to the workers; results come back in manifest order."""
    size = settings.items_per_task
    chunks = [parsed.items[start : start + size] for start in range(0, len(parsed.items), size)]
    if not chunks:
        return []
    futures = dask_client.map(
        verify_items,
        chunks,
        store=store,
        max_file_bytes=settings.max_file_bytes,
        max_text_bytes=settings.limits.max_text_bytes,
        pure=False,
    )
    return [verdict for chunk in dask_client.gather(futures) for verdict in chunk]


def _item_rows(parsed: ParsedManifest, verdict: ItemVerdict, now: datetime, common: dict) -> list[dict]:
    ref = parsed.ref
    return [
        {
            "item_key": ref.item_key(verdict.item.item_id),
            "client_id": ref.client_id,
            "delivery_id": ref.delivery_id,
            "item_id": verdict.item.item_id,
            "part": verified.spec.part,
            "industry": parsed.industry,
            "modality": parsed.modality,
            "task": parsed.task,
            "license": parsed.license,
            "upload_key": verified.spec.upload_key,
            "sha256": verified.spec.sha256,
            "bytes": verified.spec.bytes,
            **verified.facts,
            "ingested_at": now,
            **common,
        }
        for verified in verdict.files
    ]


def _rejection_rows(
    ref: DeliveryRef, reasons, files, record_key: str, now: datetime, common: dict
) -> list[dict]:
    upload_keys = {spec.part: spec.upload_key for spec in files}
    return [
        _rejection_row(ref, reason, record_key, now, common, upload_keys.get(reason.part))
        for reason in reasons
    ]


def _rejection_row(
    ref: DeliveryRef, reason, record_key: str, now: datetime, common: dict, upload_key
) -> dict:
    return {
        "client_id": ref.client_id,
        "delivery_id": ref.delivery_id,
        "item_id": reason.item_id,
        "part": reason.part,
        "code": reason.code,
        "detail": reason.detail,
        "upload_key": upload_key,
        "quarantine_key": record_key,
        "rejected_at": now,
        **common,
    }
