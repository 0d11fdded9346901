"""Asset `qa_results`: a finished batch's quality against the base's thresholds, computed on Dask."""

import json
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from assets.annotation.batch_annotations import batch_annotations
from assets.partitions import batches_partitions
from assets.quality.batch_quality import measure_batch
from assets.quality.gold_sampling import review_sample_size
from resources import CatalogResource, DaskResource

SCORES = ("text_accuracy", "speech_accuracy", "image_box_f1", "cross_modal_consistency", "krippendorff_alpha")


@dg.asset(
    partitions_def=batches_partitions,
    deps=[batch_annotations],
    group_name="quality",
    kinds={"dask", "duckdb"},
    owners=["team:quality"],
    code_version="1",
)
def qa_results(
    context: dg.AssetExecutionContext, catalog: CatalogResource, dask: DaskResource
) -> dg.MaterializeResult:
    """One row per batch: accuracy on gold, agreement, consensus and annotator scorecards."""
    batch_id = context.partition_key
    writer = catalog.open()
    batch = writer.query("batch_info", batch_id=batch_id).iloc[0]
    export = writer.read_partition("exports", f"{batch.client_id}/{batch_id}").iloc[0]
    annotations = writer.read_partition("annotations", batch_id)
    with dask.client() as dask_client:
        quality = dask_client.submit(
            measure_batch, annotations, batch.modality, list(batch.label_set), pure=False
        ).result()

    emails = annotator_emails(annotations)
    tasks = writer.query("batch_task_items", batch_id=batch_id)
    answered = set(annotations.item_key[~annotations.ground_truth.astype(bool)])
    reviewed = set(annotations.item_key[annotations.ground_truth.astype(bool)])
    required = batch.get("review_tasks")
    if required is None or pd.isna(required):
        # a batch cut before the review sample existed needs the sample its size would have had
        required = review_sample_size(int((~tasks.honeypot).sum()))
    required = int(required)
    row = {
        "batch_id": batch_id,
        "client_id": batch.client_id,
        "delivery_id": batch.delivery_id,
        "industry": batch.industry,
        "modality": batch.modality,
        "license": batch.license,
        **quality.scores,
        "unannotated_tasks": int((~tasks.item_key.isin(answered)).sum()),
        "gold_required": required,
        "unreviewed_tasks": int((tasks.review & ~tasks.item_key.isin(reviewed)).sum()),
        "export_etag": export.export_etag,
        "tasks_version": export.tasks_version if isinstance(export.tasks_version, str) else None,
        "dagster_run_id": context.run.run_id,
        "computed_at": datetime.now(UTC),
    }
    writer.write_partition(
        "consensus", batch_id, _consensus_rows(batch_id, quality.consensus, annotations, export.export_etag)
    )
    writer.write_partition(
        "scorecards",
        batch_id,
        [
            {"batch_id": batch_id, **_plain(card), "annotator_email": emails.get(card["annotator"])}
            for card in quality.scorecards.to_dict("records")
        ],
    )
    writer.write_partition("qa_results", batch_id, [row])
    scores = {name: row[name] for name in SCORES if row[name] is not None}
    return dg.MaterializeResult(
        metadata={
            **{name: dg.MetadataValue.float(value) for name, value in scores.items()},
            "tasks": row["tasks"],
            "unannotated_tasks": row["unannotated_tasks"],
            "annotations": row["annotations"],
            "gold_annotations": row["gold_annotations"],
            "gold_tasks": row["gold_tasks"],
            "gold_required": required,
            "unreviewed_tasks": row["unreviewed_tasks"],
            "annotators": row["annotators"],
            "scorecards": dg.MetadataValue.md(_scorecard_table(quality.scorecards, emails)),
            "dagster/row_count": 1,
        }
    )


def annotator_emails(annotations: pd.DataFrame) -> dict[int, str]:
    """Label Studio user id -> e-mail, where the export named the user (`completed_by` objects)."""
    if "annotator_email" not in annotations:
        return {}
    named = annotations.dropna(subset=["annotator_email"])
    return dict(zip(named.annotator.astype(int), named.annotator_email, strict=True))


def _plain(record: dict) -> dict:
    return {
        key: (None if isinstance(value, float) and pd.isna(value) else value) for key, value in record.items()
    }


def _consensus_rows(
    batch_id: str, agreed: pd.DataFrame, annotations: pd.DataFrame, export_etag: str
) -> list[dict]:
    if agreed.empty:
        return []
    items = annotations.drop_duplicates("task_id").set_index("task_id")[["item_key", "honeypot"]]
    rows = []
    for record in agreed.to_dict("records"):
        item = items.loc[record["task_id"]]
        boxes = record.get("boxes")
        rows.append(
            _plain(
                {
                    "batch_id": batch_id,
                    "task_id": record["task_id"],
                    "item_key": item.item_key,
                    "part": record.get("part"),
                    "label": record.get("label"),
                    "transcript": record.get("transcript"),
                    "boxes_json": None if boxes is None else json.dumps(boxes),
                    "annotations": record["annotations"],
                    "agreement": record.get("agreement"),
                    "honeypot": bool(item.honeypot),
                    "export_etag": export_etag,
                }
            )
        )
    return rows


def _scorecard_table(cards: pd.DataFrame, emails: dict[int, str]) -> str:
    if cards.empty:
        return "_no annotations_"
    lines = [
        "| annotator | tasks | gold tasks | gold accuracy | agreement | median s |",
        "|---|---|---|---|---|---|",
    ]
    for card in cards.itertuples(index=False):
        lines.append(
            f"| {emails.get(card.annotator, card.annotator)} | {card.tasks_done} | {card.gold_tasks} | "
            f"{card.gold_accuracy:.3f} | "
            f"{card.agreement_with_consensus:.3f} | {card.median_lead_time:.1f} |"
        )
    return "\n".join(lines)
