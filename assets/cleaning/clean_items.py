"""Asset `clean_items`: a delivery's accepted items made fit for annotators: duplicates and badly
formatted media dropped, personal data masked out of the text."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from annobase import ledger
from annobase.keys import DeliveryRef
from annobase.object_store import ObjectStore
from annobase.settings import Settings, load_settings
from assets.cleaning.item_content import read_item_content
from assets.cleaning.near_duplicates import (
    Duplicate,
    exact_duplicates,
    near_hash_duplicates,
    near_text_duplicates,
)
from assets.cleaning.text_history import TextIndex, history_duplicates, index_rows, text_index
from assets.intake import delivery_lease
from assets.intake.raw_items import INTAKE_RETRIES, is_transient, raw_items, record_internal_error
from assets.partitions import deliveries_backfill_policy, deliveries_by_client, deliveries_partitions
from resources import CatalogResource, DaskResource, ObjectStoreResource
from resources.catalog import Catalog, CatalogSnapshot

# what cleaning asks of the client's earlier deliveries: their files and their texts' LSH buckets
EARLIER_QUERIES = ["client_file_hashes", "client_text_lsh_candidates"]
DROP_REASONS = {
    "exact": "exact_duplicate",
    "near_text": "near_duplicate_text",
    "near_image": "near_duplicate_image",
}


def format_problems(parts: pd.DataFrame, settings: Settings) -> dict[str, tuple[str, str]]:
    """item_key -> (reason, detail) for audio and images outside what annotators can work with."""
    limits = settings.cleaning
    problems: dict[str, tuple[str, str]] = {}
    for row in parts.itertuples(index=False):
        if row.part == "audio":
            if not limits.min_audio_seconds <= row.audio_seconds <= limits.max_audio_seconds:
                problems[row.item_key] = (
                    "audio_format",
                    f"{row.audio_seconds:.2f} s is outside "
                    f"{limits.min_audio_seconds}..{limits.max_audio_seconds} s",
                )
            elif row.sample_rate not in limits.sample_rates or row.channels > limits.max_audio_channels:
                problems[row.item_key] = ("audio_format", f"{row.sample_rate} Hz × {row.channels} channels")
        elif row.part == "image":
            sides = (row.image_width, row.image_height)
            if not all(limits.min_image_side <= side <= limits.max_image_side for side in sides):
                problems[row.item_key] = ("image_format", f"{sides[0]}×{sides[1]} px")
    return problems


def items_by_key(parts: pd.DataFrame) -> pd.DataFrame:
    """One row per item from raw_items' one row per file."""
    keys = {"text": "text_key", "image": "image_key", "audio": "audio_key"}
    wide = parts.pivot(index="item_key", columns="part", values="upload_key").rename(columns=keys)
    first = parts.drop_duplicates("item_key").set_index("item_key")
    images = parts[parts.part == "image"].set_index("item_key")[["image_width", "image_height"]]
    columns = ["client_id", "delivery_id", "item_id", "industry", "modality", "task", "license"]
    merged = first[columns].join(wide).join(images)
    for column in keys.values():
        if column not in merged:
            merged[column] = None
    return merged.reset_index()


@dg.asset(
    partitions_def=deliveries_partitions,
    backfill_policy=deliveries_backfill_policy,
    deps=[raw_items],
    group_name="cleaning",
    kinds={"dask", "s3", "duckdb"},
    owners=["team:platform"],
    code_version="1",
    # a service's failure is re-raised (is_transient) so the step runs again; others quarantine
    retry_policy=dg.RetryPolicy(max_retries=INTAKE_RETRIES, delay=10, backoff=dg.Backoff.EXPONENTIAL),
)
def clean_items(
    context: dg.AssetExecutionContext,
    object_store: ObjectStoreResource,
    catalog: CatalogResource,
    dask: DaskResource,
) -> dg.MaterializeResult:
    """One row per accepted item: kept for annotation (text PII-masked) or dropped with a reason."""
    store, writer, settings = object_store.open(), catalog.open(), load_settings()
    with dask.client() as dask_client:
        for client_id, refs in deliveries_by_client(context):
            with writer.client_snapshot(client_id, EARLIER_QUERIES) as earlier:
                for ref in refs:
                    if not working_on(context, store, ref):
                        continue
                    try:
                        metadata = clean_delivery(
                            ref, store, writer, earlier, settings, dask_client, context.run.run_id
                        )
                    except Exception as error:
                        if is_transient(error) and context.retry_number < INTAKE_RETRIES:
                            raise
                        metadata = quarantine_step(context, store, writer, ref, error, "cleaning")
                    context.add_asset_metadata(metadata, partition_key=ref.partition_key)
    return dg.MaterializeResult()


def working_on(context: dg.AssetExecutionContext, store: ObjectStore, ref: DeliveryRef) -> bool:
    """Whether this run took the delivery in and still holds it (a superseded delivery, or one another
    run holds, is left alone by the run's later steps)."""
    if delivery_lease.held_by(store, ref, context.run.run_id) is None:
        context.log.info(f"{ref.partition_key}: not taken in by this run; left alone")
        return False
    return True


def quarantine_step(
    context: dg.AssetExecutionContext, store: ObjectStore, writer: Catalog, ref: DeliveryRef, error, step: str
) -> dict:
    """A later intake step failed on one delivery: it is quarantined (`internal_error`) and recorded
    as rejected, its partitions of the steps so far emptied; the run's other deliveries go on."""
    delivery = writer.read_partition("deliveries", ref.partition_key, missing_ok=True)
    etag = str(delivery.manifest_etag.iloc[0]) if len(delivery) else ""
    outcome = record_internal_error(context, store, writer, ref, error, step, etag)
    for table in ("clean_items", "text_lsh"):  # no later delivery is judged a duplicate of its texts
        writer.write_partition(table, ref.partition_key, [])
    return {"status": "rejected", "reason": outcome.rejections[0]["detail"]}


