"""Asset `raw_items`: a client delivery, verified against its manifest and recorded in the catalog."""

import warnings
from collections.abc import Iterator

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from pydantic import Field

from annobase import ledger
from annobase.keys import DeliveryRef
from annobase.leases import LeaseHeld
from annobase.settings import load_settings
from assets.evidence import table
from assets.intake import delivery_lease
from assets.intake.intake import (
    IntakeOutcome,
    ManifestSuperseded,
    ManifestVanished,
    current_etag,
    internal_error_outcome,
    take_in_delivery,
)
from assets.partitions import deliveries_backfill_policy, deliveries_of, deliveries_partitions
from resources import CatalogResource, DaskResource, ObjectStoreResource
from resources.catalog import Catalog

DELIVERY_ACCEPTED_CHECK = "delivery_accepted"
ETAG_TAG = "annobase/manifest_etag"  # a single-delivery run's manifest version (sensors set it)
INTAKE_RETRIES = 3


class IntakeConfig(dg.Config):
    """The manifest version (ETag) each delivery of the run was requested for, by partition key: the
    run reads exactly that version (`If-Match`) and leaves a delivery whose manifest changed since."""

    manifest_etags: dict[str, str] = Field(default_factory=dict)


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
    retry_policy=dg.RetryPolicy(max_retries=INTAKE_RETRIES, delay=10, backoff=dg.Backoff.EXPONENTIAL),
    check_specs=[delivery_accepted],
)
def raw_items(
    context: dg.AssetExecutionContext,
    config: IntakeConfig,
    object_store: ObjectStoreResource,
    catalog: CatalogResource,
    dask: DaskResource,
) -> Iterator[dg.MaterializeResult]:
    """One row per verified file of a delivery: upload key, sha256, bytes, client, industry, license.

    Rejected deliveries and items are quarantined with a reason; the run still succeeds, because
    rejecting bad input is intake working, and the `delivery_accepted` check shows it on the asset.
    Each delivery of a range run is taken in on its own, so a bad one never stops the others: even
    an error no rejection code names quarantines only its delivery (`internal_error`).
    """
    store, writer, settings = object_store.open(), catalog.open(), load_settings()
    run_id = context.run.run_id
    decided: list[tuple[DeliveryRef, IntakeOutcome | str]] = []  # an outcome, or why there is none
    deferred: dict[str, str] = {}
    with dask.client() as dask_client:
        for ref in deliveries_of(context):
            partition = ref.partition_key
            try:
                lease = delivery_lease.take(context, store, ref, settings.limits.lease_wait_seconds)
            except LeaseHeld as held:
                deferred[partition] = str(held)
                continue
            etag = None
            try:
                etag = requested_etag(context, config, ref) or current_etag(store, ref)
                outcome = take_in_delivery(store, ref, settings, run_id, dask_client, etag)
                ledger.record_intake(store, ref, outcome, run_id)  # before the rows: write-ahead
                _record(writer, ref, outcome, context.log)
            except (ManifestVanished, ManifestSuperseded) as gone:
                # deleted or replaced since the run was requested: the new version's own run takes it in
                lease.release()
                status = "superseded" if isinstance(gone, ManifestSuperseded) else "manifest_vanished"
                context.log.warning(f"{partition}: {gone}; nothing taken in ({status})")
                context.add_asset_metadata(
                    {"status": status, "manifest_etag": etag or ""}, partition_key=partition
                )
                decided.append((ref, status))
                continue
            except Exception as error:
                if is_transient(error) and context.retry_number < INTAKE_RETRIES:
                    raise  # the store or the cluster, not the delivery: the step is retried
                outcome = record_internal_error(context, store, writer, ref, error, "intake", etag or "")
            context.add_asset_metadata(_metadata(outcome), partition_key=partition)
            decided.append((ref, outcome))

    if deferred:
        # another run still works on these deliveries: retried (the others are taken in again, alike)
        raise dg.Failure(
            description=f"{len(deferred)} deliveries are held by another run: {sorted(deferred)}",
            metadata={"held": dg.MetadataValue.json(deferred)},
        )
    yield dg.MaterializeResult()
    # each delivery's verdict names the materialization it judged, which the UI needs to show it as
    # current on that partition (an AssetCheckResult would cover only a single-partition step)
    for ref, outcome in decided:
        context.log_event(_accepted_evaluation(ref, outcome, _judged(context.instance, ref)))
    yield dg.Output(
        None, output_name=context.assets_def.get_output_name_for_asset_check_key(delivery_accepted.key)
    )


