"""Asset `raw_items`: a client delivery, verified against its manifest and recorded in the catalog."""

import dagster as dg

from annobase.keys import DeliveryRef
from annobase.settings import load_settings
from assets.intake.intake import IntakeOutcome, ManifestVanished, take_in_delivery
from assets.partitions import deliveries_partitions
from resources import CatalogResource, DaskResource, ObjectStoreResource

DELIVERY_ACCEPTED_CHECK = "delivery_accepted"


@dg.asset(
    partitions_def=deliveries_partitions,
    group_name="intake",
    kinds={"s3", "dask", "duckdb"},
    owners=["team:platform"],
    code_version="1",
    retry_policy=dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL),
    check_specs=[
        dg.AssetCheckSpec(
            DELIVERY_ACCEPTED_CHECK,
            asset="raw_items",
            description="The manifest was accepted and at least one item passed verification.",
        )
    ],
)
def raw_items(
    context: dg.AssetExecutionContext,
    object_store: ObjectStoreResource,
    catalog: CatalogResource,
    dask: DaskResource,
) -> dg.MaterializeResult:
    """One row per verified file of a delivery: upload key, sha256, bytes, client, industry, license.

    Rejected deliveries and items are quarantined with a reason; the run still succeeds, because
    rejecting bad input is intake working, and the `delivery_accepted` check shows it on the asset.
    """
    ref = DeliveryRef.from_partition_key(context.partition_key)
    store = object_store.open()
    try:
        with dask.client() as dask_client:
            outcome = take_in_delivery(store, ref, load_settings(), context.run.run_id, dask_client)
    except ManifestVanished as error:
        raise dg.RetryRequested(max_retries=3, seconds_to_wait=30) from error

    writer = catalog.open()
    partition = ref.partition_key
    writer.write_partition("raw_items", partition, outcome.items)
    writer.write_partition("rejections", partition, outcome.rejections)
    # The deliveries row is written last: its presence says the other two partitions are complete.
    writer.write_partition("deliveries", partition, [outcome.delivery])
    for row in outcome.rejections:
        where = f"item {row['item_id']}" if row["item_id"] is not None else "delivery"
        context.log.warning(f"{ref.partition_key} {where} rejected, {row['code']}: {row['detail']}")

    return dg.MaterializeResult(
        metadata=_metadata(outcome),
        check_results=[
            dg.AssetCheckResult(
                check_name=DELIVERY_ACCEPTED_CHECK,
                passed=outcome.delivery["status"] != "rejected",
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "status": outcome.delivery["status"],
                    "reason": outcome.delivery["reason"] or "",
                    "items_rejected": outcome.delivery["items_rejected"],
                },
            )
        ],
    )


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
        "rejected_by_reason": dg.MetadataValue.json(outcome.rejected_by_reason),
        "manifest_etag": delivery["manifest_etag"],
        "preview": dg.MetadataValue.md(
            "| item | part | bytes | sha256 |\n|---|---|---|---|\n" + preview
            if preview
            else "_no accepted items_"
        ),
    }