def clean_delivery(
    ref: DeliveryRef,
    store: ObjectStore,
    writer: Catalog,
    earlier: CatalogSnapshot,
    settings: Settings,
    dask_client,
    run_id: str,
) -> dict:
    """Clean one delivery's accepted items into its `clean_items` partition; returns its metadata.

    `earlier` holds the client's catalog as it was when the run's cleaning began (every delivery
    of the run already taken in): exact duplicates and near-duplicate texts of earlier deliveries
    are looked up there; this delivery's texts are added to it for the run's later deliveries."""
    parts = writer.read_partition("raw_items", ref.partition_key, missing_ok=True)
    now = datetime.now(UTC)
    if parts.empty:
        writer.write_partition("clean_items", ref.partition_key, [])
        return {"items_in": 0, "items_kept": 0, "dagster/row_count": 0}

    items = items_by_key(parts)
    mask = bool(items.industry.iloc[0] in settings.cleaning.pii_industries)
    records = items.to_dict("records")
    size = settings.items_per_task
    futures = dask_client.map(
        read_item_content,
        [records[i : i + size] for i in range(0, len(records), size)],
        store=store,
        mask=mask,
        segmenter=settings.cleaning.name_segmenter,
        pure=False,
    )
    content = pd.DataFrame([row for chunk in dask_client.gather(futures) for row in chunk])
    items = items.merge(content, on="item_key")

    known = earlier.query("client_file_hashes", client_id=ref.client_id, delivery_id=ref.delivery_id)
    drops: dict[str, Duplicate | tuple[str, str]] = {}
    for duplicate in exact_duplicates(
        zip(parts.item_key, parts.sha256, strict=True), dict(zip(known.sha256, known.item_key, strict=True))
    ):
        drops[duplicate.item_key] = duplicate
    for key, problem in format_problems(parts, settings).items():
        drops.setdefault(key, problem)
    remaining = items[~items.item_key.isin(drops)]
    with_text = remaining[remaining.text.notna()]
    for duplicate in near_text_duplicates(
        zip(with_text.item_key, with_text.text, strict=True), settings.cleaning.near_duplicate_text_jaccard
    ):
        drops.setdefault(duplicate.item_key, duplicate)
    threshold = settings.cleaning.near_duplicate_text_jaccard
    with_text = with_text[~with_text.item_key.isin(drops)]
    index = text_index(with_text.text.tolist(), threshold)
    for duplicate in history_duplicates(ref, writer, earlier, with_text, index, threshold):
        drops.setdefault(duplicate.item_key, duplicate)
    with_image = remaining[remaining.phash.notna() & ~remaining.item_key.isin(drops)]
    for duplicate in near_hash_duplicates(
        zip(with_image.item_key, with_image.phash, strict=True), settings.cleaning.near_duplicate_image_bits
    ):
        drops.setdefault(duplicate.item_key, duplicate)

    rows = [_row(item, drops.get(item["item_key"]), run_id, now) for item in items.to_dict("records")]
    ledger.record_cleaning(store, ref, rows, run_id)  # before the rows: write-ahead
    writer.write_partition("clean_items", ref.partition_key, rows)
    kept_texts = (~with_text.item_key.isin(drops)).tolist()
    indexed = index_rows(
        ref,
        with_text.item_key[kept_texts].tolist(),
        TextIndex(
            *([value for value, kept in zip(column, kept_texts, strict=True) if kept] for column in index)
        ),
    )
    writer.write_partition("text_lsh", ref.partition_key, indexed)  # after the texts it points at
    earlier.add_rows("text_lsh", indexed)
    dropped = pd.Series([row["drop_reason"] for row in rows if row["drop_reason"]], dtype=object)
    kept = [row for row in rows if row["status"] == "kept"]
    return {
        "items_in": len(rows),
        "items_kept": len(kept),
        "dagster/row_count": len(rows),
        "dropped_by_reason": dg.MetadataValue.json(dropped.value_counts().sort_index().to_dict()),
        "pii_masked": int(sum(row["pii_masked"] for row in rows)),
        "preview": dg.MetadataValue.md(
            "| item | text (as annotators see it) |\n|---|---|\n"
            + "\n".join(f"| {row['item_id']} | {(row['text'] or '')[:60]} |" for row in kept[:5])
        ),
    }


def _row(item: dict, drop, run_id: str, now: datetime) -> dict:
    row = {
        key: item[key]
        for key in (
            "item_key",
            "client_id",
            "delivery_id",
            "item_id",
            "industry",
            "modality",
            "task",
            "license",
            "text",
            "image_key",
            "audio_key",
            "image_width",
            "image_height",
            "pii_masked",
        )
    }
    row.update(
        status="kept",
        drop_reason=None,
        drop_detail=None,
        duplicate_of=None,
        similarity=None,
        dagster_run_id=run_id,
        cleaned_at=now,
    )
    if isinstance(drop, Duplicate):
        row.update(
            status="dropped",
            drop_reason=DROP_REASONS[drop.kind],
            duplicate_of=drop.duplicate_of,
            similarity=float(drop.similarity),
            drop_detail=f"duplicates {drop.duplicate_of}",
        )
    elif drop:
        row.update(status="dropped", drop_reason=drop[0], drop_detail=drop[1])
    return {
        key: (None if isinstance(value, float) and pd.isna(value) else value) for key, value in row.items()
    }
