"""Asset `annotation_batches`: a delivery's kept items as Label Studio batches, ready for annotators."""

import hashlib
import json
from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd

from annobase import ledger
from annobase.keys import DeliveryRef
from annobase.object_store import ObjectStore
from annobase.settings import Settings, load_settings
from annotation_types import annotation_type
from assets.annotation.batching import PlannedBatch, batch_number, plan_batches
from assets.annotation.label_studio_config import labeling_config
from assets.annotation.label_studio_tasks import build_task, choices_result
from assets.annotation.prelabel import LabelModel, train_label_model
from assets.annotation.starter_gold import starter_gold
from assets.cleaning.clean_items import clean_items, quarantine_step, working_on
from assets.intake import delivery_lease
from assets.intake.raw_items import INTAKE_RETRIES, is_transient
from assets.partitions import (
    batches_partitions,
    deliveries_backfill_policy,
    deliveries_by_client,
    deliveries_partitions,
)
from resources import CatalogResource, ObjectStoreResource
from resources.catalog import Catalog, CatalogSnapshot

PART_KEYS = {"image": "image_key", "audio": "audio_key"}


def item_parts(item: dict) -> tuple[str, ...]:
    """The parts an item shows annotators, in the order its labeling config lists them."""
    present = {"image": item.get("image_key"), "text": item.get("text"), "audio": item.get("audio_key")}
    return tuple(part for part in ("image", "text", "audio") if present[part] is not None)


def task_for(item: dict, modality: str, parts: tuple[str, ...], bucket: str, prediction: dict | None) -> dict:
    """The item as annotators see it, on the batch's `parts` (an item that joined a sibling batch is
    shown the parts that batch labels). A honeypot is built the same way: its reference stays out."""
    shown = [part for part in parts if part in PART_KEYS and item.get(PART_KEYS[part])]
    urls = {part: f"s3://{bucket}/{item[PART_KEYS[part]]}" for part in shown}
    return build_task(
        item, modality, urls, text=item.get("text") if "text" in parts else None, prediction=prediction
    )


def prelabels(model: LabelModel | None, items: dict[str, dict]) -> dict[str, dict]:
    """item_key -> a Label Studio prediction, for text items when a model could be trained."""
    if model is None:
        return {}
    keys = [key for key, item in items.items() if item.get("text")]
    return {
        key: {
            "model_version": model.version,
            "score": score,
            "result": [choices_result("label", "text", label)],
        }
        for key, (label, score) in zip(keys, model.predict([items[key]["text"] for key in keys]), strict=True)
    }


