"""Asset `raw_items`: a client delivery, verified against its manifest and recorded in the catalog."""

import warnings
from collections.abc import Iterator

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from annobase import ledger
from annobase.keys import DeliveryRef
from annobase.settings import load_settings
from assets.evidence import table
from assets.intake.intake import IntakeOutcome, ManifestVanished, take_in_delivery
from assets.partitions import deliveries_backfill_policy, deliveries_of, deliveries_partitions
from resources import CatalogResource, DaskResource, ObjectStoreResource
from resources.catalog import Catalog

DELIVERY_ACCEPTED_CHECK = "delivery_accepted"

# Per-delivery check results are a preview feature in Dagster 1.13, used knowingly: a rejected delivery
# is one failed partition of the check, where a person looks for it.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    delivery_accepted = dg.AssetCheckSpec(
        DELIVERY_ACCEPTED_CHECK,
        asset="raw_items",
        description="The delivery's manifest was accepted and at least one item verified; a rejected "
        "delivery fails it with its reason (the run succeeds: rejecting bad input is intake working).",
        partitions_def=deliveries_partitions,
    )


@dg.asset(
    partitions_def=deliveries_partitions,
    backfill_policy=deliveries_backfill_policy,
    deps=["client_uploads"],
    group_name="intake",
    kinds={"s3", "dask", "duckdb"},
    owners=["team:platform"],
    code_version="1",
    retry_policy=dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL),
    check_specs=[delivery_accepted],
)
def raw_items(
    context: dg.AssetExecutionContext,
    object_store: ObjectStoreResource,
    catalog: CatalogResource,
    dask: DaskResource,
) -> Iterator[dg.MaterializeResult]:
    """One row per verified file of a delivery: upload key, sha256, bytes, client, industry, license.

    Rejected deliveries and items are quarantined with a reason; the run still succeeds, because
    rejecting bad input is intake working, and the `delivery_accepted` check shows it on the asset.
    Each delivery of a range run is taken in on its own, so a bad one never stops the others.
    """
    store, writer, settings = object_store.open(), catalog.open(), load_settings()
    decided: list[tuple[DeliveryRef, IntakeOutcome | None]] = []
    with dask.client() as dask_client:
        for ref in deliveries_of(context):
            try:
                outcome = take_in_delivery(store, ref, settings, context.run.run_id, dask_client)
            except ManifestVanished as error:
                # deleted or being replaced: a new upload has a new ETag, which the sensor requests
                context.log.warning(f"{ref.partition_key}: {error}; nothing taken in")
                context.add_asset_metadata({"status": "manifest_vanished"}, partition_key=ref.partition_key)
                decided.append((ref, None))
                continue
            ledger.record_intake(store, ref, outcome, context.run.run_id)  # before the rows: write-ahead
            _record(writer, ref, outcome, context.log)
            context.add_asset_metadata(_metadata(outcome), partition_key=ref.partition_key)
            decided.append((ref, outcome))
    yield dg.MaterializeResult()
    # each delivery's verdict names the materialization it judged, which the UI needs to show it as
    # current on that partition (an AssetCheckResult would cover only a single-partition step)
    for ref, outcome in decided:
        context.log_event(_accepted_evaluation(ref, outcome, _judged(context.instance, ref)))
    yield dg.Output(
        None, output_name=context.assets_def.get_output_name_for_asset_check_key(delivery_accepted.key)
    )


def _judged(instance: dg.DagsterInstance, ref: DeliveryRef) -> AssetCheckEvaluationTargetMaterializationData:
    """The delivery's materialization of this run, which its verdict judged."""
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(dg.AssetKey("raw_items"), asset_partitions=[ref.partition_key]), limit=1
    ).records
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def _accepted_evaluation(
    ref: DeliveryRef, outcome: IntakeOutcome | None, judged: AssetCheckEvaluationTargetMaterializationData
) -> dg.AssetCheckEvaluation:
    """`delivery_accepted` for one delivery: a run may cover a range of deliveries, and each partition
    gets its own verdict."""
    delivery = outcome.delivery if outcome else {"status": "rejected", "reason": "manifest_vanished"}
    rejected = delivery["status"] == "rejected"
    detail = (
        f" ({outcome.rejections[0]['detail'][:160]})" if rejected and outcome and outcome.rejections else ""
    )
    reason = (
        f"rejected: {delivery['reason']}{detail}"
        if rejected
        else (
            f"accepted: {delivery['items_accepted']} of {delivery['items_listed']} items verified"
            + (f", {delivery['items_rejected']} quarantined" if delivery["items_rejected"] else "")
        )
    )
    metadata = {"status": delivery["status"], "reason": reason}
    if outcome and outcome.rejections:
        metadata["rejections"] = table(
            [
                {"item": row["item_id"] or "(delivery)", "code": row["code"], "detail": row["detail"]}
                for row in outcome.rejections[:50]
            ],
            {"item": "string", "code": "string", "detail": "string"},
        )
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("raw_items"),
        check_name=DELIVERY_ACCEPTED_CHECK,
        passed=not rejected,
        severity=dg.AssetCheckSeverity.ERROR,
        description=reason,
        metadata=metadata,
        partition=ref.partition_key,
        target_materialization_data=judged,
    )


def _record(writer: Catalog, ref: DeliveryRef, outcome: IntakeOutcome, log) -> None:
    partition = ref.partition_key
    writer.write_partition("raw_items", partition, outcome.items)
    writer.write_partition("rejections", partition, outcome.rejections)
    # The deliveries row is written last: its presence says the other two partitions are complete.
    writer.write_partition("deliveries", partition, [outcome.delivery])
    for row in outcome.rejections:
        where = f"item {row['item_id']}" if row["item_id"] is not None else "delivery"
        log.warning(f"{partition} {where} rejected, {row['code']}: {row['detail']}")


def _metadata(outcome: IntakeOutcome) -> dict:
    delivery = outcome.delivery
    preview = "\n".join(
        f"| {row['item_id']} | {row['part']} | {row['bytes']} | `{row['sha256'][:12]}` |"
        for row in outcome.items[:10]
    )
    return {
        "status": delivery["status"],
        "industry": delivery.get("industry") or "",
        "modality": delivery.get("modality") or "",
        "license": delivery.get("license") or "",
        "items_listed": delivery["items_listed"],
        "items_accepted": delivery["items_accepted"],
        "items_rejected": delivery["items_rejected"],
        "bytes_accepted": delivery["bytes_accepted"],
        "dagster/row_count": len(outcome.items),
        "rejected_by_reason": table(
            [
                {"reason": reason, "items": count}
                for reason, count in sorted(outcome.rejected_by_reason.items())
            ],
            {"reason": "string", "items": "int"},
        ),
        "manifest_etag": delivery["manifest_etag"],
        "preview": dg.MetadataValue.md(
            "| item | part | bytes | sha256 |\n|---|---|---|---|\n" + preview
            if preview
            else "_no accepted items_"
        ),
    }
