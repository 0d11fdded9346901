"""Asset `batch_annotations`: a finished batch's Label Studio export, read into one row per annotation."""

import hashlib
import json
import warnings
from dataclasses import asdict, replace
from datetime import UTC, datetime

import dagster as dg

from annobase import ledger
from annobase.keys import export_key
from annobase.object_store import ObjectStore, PreconditionFailed
from annobase.settings import load_settings
from assets.annotation.label_studio_export import ExportRejected, parse_export
from assets.cleaning.pii import mask_text
from assets.evidence import stored, table
from assets.partitions import batches_partitions
from resources import CatalogResource, ObjectStoreResource

EXPORT_READ_CHECK = "export_read"
READ_ATTEMPTS = 3

# Per-batch check results are a preview feature in Dagster 1.13, used knowingly (see qa_gate)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    export_read = dg.AssetCheckSpec(
        EXPORT_READ_CHECK,
        asset="batch_annotations",
        description="The export was read; no task of it had to be set aside (a warning names the codes).",
        partitions_def=batches_partitions,
    )


@dg.asset(
    partitions_def=batches_partitions,
    # the batches reach it through the tool: annotation_batches -> annotation_tool_exports -> here
    deps=["annotation_tool_exports"],
    group_name="annotation",
    kinds={"s3", "duckdb"},
    owners=["team:platform"],
    code_version="1",
    check_specs=[export_read],
)
def batch_annotations(
    context: dg.AssetExecutionContext, object_store: ObjectStoreResource, catalog: CatalogResource
) -> dg.MaterializeResult:
    """One row per non-cancelled annotation of the batch; unreadable tasks quarantined with a reason."""
    batch_id = context.partition_key
    store, writer = object_store.open(), catalog.open()
    batch = writer.query("batch_info", batch_id=batch_id).iloc[0]
    etag, raw = read_export(store, batch_id)
    now = datetime.now(UTC)
    quarantine_prefix = f"quarantine/{batch.client_id}/{batch.delivery_id}/batches/{batch_id}/"
    version = batch.get("tasks_version")
    tasks = writer.query("batch_task_items", batch_id=batch_id)
    kept = writer.query("batch_honeypot_references", client_id=batch.client_id, batch_id=batch_id)
    references = dict(zip(kept.item_key, map(json.loads, kept.result_json), strict=True))
    try:
        parsed = parse_export(
            raw,
            batch_id,
            batch.modality,
            list(batch.label_set),
            version if isinstance(version, str) else None,
            batch_items=tasks.item_key.tolist(),
            references=references,
        )
        problems, rows = parsed.problems, parsed.annotations
    except ExportRejected as rejected:
        store.copy(export_key(batch_id), quarantine_prefix + "export.json")
        problems, rows, parsed = rejected.reasons, [], None
    record_key = quarantine_prefix + "rejection.json"
    if problems:
        store.put(
            record_key,
            json.dumps(
                {
                    "scope": "export",
                    "batch_id": batch_id,
                    "export_etag": etag,
                    "dagster_run_id": context.run.run_id,
                    "problems": [asdict(problem) for problem in problems],
                },
                ensure_ascii=False,
                indent=2,
            ).encode(),
        )

    honeypots = set(tasks.item_key[tasks.honeypot])
    common = {"export_etag": etag, "dagster_run_id": context.run.run_id}
    cleaning = load_settings().cleaning
    # what annotators typed of a PII industry's audio says what was spoken, names and numbers too:
    # masked as uploaded text is, before it is stored, scored, delivered or released
    mask = batch.industry in cleaning.pii_industries
    if mask:
        rows = [_masked_answer(row, cleaning.name_segmenter) for row in rows]
    annotation_rows = [_annotation_row(row, honeypots, common, now) for row in rows]
    ledger.record_export(store, batch, batch_id, raw, etag, context.run.run_id, len(rows), len(problems))
    writer.write_partition("annotations", batch_id, annotation_rows)
    writer.write_partition(
        "export_problems",
        batch_id,
        [
            {
                "batch_id": batch_id,
                "task_id": problem.task_id,
                "code": problem.code,
                "detail": problem.detail,
                "quarantine_key": record_key,
                "found_at": now,
                **common,
            }
            for problem in problems
        ],
    )
    writer.write_partition("gold", batch_id, _gold_rows(rows, batch, tasks, raw, now, mask))
    # written last: the export version the batch's rows above come from, what QA and its verdict name
    writer.write_partition(
        "exports",
        f"{batch.client_id}/{batch_id}",
        [
            {
                "batch_id": batch_id,
                "client_id": batch.client_id,
                "delivery_id": batch.delivery_id,
                "export_key": export_key(batch_id),
                "export_sha256": hashlib.sha256(raw).hexdigest(),
                "tasks_version": version if isinstance(version, str) else None,
                "annotations": len(annotation_rows),
                "problems": len(problems),
                "read_at": now,
                **common,
            }
        ],
    )
    annotators = {row.annotator for row in rows if not row.ground_truth}
    return dg.MaterializeResult(
        metadata={
            "annotations": len(annotation_rows),
            "gold": sum(row.ground_truth for row in rows),
            "annotators": len(annotators),
            "cancelled": parsed.cancelled if parsed else 0,
            "problems": table(
                [
                    {
                        "task": None if p.task_id is None else str(p.task_id),
                        "code": p.code,
                        "detail": p.detail,
                    }
                    for p in problems[:50]
                ],
                {"task": "string", "code": "string", "detail": "string"},
            ),
            "export_etag": etag,
            "dagster/row_count": len(annotation_rows),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=EXPORT_READ_CHECK,
                passed=not problems,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "problems": len(problems),
                    "rejected_whole": parsed is None,
                    "quarantined": stored(store, record_key) if problems else "nothing",
                },
                description=(
                    "export rejected whole: "
                    if parsed is None
                    else f"{len(problems)} tasks set aside: "
                    if problems
                    else f"read: {len(annotation_rows)} annotations"
                )
                + ", ".join(sorted({problem.code for problem in problems})),
            )
        ],
    )


