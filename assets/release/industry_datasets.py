"""Asset `industry_datasets`: a versioned, signed, documented public dataset per industry."""

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version as package_version

import dagster as dg
import pandas as pd
import pyarrow as pa

from annobase.settings import load_settings
from assets.cleaning.clean_items import clean_items
from assets.delivery.client_deliveries import labels_table
from assets.partitions import industries_partitions
from assets.quality.qa_results import qa_results
from assets.release.croissant import croissant_metadata
from assets.release.publishing import (
    DATA_FILE,
    content_fingerprint,
    existing_versions,
    latest_manifest,
    write_release,
)
from assets.release.quality_report import quality_report
from resources import CatalogResource, DaskResource, ObjectStoreResource, SigningKeyResource

LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"
CODE_VERSION = "1"


def gather_release(writer, industry: str):
    """The release's rows (one per item), the uploads to copy in, the cleaned texts and the lineage."""
    deliveries = writer.query("release_deliveries", industry=industry)
    frames, uploads, texts, lineage_deliveries, lineage_batches = [], [], {}, [], []
    for delivery in deliveries.itertuples(index=False):
        partition = f"{delivery.client_id}/{delivery.delivery_id}"
        kept = writer.read_partition("clean_items", partition)
        kept = kept[kept.status == "kept"]
        consensus = writer.query(
            "delivery_consensus", client_id=delivery.client_id, delivery_id=delivery.delivery_id
        )
        table = labels_table(consensus, kept, delivery.modality)
        per_item = consensus.groupby("item_key").agg(
            batch_id=("batch_id", "first"), annotations=("annotations", "max")
        )
        table = table.drop(columns=[c for c in ("text_key", "image_key", "audio_key") if c in table]).join(
            per_item, on="item_key"
        )
        table["text"] = kept.set_index("item_key").text.reindex(table.item_key).to_numpy()
        table["uploaded_at"] = delivery.ingested_at
        table["gate_passed"] = True
        frames.append(table)
        raw = writer.read_partition("raw_items", partition)
        raw = raw[raw.item_key.isin(table.item_key)]
        uploads.append(raw[raw.part != "text"][["item_key", "part", "upload_key", "sha256", "bytes"]])
        texts.update(
            {
                key: text
                for key, text in zip(table.item_key.tolist(), table.text.tolist(), strict=True)
                if isinstance(text, str)
            }
        )
        lineage_deliveries.append(
            {
                "client_id": delivery.client_id,
                "delivery_id": delivery.delivery_id,
                "manifest_etag": delivery.manifest_etag,
                "manifest_sha256": delivery.manifest_sha256,
                "intake_run_id": delivery.dagster_run_id,
            }
        )
        runs = writer.query(
            "delivery_batch_runs", client_id=delivery.client_id, delivery_id=delivery.delivery_id
        )
        lineage_batches += runs.to_dict("records")
    items = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    files = pd.concat(uploads, ignore_index=True) if uploads else pd.DataFrame()
    return items, files, texts, {"deliveries": lineage_deliveries, "batches": lineage_batches}


def release_documents(
    industry: str, version: str, batches: pd.DataFrame, settings, now: datetime
) -> Callable[[pd.DataFrame, dict[str, str], pa.Schema], dict[str, bytes]]:
    """What `write_release` calls once the Parquet is written: the Croissant card (which lists every
    data file's sha256, from `hashes`, and describes the Parquet's `schema`) and the quality report."""

    def documents(rows: pd.DataFrame, hashes: dict[str, str], schema: pa.Schema) -> dict[str, bytes]:
        card = croissant_metadata(
            name=f"annobase-{industry}",
            description=f"{settings.industries[industry]}: items annotated and "
            "quality-checked at the base, with consensus labels and per-item quality.",
            license=LICENSE_URL,
            creators=["annobase"],
            version=f"{int(version[1:])}.0.0",  # Croissant wants MAJOR.MINOR.PATCH; v0003 is 3.0.0
            date_published=now.date().isoformat(),
            citation=None,
            parquet_path=DATA_FILE,
            parquet_sha256=hashes[DATA_FILE],
            parquet_schema=schema,
            extra_files=[
                {"path": path, "sha256": sha, "encoding_format": _encoding(path)}
                for path, sha in sorted(hashes.items())
                if path.startswith("data/files/")
            ],
        )
        report = quality_report(rows, batches, settings.thresholds, now)
        return {
            # compact, like MANIFEST.json: the card lists every file of the release
            "croissant.json": json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode(),
            "quality_report.json": json.dumps(report, ensure_ascii=False, indent=1, default=str).encode(),
        }

    return documents


