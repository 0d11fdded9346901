"""Taking in one delivery: read its manifest, verify its files on Dask, sort items into accepted and
quarantined, and describe the outcome as catalog rows."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from annobase.keys import DeliveryRef
from annobase.object_store import ObjectStore
from annobase.settings import Settings
from assets.intake.manifest import DeliveryRejected, ParsedManifest, parse_manifest, valid_item_reference
from assets.intake.quarantine import quarantine_delivery, quarantine_item
from assets.intake.verify import ItemVerdict, verify_items


class ManifestVanished(Exception):
    """The manifest a run was requested for is gone: retried, since a client may be re-uploading it."""


@dataclass
class IntakeOutcome:
    delivery: dict
    items: list[dict] = field(default_factory=list)
    rejections: list[dict] = field(default_factory=list)

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(row["code"] for row in self.rejections).items()))


def take_in_delivery(
    store: ObjectStore, ref: DeliveryRef, settings: Settings, run_id: str, dask_client
) -> IntakeOutcome:
    head = store.head(ref.manifest_key)
    if head is None:
        raise ManifestVanished(f"{ref.manifest_key} does not exist")
    raw = store.get(ref.manifest_key)
    now = datetime.now(UTC)
    common = {"manifest_etag": head.etag, "dagster_run_id": run_id}
    delivery = {
        "client_id": ref.client_id,
        "delivery_id": ref.delivery_id,
        "manifest_key": ref.manifest_key,
        "ingested_at": now,
        **common,
    }
    try:
        parsed = parse_manifest(raw, ref, settings)
    except DeliveryRejected as rejected:
        record = quarantine_delivery(
            store, ref, rejected.reasons, manifest_etag=head.etag, run_id=run_id, rejected_at=now
        )
        delivery.update(
            status="rejected",
            reason=rejected.reasons[0].code,
            items_listed=rejected.items_listed,
            items_accepted=0,
            items_rejected=rejected.items_listed,
            bytes_accepted=0,
            manifest_sha256=hashlib.sha256(raw).hexdigest(),
        )
        rejections = [
            _rejection_row(ref, reason, record, now, common, ref.manifest_key) for reason in rejected.reasons
        ]
        return IntakeOutcome(delivery, rejections=rejections)

    verdicts = _verify_on_cluster(parsed, store, settings, dask_client)
    outcome = IntakeOutcome(delivery)
    for rejected in parsed.rejected:
        record = quarantine_item(
            store,
            ref,
            valid_item_reference(rejected),
            rejected.item_id,
            rejected.reasons,
            rejected.files,
            manifest_etag=head.etag,
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
            manifest_etag=head.etag,
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


def _verify_on_cluster(parsed: ParsedManifest, store: ObjectStore, settings: Settings, dask_client):
    """Chunks of items go to the workers; results come back in manifest order."""
    size = settings.items_per_task
    chunks = [parsed.items[start : start + size] for start in range(0, len(parsed.items), size)]
    if not chunks:
        return []
    futures = dask_client.map(
        verify_items, chunks, store=store, max_file_bytes=settings.max_file_bytes, pure=False
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
