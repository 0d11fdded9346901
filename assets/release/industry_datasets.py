"""Asset `industry_datasets`: a versioned, signed, documented public dataset per industry."""

import hashlib
import json
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version as package_version

import dagster as dg
import pandas as pd
import pyarrow as pa

from annobase import ledger
from annobase.keys import DeliveryRef
from annobase.leases import Lease
from annobase.settings import load_settings
from assets.cleaning.clean_items import clean_items
from assets.delivery.client_deliveries import labels_table
from assets.evidence import score, stored
from assets.partitions import industries_partitions
from assets.quality.qa_results import qa_results
from assets.quality.verdicts import judged_consensus, on_current_exports
from assets.release.croissant import croissant_metadata
from assets.release.publish_lease import publishing
from assets.release.publishing import (
    DATA_FILE,
    content_fingerprint,
    existing_versions,
    latest_manifest,
    write_release,
)
from assets.release.quality_report import quality_report
from assets.release.signing import SigningKeyMissing
from assets.release.withdrawals import catalog_reason, manifest_change, rows_of_another_version
from assets.store_outage import retried_on_store_outage
from resources import CatalogResource, DaskResource, ObjectStoreResource, SigningKeyResource

LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"
CODE_VERSION = "1"
RELEASE_CURRENT_CHECK = "release_current"

# Per-industry check results are a preview feature in Dagster 1.13, used knowingly: an industry that
# released nothing is a warning on its own partition, with the reason, instead of a green run.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    release_current = dg.AssetCheckSpec(
        RELEASE_CURRENT_CHECK,
        asset="industry_datasets",
        description="The industry has a current signed release: this run's, or an unchanged earlier one; "
        "a warning says why nothing could be released.",
        partitions_def=industries_partitions,
    )


def gather_release(store, writer, industry: str):
    """The release's rows (one per item), the uploads to copy in, the cleaned texts, the lineage, and
    the deliveries left out (partition -> reason) though the catalog would release them: their client's
    current manifest is not the version taken in, or a batch's verdict is not on its current export."""
    deliveries = writer.query("release_deliveries", industry=industry)
    frames, uploads, texts, lineage_deliveries, lineage_batches = [], [], {}, [], []
    left_out: dict[str, str] = {}
    for delivery in deliveries.itertuples(index=False):
        ref = DeliveryRef(delivery.client_id, delivery.delivery_id)
        partition = ref.partition_key
        if reason := manifest_change(store, ref, delivery.manifest_etag):
            left_out[partition] = reason
            continue
        gates = on_current_exports(
            store, writer.query("delivery_gate_status", client_id=ref.client_id, delivery_id=ref.delivery_id)
        )
        consensus, replaced = judged_consensus(
            writer.query("delivery_consensus", client_id=ref.client_id, delivery_id=ref.delivery_id), gates
        )
        if not gates.passed.eq(True).all() or replaced:
            left_out[partition] = "not_gated: a batch waits for a passed verdict on its current export"
            continue
        cleaned = writer.read_partition("clean_items", partition)
        raw = writer.read_partition("raw_items", partition)
        if reason := rows_of_another_version(raw, cleaned, delivery):
            left_out[partition] = reason
            continue
        kept = cleaned[cleaned.status == "kept"]
        table = labels_table(consensus, kept, delivery.modality)
        per_item = consensus.groupby("item_key").agg(
            batch_id=("batch_id", "first"), annotations=("annotations", "max")
        )
        table = table.drop(columns=[c for c in ("text_key", "image_key", "audio_key") if c in table]).join(
            per_item, on="item_key"
        )
        table["text"] = kept.set_index("item_key").text.reindex(table.item_key).to_numpy()
        table["uploaded_at"] = delivery.ingested_at
        table["gate_passed"] = table.batch_id.map(dict(zip(gates.batch_id, gates.passed, strict=True)))
        frames.append(table)
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
                "license": delivery.license,
                "intake_run_id": delivery.dagster_run_id,
            }
        )
        runs = writer.query(
            "delivery_batch_runs", client_id=delivery.client_id, delivery_id=delivery.delivery_id
        )
        lineage_batches += runs.to_dict("records")
    items = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    files = pd.concat(uploads, ignore_index=True) if uploads else pd.DataFrame()
    return items, files, texts, {"deliveries": lineage_deliveries, "batches": lineage_batches}, left_out


def withdrawn_deliveries(
    writer, previous: dict | None, lineage: dict, left_out: dict[str, str]
) -> list[dict]:
    """The deliveries the previous release held that this one does not, each with why."""
    if previous is None:
        return []
    kept = {(d["client_id"], d["delivery_id"]) for d in lineage["deliveries"]}
    withdrawn = []
    for earlier in previous["lineage"].get("deliveries", []):
        client_id, delivery_id = earlier["client_id"], earlier["delivery_id"]
        if (client_id, delivery_id) in kept:
            continue
        reason = left_out.get(f"{client_id}/{delivery_id}")
        if reason is None:
            state = writer.query("delivery_state", client_id=client_id, delivery_id=delivery_id)
            reason = catalog_reason(state.iloc[0].to_dict() if len(state) else None)
        withdrawn.append(
            {
                "client_id": client_id,
                "delivery_id": delivery_id,
                "released_in": previous["version"],
                "reason": reason,
            }
        )
    return withdrawn