def tasks_version(tasks: list[dict], file_hashes: dict[str, dict[str, str]]) -> str:
    """The version of a batch's tasks: a digest of what annotators are shown (the tasks, text inline)
    and of the bytes behind every file they open (the uploads' sha256, from intake). A batch cut again
    after a re-upload gets a new version whenever anything an annotator sees changed, so a verdict on
    answers to the old tasks never counts for the new ones."""
    shown = {item_key: file_hashes.get(item_key, {}) for item_key in sorted(file_hashes)}
    document = json.dumps({"tasks": tasks, "files": shown}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(document.encode()).hexdigest()[:32]


def batch_files(
    batch: PlannedBatch,
    items: dict[str, dict],
    gold: dict[str, dict],
    predictions: dict[str, dict],
    modality: str,
    label_set: list[str],
    bucket: str,
    file_hashes: dict[str, dict[str, str]],
) -> tuple[dict[str, bytes], str]:
    """`tasks.json` and `config.xml` as Label Studio imports them, and `batch.json`: who labels what and
    which items a reviewer labels as ground truth (`review_item_keys`); and the tasks' version, which
    every task carries in its data (`tasks_version`) so each answer in an export names the version of
    the batch it answers. `file_hashes`: item_key -> part -> sha256.
    Honeypots go out as ordinary tasks; their references stay in the catalog (`honeypot_references`)."""
    tasks = []
    for planned in batch.tasks:
        if planned.honeypot:
            tasks.append(task_for(gold[planned.item_key], modality, batch.parts, bucket, None))
        else:
            item = items[planned.item_key]
            tasks.append(task_for(item, modality, batch.parts, bucket, predictions.get(planned.item_key)))
    version = tasks_version(
        tasks,
        {task.item_key: file_hashes.get(task.item_key, {}) for task in batch.tasks if not task.honeypot},
    )
    for task in tasks:
        task["data"]["tasks_version"] = version
    plan = {
        "batch_id": batch.batch_id,
        "tasks_version": version,
        "modality": modality,
        "label_set": label_set,
        "parts": list(batch.parts),
        # honeypots are not told apart from the batch's own tasks: the tool never learns which they are
        "tasks": [{"item_key": task.item_key, "annotators": task.annotators} for task in batch.tasks],
        "review_item_keys": [task.item_key for task in batch.tasks if task.review],
    }
    return {
        "tasks.json": json.dumps(tasks, ensure_ascii=False, indent=1).encode(),
        "config.xml": labeling_config(modality, label_set, list(batch.parts)).encode(),
        "batch.json": json.dumps(plan, ensure_ascii=False, indent=1).encode(),
    }, version


@dg.asset(
    partitions_def=deliveries_partitions,
    backfill_policy=deliveries_backfill_policy,
    deps=[clean_items],
    group_name="annotation",
    kinds={"s3", "duckdb"},
    owners=["team:platform"],
    code_version="1",
    # a service's failure is re-raised (is_transient) so the step runs again; others quarantine
    retry_policy=dg.RetryPolicy(max_retries=INTAKE_RETRIES, delay=10, backoff=dg.Backoff.EXPONENTIAL),
)
def annotation_batches(
    context: dg.AssetExecutionContext, object_store: ObjectStoreResource, catalog: CatalogResource
) -> dg.MaterializeResult:
    """One row per batch, written to `batches/{batch_id}/` (tasks.json, config.xml, batch.json)."""
    store, writer, settings = object_store.open(), catalog.open(), load_settings()
    for client_id, refs in deliveries_by_client(context):
        # read once per client and run: the catalog as it was when the run's batching began
        examples = writer.query("client_training_texts", client_id=client_id)
        with writer.client_snapshot(client_id, ["client_gold_items"]) as earlier:
            for ref in refs:
                if not working_on(context, store, ref):
                    continue
                try:
                    metadata, batch_ids = batch_delivery(
                        ref, store, writer, earlier, examples, settings, context.run.run_id
                    )
                    context.instance.add_dynamic_partitions(batches_partitions.name, batch_ids)
                except Exception as error:
                    if is_transient(error) and context.retry_number < INTAKE_RETRIES:
                        raise
                    metadata = quarantine_step(context, store, writer, ref, error, "batching")
                    for table in ("batches", "batch_tasks"):
                        writer.write_partition(table, ref.partition_key, [])
                finish_intake(writer, ref)
                delivery_lease.give_back(store, ref, context.run.run_id)
                context.add_asset_metadata(metadata, partition_key=ref.partition_key)
    return dg.MaterializeResult()


def finish_intake(writer: Catalog, ref: DeliveryRef) -> None:
    """Intake's last step is done with the delivery: its manifest version now counts as taken in."""
    delivery = writer.read_partition("deliveries", ref.partition_key).astype(object)
    rows = delivery.where(delivery.notna(), None).assign(in_progress=False).to_dict("records")
    writer.write_partition("deliveries", ref.partition_key, rows)


def batch_delivery(
    ref: DeliveryRef,
    store: ObjectStore,
    writer: Catalog,
    earlier: CatalogSnapshot,
    examples: pd.DataFrame,
    settings: Settings,
    run_id: str,
) -> tuple[dict, list[str]]:
    """Cut one delivery's kept items into batches; returns its metadata and the new batch ids.

    Honeypots come from `earlier`, the client's reviewed batches (or the base's starter gold when the
    client has none); their references go to `honeypot_references`, never into tasks. The pre-label
    model learns from `examples` of its other deliveries, both as they were when the run's batching began."""
    kept = writer.read_partition("clean_items", ref.partition_key, missing_ok=True)
    kept = kept[kept.status == "kept"]
    if kept.empty:
        for table in ("batches", "batch_tasks", "honeypot_references"):
            writer.write_partition(table, ref.partition_key, [])
        return {"batches": 0, "dagster/row_count": 0}, []
    delivery = writer.read_partition("deliveries", ref.partition_key).iloc[0]
    label_set = list(delivery.label_set)
    modality, now = delivery.modality, datetime.now(UTC)

    items = {row["item_key"]: _none_for_nan(row) for row in kept.to_dict("records")}
    by_parts: dict[tuple[str, ...], list[str]] = {}
    for key, item in items.items():
        by_parts.setdefault(item_parts(item), []).append(key)
    # per part set: one starter item serves groups of different parts, with its reference cut to each
    gold: dict[tuple[str, ...], dict[str, dict]] = {}
    honeypots: dict[tuple[str, ...], list[str]] = {}
    for parts in by_parts:
        references = earlier.query(
            "client_gold_items",
            client_id=ref.client_id,
            modality=modality,
            parts=list(parts),
            delivery_id=ref.delivery_id,
        )
        found = {row["item_key"]: _none_for_nan(row) for row in references.to_dict("records")}
        if not found:  # a client with no gold of its own yet meets the base's starter set
            found = starter_gold(store, delivery.industry, modality, parts, label_set)
        gold[parts] = found
        honeypots[parts] = sorted(found)

    model = None
    if annotation_type(modality).prelabels:
        others = examples[examples.delivery_id != ref.delivery_id]
        model = train_label_model(others.text.tolist(), others.label.tolist(), label_set)
    predictions = prelabels(model, items)

    raw = writer.read_partition("raw_items", ref.partition_key)
    file_hashes: dict[str, dict[str, str]] = {}
    for item_key, part, sha256 in zip(raw.item_key, raw.part, raw.sha256, strict=True):
        file_hashes.setdefault(item_key, {})[part] = sha256
    batch_rows, task_rows, reference_rows = [], [], []
    earlier_ids = writer.read_partition("batches", ref.partition_key, missing_ok=True)
    known_ids = {batch_number(batch_id): batch_id for batch_id in earlier_ids.get("batch_id", [])}
    planned = plan_batches(ref, by_parts, honeypots, settings.annotation, known_ids)
    for batch in planned:
        prefix = f"batches/{batch.batch_id}/"
        files, version = batch_files(
            batch, items, gold[batch.parts], predictions, modality, label_set, store.bucket, file_hashes
        )
        for name, data in files.items():
            store.put(prefix + name, data)
        batch_rows.append(
            {
                "batch_id": batch.batch_id,
                "client_id": ref.client_id,
                "delivery_id": ref.delivery_id,
                "industry": delivery.industry,
                "modality": modality,
                "task": delivery.task,
                "license": delivery.license,
                "label_set": label_set,
                "parts": list(batch.parts),
                "tasks": len(batch.tasks),
                "honeypots": sum(task.honeypot for task in batch.tasks),
                "overlap_tasks": sum(task.annotators > 1 and not task.honeypot for task in batch.tasks),
                "review_tasks": sum(task.review for task in batch.tasks),
                "tasks_key": prefix + "tasks.json",
                "config_key": prefix + "config.xml",
                "tasks_version": version,
                "dagster_run_id": run_id,
                "created_at": now,
            }
        )
        for index, task in enumerate(batch.tasks):
            source = gold[batch.parts][task.item_key] if task.honeypot else items[task.item_key]
            task_rows.append(
                {
                    "batch_id": batch.batch_id,
                    "task_index": index,
                    "item_key": task.item_key,
                    "client_id": source["client_id"],
                    "delivery_id": source["delivery_id"],
                    "item_id": source["item_id"],
                    "annotators": task.annotators,
                    "honeypot": task.honeypot,
                    "review": task.review,
                }
            )
            if task.honeypot:
                reference_rows.append(
                    {
                        "batch_id": batch.batch_id,
                        "item_key": task.item_key,
                        "client_id": ref.client_id,
                        "delivery_id": ref.delivery_id,
                        "source": "starter" if source["client_id"] != ref.client_id else "client",
                        "result_json": source["result_json"],
                    }
                )
    ledger.record_batches(store, ref, task_rows, run_id)  # before the rows: write-ahead
    writer.write_partition("honeypot_references", ref.partition_key, reference_rows)
    writer.write_partition("batch_tasks", ref.partition_key, task_rows)
    writer.write_partition("batches", ref.partition_key, batch_rows)
    batch_ids = [batch.batch_id for batch in planned]
    metadata = {
        "batches": len(planned),
        "tasks": len(task_rows),
        "honeypots": sum(row["honeypots"] for row in batch_rows),
        "starter_honeypots": sum(row["source"] == "starter" for row in reference_rows),
        "review_tasks": sum(row["review_tasks"] for row in batch_rows),
        "dagster/row_count": len(batch_rows),
        "batch_ids": dg.MetadataValue.json(batch_ids),
        "prelabel_model": model.version if model else "none (nothing to learn from yet)",
        "prelabelled_tasks": len(predictions),
    }
    return metadata, batch_ids


def _none_for_nan(row: dict) -> dict:
    return {
        key: (None if not isinstance(value, (list, tuple, np.ndarray)) and pd.isna(value) else value)
        for key, value in row.items()
    }
