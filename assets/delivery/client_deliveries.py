"""Asset `client_deliveries`: a delivery's labelled data, returned to its owner once every batch passed."""

import io
import json
import warnings
from datetime import UTC, datetime
from pathlib import PurePosixPath

import dagster as dg
import pandas as pd

from annobase import ledger
from annobase.keys import DeliveryRef
from annotation_types import annotation_type, single_answer_columns
from assets.evidence import stored
from assets.evidence import table as table_metadata
from assets.partitions import deliveries_partitions
from assets.quality.qa_results import qa_results
from assets.quality.verdicts import judged_consensus, on_current_exports, verdicts_digest
from resources import CatalogResource, ObjectStoreResource

FILE_COLUMNS = {"text": "text_key", "image": "image_key", "audio": "audio_key"}


def delivered_file_name(item_id: str, part: str, upload_key: str) -> str:
    """`items/{item_id}.{part}{ext}`, as releases name files: named by the item, never by the upload's
    basename, which two items may share in different folders of one delivery."""
    suffix = PurePosixPath(upload_key).suffix.lower()
    return f"items/{item_id}.{part}{suffix}"


def labels_table(consensus: pd.DataFrame, items: pd.DataFrame, modality: str) -> pd.DataFrame:
    """One row per kept item with its consensus answer; per-part types (multimodal) get a label per part."""
    if annotation_type(modality).per_part:
        wide = consensus.pivot_table(index="item_key", columns="part", values="label", aggfunc="first")
        wide.columns = [f"label_{part}" for part in wide.columns]
        agreed = wide.nunique(axis=1) == 1
        wide["label"] = wide.bfill(axis=1).iloc[:, 0].where(agreed)
        answers = wide.join(consensus.groupby("item_key").agreement.mean())
    else:
        answers = consensus.drop_duplicates("item_key").set_index("item_key")[
            [*single_answer_columns(), "agreement"]
        ]
    table = items.set_index("item_key").join(answers, how="left").reset_index()
    return table.drop(
        columns=[
            c
            for c in (
                "status",
                "drop_reason",
                "drop_detail",
                "duplicate_of",
                "similarity",
                "dagster_run_id",
                "cleaned_at",
                "text",
            )
            if c in table
        ]
    )


DELIVERY_RETURNED_CHECK = "delivery_returned"

# Per-delivery check results are a preview feature in Dagster 1.13, used knowingly: a delivery not
# returned is a warning on its own partition, with the batches it waits for.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    delivery_returned = dg.AssetCheckSpec(
        DELIVERY_RETURNED_CHECK,
        asset="client_deliveries",
        description="The delivery went back to its client; a warning names the batches it waits for "
        "(reported by `delivery_completion` when a verdict holds it back).",
        partitions_def=deliveries_partitions,
    )


def reported_without_run(instance: dg.DagsterInstance, partition_key: str) -> bool:
    """Whether a held-back warning on this partition was already reported outside a run: Dagster keeps
    one run-less result per check and partition (a second one is refused), so it is reported once and
    stays until the delivery's own run records that it was returned."""
    from dagster._core.event_api import PartitionKeyFilter

    history = instance.event_log_storage.get_asset_check_execution_history(
        delivery_returned.key, limit=50, partition_filter=PartitionKeyFilter(key=partition_key)
    )
    return any(not record.run_id for record in history)


def not_returned(partition_key: str, why: str) -> dg.AssetCheckEvaluation:
    """`delivery_returned` failed (a warning) for a delivery held back, with why in one line: reported
    by whoever decided not to return it, since no run of this asset happens."""
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("client_deliveries"),
        check_name=DELIVERY_RETURNED_CHECK,
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"not returned: {why}",
        partition=partition_key,
    )


@dg.asset(
    partitions_def=deliveries_partitions,
    deps=[dg.AssetDep(qa_results, partition_mapping=dg.AllPartitionMapping())],
    group_name="delivery",
    kinds={"s3", "duckdb"},
    owners=["team:delivery"],
    code_version="1",
    check_specs=[delivery_returned],
)
def client_deliveries(
    context: dg.AssetExecutionContext, object_store: ObjectStoreResource, catalog: CatalogResource
) -> dg.MaterializeResult:
    """One row per kept item in `deliveries/{client}/{delivery}/labels.parquet`; its files copied beside."""
    ref = DeliveryRef.from_partition_key(context.partition_key)
    store, writer = object_store.open(), catalog.open()
    gates = on_current_exports(
        store, writer.query("delivery_gate_status", client_id=ref.client_id, delivery_id=ref.delivery_id)
    )
    blocked = gates[gates.passed.ne(True)]
    if gates.empty or not blocked.empty:
        raise dg.Failure(
            description=f"{ref.partition_key} is not deliverable: batches without a passed gate on their "
            "current export",
            metadata={
                "batches_not_passed": table_metadata(
                    [
                        {"batch": batch, "waiting_for": why}
                        for batch, why in zip(blocked.batch_id, blocked.waiting_for, strict=True)
                    ],
                    {"batch": "string", "waiting_for": "string"},
                )
            },
            allow_retries=False,
        )
    items = writer.read_partition("clean_items", ref.partition_key)
    items = items[items.status == "kept"]
    consensus, replaced = judged_consensus(
        writer.query("delivery_consensus", client_id=ref.client_id, delivery_id=ref.delivery_id), gates
    )
    if replaced:
        # a QA run of a newer export replaced the consensus after the verdict was read: its own verdict
        # decides, and the run it leads to delivers
        raise dg.Failure(
            description=f"{ref.partition_key}: batches {replaced} were measured again since their verdict",
            allow_retries=False,
        )
    modality = items.modality.iloc[0]
    table = labels_table(consensus, items, modality)

    prefix = f"deliveries/{ref.client_id}/{ref.delivery_id}/"
    for part, column in FILE_COLUMNS.items():
        if column not in table:
            continue
        delivered = []
        for item_id, key in zip(table.item_id, table[column], strict=True):
            if isinstance(key, str):
                target = prefix + delivered_file_name(item_id, part, key)
                store.copy(key, target)
                delivered.append(target)
            else:
                delivered.append(None)
        table[column.replace("_key", "_file")] = delivered
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    etag = store.put(prefix + "labels.parquet", buffer.getvalue())
    # recorded before delivery.json, which says the delivery is complete (write-ahead)
    ledger.record_client_delivery(
        store, ref, table, buffer.getvalue(), etag, gates.batch_id, context.run.run_id
    )
    store.put(
        prefix + "delivery.json",
        json.dumps(
            {
                "client_id": ref.client_id,
                "delivery_id": ref.delivery_id,
                "items": len(table),
                "batches": gates.batch_id.tolist(),
                "verdicts": verdicts_digest(gates),
                "dagster_run_id": context.run.run_id,
                "delivered_at": datetime.now(UTC).isoformat(),
            },
            indent=1,
        ).encode(),
    )
    return dg.MaterializeResult(
        metadata={
            "items": len(table),
            "batches": len(gates),
            "labelled": int(table.get("agreement", pd.Series(dtype=float)).notna().sum()),
            "location": stored(store, prefix),
            "dagster/row_count": len(table),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=DELIVERY_RETURNED_CHECK,
                passed=True,
                description=f"returned: {len(table)} items of {len(gates)} passed batches",
            )
        ],
    )