@dg.asset(
    partitions_def=industries_partitions,
    deps=[
        dg.AssetDep(qa_results, partition_mapping=dg.AllPartitionMapping()),
        dg.AssetDep(clean_items, partition_mapping=dg.AllPartitionMapping()),
    ],
    group_name="release",
    kinds={"dask", "s3", "duckdb", "parquet"},
    owners=["team:datasets"],
    code_version=CODE_VERSION,
)
def industry_datasets(
    context: dg.AssetExecutionContext,
    object_store: ObjectStoreResource,
    catalog: CatalogResource,
    signing_key: SigningKeyResource,
    dask: DaskResource,
) -> dg.MaterializeResult:
    """One row per published item of the industry, in `datasets/{industry}/{version}/`, signed."""
    industry = context.partition_key
    store, writer = object_store.open(), catalog.open()
    items, uploads, texts, lineage = gather_release(writer, industry)
    if items.empty:
        return dg.MaterializeResult(
            metadata={"released": False, "reason": "no publishable item passed the gate"}
        )

    file_hashes = dict(zip(uploads.upload_key, uploads.sha256, strict=True))
    file_hashes.update({key: hashlib.sha256(text.encode()).hexdigest() for key, text in texts.items()})
    fingerprint = content_fingerprint(items, file_hashes)
    previous = latest_manifest(store, industry)
    if previous and previous["lineage"].get("content_fingerprint") == fingerprint:
        return dg.MaterializeResult(
            metadata={
                "released": False,
                "reason": f"nothing changed since {previous['version']}",
                "version": previous["version"],
            }
        )

    key = signing_key.load()
    if key.is_dev:
        context.log.warning(
            "releases are signed with a development key: set ANNOBASE_SIGNING_KEY in production"
        )
    version = existing_versions(store, industry).next_version()
    now = datetime.now(UTC)
    batches = writer.query("industry_batch_quality", industry=industry)
    batches = batches[batches.batch_id.isin(items.batch_id)]
    settings = load_settings()

    documents = release_documents(industry, version, batches, settings, now)

    full_lineage = {
        **lineage,
        "quality_runs": sorted({b["qa_run_id"] for b in lineage["batches"] if b.get("qa_run_id")}),
        "dagster_run_id": context.run.run_id,
        "content_fingerprint": fingerprint,
        "previous_version": previous["version"] if previous else None,
    }
    with dask.client() as dask_client:
        files = write_release(
            store,
            industry,
            version,
            items,
            uploads,
            texts,
            documents,
            full_lineage,
            key,
            now,
            code_version=f"annobase {package_version('annobase')} / industry_datasets {CODE_VERSION}",
            dask_client=dask_client,
        )
    writer.write_partition(
        "release_items",
        f"{industry}/{version}",
        [
            {
                "item_key": row.item_key,
                "industry": industry,
                "version": version,
                "release": f"datasets/{industry}/{version}",
                "client_id": row.client_id,
                "delivery_id": row.delivery_id,
                "item_id": row.item_id,
                "batch_id": row.batch_id,
                "dagster_run_id": context.run.run_id,
                "released_at": now,
            }
            for row in items.itertuples(index=False)
        ],
    )
    report = json.loads(store.get(f"datasets/{industry}/{version}/quality_report.json"))
    return dg.MaterializeResult(
        metadata={
            "released": True,
            "version": version,
            "release": f"datasets/{industry}/{version}",
            "items": len(items),
            "files": len(files.written),
            "dagster/row_count": len(items),
            **{
                name: dg.MetadataValue.float(score["value"])
                for name, score in report["scores"].items()
                if score.get("value") is not None
            },
        }
    )


def _encoding(path: str) -> str:
    return {
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".wav": "audio/wav",
        ".txt": "text/plain",
    }.get(path[path.rfind(".") :], "application/octet-stream")