def requested_etag(context: dg.AssetExecutionContext, config: IntakeConfig, ref: DeliveryRef) -> str | None:
    """The manifest version the run was requested for: from its config (sensors name every delivery's
    ETag there) or, for a single delivery, its ETag tag; None for a run launched by hand."""
    if etag := config.manifest_etags.get(ref.partition_key):
        return etag
    if len(context.partition_keys) == 1:
        return context.run.tags.get(ETAG_TAG)
    return None


def is_transient(error: BaseException) -> bool:
    """Whether `error` came from the services (a store or cluster connection, a server's 5xx), not
    from the delivery: such a step is retried, and only its last attempt quarantines the delivery."""
    from botocore.exceptions import BotoCoreError, ClientError
    from distributed.comm.core import CommClosedError

    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or status in (408, 429)
    return isinstance(error, (BotoCoreError, ConnectionError, TimeoutError, CommClosedError))


def record_internal_error(
    context, store, writer: Catalog, ref: DeliveryRef, error: BaseException, step: str, etag: str
) -> IntakeOutcome:
    """Quarantine the delivery with `internal_error` and record it as rejected (its intake partitions
    emptied): the run's later steps pass it through as they pass any rejected delivery."""
    context.log.error(f"{ref.partition_key}: {step} failed, quarantined: {type(error).__name__}")
    outcome = internal_error_outcome(store, ref, error, step, etag, context.run.run_id)
    ledger.record_intake(store, ref, outcome, context.run.run_id)
    _record(writer, ref, outcome, context.log)
    return outcome


def _judged(instance: dg.DagsterInstance, ref: DeliveryRef) -> AssetCheckEvaluationTargetMaterializationData:
    """The delivery's materialization of this run, which its verdict judged."""
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(dg.AssetKey("raw_items"), asset_partitions=[ref.partition_key]), limit=1
    ).records
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def _accepted_evaluation(
    ref: DeliveryRef, outcome: IntakeOutcome | str, judged: AssetCheckEvaluationTargetMaterializationData
) -> dg.AssetCheckEvaluation:
    """`delivery_accepted` for one delivery: a run may cover a range of deliveries, and each partition
    gets its own verdict. A delivery whose manifest was replaced or deleted meanwhile (`outcome` says
    which) is a warning: the new version's own run judges it."""
    if isinstance(outcome, str):
        reason = f"{outcome}: the manifest changed after the run was requested; nothing taken in"
        return dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("raw_items"),
            check_name=DELIVERY_ACCEPTED_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=reason,
            metadata={"status": outcome, "reason": reason},
            partition=ref.partition_key,
            target_materialization_data=judged,
        )
    delivery = outcome.delivery
    rejected = delivery["status"] == "rejected"
    detail = f" ({outcome.rejections[0]['detail'][:160]})" if rejected and outcome.rejections else ""
    reason = (
        f"rejected: {delivery['reason']}{detail}"
        if rejected
        else (
            f"accepted: {delivery['items_accepted']} of {delivery['items_listed']} items verified"
            + (f", {delivery['items_rejected']} quarantined" if delivery["items_rejected"] else "")
        )
    )
    metadata = {"status": delivery["status"], "reason": reason}
    if outcome.rejections:
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