def release_documents(
    industry: str, version: str, batches: pd.DataFrame, settings, now: datetime
) -> Callable[[pd.DataFrame, dict[str, str], pa.Schema], dict[str, bytes]]:
    """What `write_release` calls once the Parquet is written: the Croissant card (which lists every
    data file's sha256, from `hashes`, and describes the Parquet's `schema`) and the quality report."""

    def documents(
        rows: pd.DataFrame, hashes: dict[str, str], schema: pa.Schema, withheld: dict[str, str]
    ) -> dict[str, bytes]:
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
                if path != DATA_FILE
            ],
        )
        report = quality_report(rows, batches, settings.thresholds, now, withheld=withheld)
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
    check_specs=[release_current],
)
def industry_datasets(
    context: dg.AssetExecutionContext,
    object_store: ObjectStoreResource,
    catalog: CatalogResource,
    signing_key: SigningKeyResource,
    dask: DaskResource,
) -> dg.MaterializeResult:
    """One row per published item of the industry, in `datasets/{industry}/{version}/`, signed."""
    with retried_on_store_outage(context):
        with publishing(context, object_store.open(), context.partition_key) as lease:
            result = release_industry(context, object_store, catalog, signing_key, dask, lease)
    return dg.MaterializeResult(metadata=result.metadata, check_results=[release_verdict(result.metadata)])


def release_verdict(metadata: dict) -> dg.AssetCheckResult:
    """`release_current` in one line: the release cut, the one still current, or why there is none."""
    if metadata["released"]:
        description = f"released {metadata['version']}: {metadata['items']} items"
    elif "version" in metadata:
        description = f"current: {metadata['reason']}"
    else:
        description = f"nothing released: {metadata['reason']}"
    return dg.AssetCheckResult(
        check_name=RELEASE_CURRENT_CHECK,
        passed=metadata["released"] or "version" in metadata,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"reason": description},
    )


def release_industry(
    context: dg.AssetExecutionContext,
    object_store: ObjectStoreResource,
    catalog: CatalogResource,
    signing_key: SigningKeyResource,
    dask: DaskResource,
    lease: Lease,
) -> dg.MaterializeResult:
    """What changed since LATEST, as a new version: run holding the industry's publish lease, from
    reading LATEST to writing it."""
    industry = context.partition_key
    store, writer = object_store.open(), catalog.open()
    try:
        # before anything is read or written: a store others read is never signed with a dev key
        key = signing_key.load(allow_dev=not store.remote)
    except SigningKeyMissing as missing:
        raise dg.Failure(description=str(missing), allow_retries=False) from missing
    if key.is_dev:
        context.log.warning(
            "releases are signed with a development key: set ANNOBASE_SIGNING_KEY in production"
        )
    items, uploads, texts, lineage, left_out = gather_release(store, writer, industry)
    for partition, reason in sorted(left_out.items()):
        context.log.warning(f"{partition} left out of the {industry} release: {reason}")
    previous = latest_manifest(store, industry)
    lineage["withdrawn_deliveries"] = withdrawn_deliveries(writer, previous, lineage, left_out)
    if items.empty:
        return dg.MaterializeResult(
            metadata={"released": False, "reason": "no publishable item passed the gate"}
        )

    file_hashes = dict(zip(uploads.upload_key, uploads.sha256, strict=True))
    file_hashes.update({key: hashlib.sha256(text.encode()).hexdigest() for key, text in texts.items()})
    fingerprint = content_fingerprint(items, file_hashes)
    if previous and previous["lineage"].get("content_fingerprint") == fingerprint:
        return dg.MaterializeResult(
            metadata={
                "released": False,
                "reason": f"nothing changed since {previous['version']}",
                "version": previous["version"],
            }
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
        # read after the content was gathered: every entry it rests on is at or before these heads
        "ledger_heads": ledger.release_heads(store, lineage),
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
            previous=previous,
            before_commit=lease.confirm,
        )
    if files is None:
        return dg.MaterializeResult(
            metadata={"released": False, "reason": "every item was withheld: no upload is as intake verified"}
        )
    items = items[~items.item_key.isin(files.withheld)]
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
            "location": stored(store, f"datasets/{industry}/{version}/"),
            "items": len(items),
            "items_withheld": len(files.withheld),
            "deliveries_withdrawn": len(lineage["withdrawn_deliveries"]),
            "files": len(files.written),
            "files_added_to_pool": files.pooled,
            "dagster/row_count": len(items),
            **{
                name: score(measure["value"])
                for name, measure in report["scores"].items()
                if measure.get("value") is not None
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