def read_export(store: ObjectStore, batch_id: str) -> tuple[str, bytes]:
    """The export's current version: its ETag and exactly those bytes (read with If-Match, so an export
    replaced between the two requests is read again, never recorded under the other's ETag)."""
    for _ in range(READ_ATTEMPTS):
        head = store.head(export_key(batch_id))
        if head is None:
            raise dg.Failure(f"{export_key(batch_id)} does not exist", allow_retries=False)
        try:
            return head.etag, store.get_version(export_key(batch_id), head.etag)
        except (PreconditionFailed, KeyError):
            continue
    raise dg.Failure(f"{export_key(batch_id)} kept changing while it was read", allow_retries=True)


def _annotation_row(row, honeypots: set[str], common: dict, now: datetime) -> dict:
    item_key = f"{row.client_id}/{row.delivery_id}/{row.item_id}"
    return {
        "batch_id": row.batch_id,
        "task_id": row.task_id,
        "annotation_id": row.annotation_id,
        "item_key": item_key,
        "client_id": row.client_id,
        "delivery_id": row.delivery_id,
        "item_id": row.item_id,
        "annotator": row.annotator,
        "annotator_email": row.annotator_email,
        "ground_truth": row.ground_truth,
        "honeypot": item_key in honeypots,
        "lead_time": row.lead_time,
        "created_at": row.created_at,
        "label": row.label,
        "transcript": row.transcript,
        "boxes_json": None if row.boxes is None else json.dumps(row.boxes),
        "part_labels_json": None
        if row.part_labels is None
        else json.dumps(row.part_labels, ensure_ascii=False),
        "parsed_at": now,
        **common,
    }


def _masked_answer(row, segmenter: bool):
    """The annotation with its free text (a transcript) masked."""
    if not row.transcript:
        return row
    return replace(row, transcript=mask_text(row.transcript, segmenter))


def _masked_result(result: list, segmenter: bool) -> list:
    """A reviewed result as stored in `gold`, its typed text (`value.text`) masked."""
    masked = []
    for region in result:
        value = region.get("value") if isinstance(region, dict) else None
        if isinstance(value, dict) and isinstance(value.get("text"), list):
            lines = [mask_text(line, segmenter) if isinstance(line, str) else line for line in value["text"]]
            region = {**region, "value": {**value, "text": lines}}
        masked.append(region)
    return masked


def _gold_rows(rows, batch, tasks, raw: bytes, now: datetime, mask: bool) -> list[dict]:
    """The reviewed references of this batch, kept with the content a honeypot task shows."""
    results = (
        {
            annotation["id"]: annotation["result"]
            for task in json.loads(raw)
            for annotation in task.get("annotations", [])
        }
        if any(row.ground_truth for row in rows)
        else {}
    )
    content = tasks.drop_duplicates("item_key").set_index("item_key")
    segmenter = load_settings().cleaning.name_segmenter
    gold = []
    for row in rows:
        item_key = f"{row.client_id}/{row.delivery_id}/{row.item_id}"
        if not row.ground_truth or item_key not in content.index or content.loc[item_key, "honeypot"]:
            continue
        item = content.loc[item_key]
        gold.append(
            {
                "item_key": item_key,
                "client_id": row.client_id,
                "delivery_id": row.delivery_id,
                "item_id": row.item_id,
                "modality": batch.modality,
                "parts": list(batch.parts),
                "batch_id": row.batch_id,
                "result_json": json.dumps(
                    _masked_result(results[row.annotation_id], segmenter)
                    if mask
                    else results[row.annotation_id],
                    ensure_ascii=False,
                ),
                "text": _value(item.text),
                "image_key": _value(item.image_key),
                "audio_key": _value(item.audio_key),
                "reviewed_by": row.annotator,
                "reviewed_at": now,
            }
        )
    return gold


def _value(value):
    return None if value is None or value != value else value  # NaN from a missing column value
