"""Sensor `delivery_completion`: when a batch's QA run succeeds, return its delivery if every batch passed.

The run key names the verdicts the delivery is returned under (each batch with the export version its
passed verdict judged): however many QA runs of the delivery's batches succeed at once, and whichever
sensor asks (this one, or `reconciliation` re-deriving the same decision from state), one set of
verdicts leads to one delivery run, and a rework that changes a verdict leads to a new one.
"""

import dagster as dg
import pandas as pd

from annobase.keys import DeliveryRef
from assets.delivery.client_deliveries import not_returned, reported_without_run
from assets.quality.verdicts import on_current_exports, verdicts_digest
from orchestration.jobs import annotation_qa_job, client_delivery_job
from resources import CatalogResource, ObjectStoreResource
from resources.catalog import Catalog

CLIENT_TAG = "annobase/client_id"


def delivery_request(store, writer: Catalog, ref: DeliveryRef) -> dg.RunRequest | dg.SkipReason:
    """The run returning `ref` under its batches' current verdicts, or why it must wait."""
    gates = on_current_exports(
        store, writer.query("delivery_gate_status", client_id=ref.client_id, delivery_id=ref.delivery_id)
    )
    return request_under(ref, gates)


def request_under(ref: DeliveryRef, gates: pd.DataFrame) -> dg.RunRequest | dg.SkipReason:
    """The run returning `ref` under `gates` (its batches' verdicts on their current exports), or why
    it must wait."""
    if gates.empty:
        return dg.SkipReason(f"{ref.partition_key} has no batches")
    waiting = gates[gates.passed.ne(True)]
    if not waiting.empty:
        return dg.SkipReason(
            f"{ref.partition_key} waits: "
            + ", ".join(
                f"{batch} for {why}" for batch, why in zip(waiting.batch_id, waiting.waiting_for, strict=True)
            )
        )
    return dg.RunRequest(
        partition_key=ref.partition_key,
        run_key=f"{ref.partition_key}@{verdicts_digest(gates)}",
        tags={CLIENT_TAG: ref.client_id},
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[annotation_qa_job],
    request_job=client_delivery_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests the client delivery of a delivery whose batches have all passed the gate.",
)
def delivery_completion(
    context: dg.RunStatusSensorContext, catalog: CatalogResource, object_store: ObjectStoreResource
):
    batch_id = context.dagster_run.tags.get("dagster/partition")
    writer = catalog.open()
    batch = writer.query("batch_info", batch_id=batch_id)
    if batch.empty:
        return dg.SkipReason(f"batch {batch_id!r} is not in the catalog")
    ref = DeliveryRef(batch.client_id.iloc[0], batch.delivery_id.iloc[0])
    return with_its_check(context.instance, ref, delivery_request(object_store.open(), writer, ref))


def with_its_check(instance: dg.DagsterInstance, ref: DeliveryRef, decision: dg.RunRequest | dg.SkipReason):
    """A delivery held back also shows on its `client_deliveries` partition, with why (a warning),
    reported once (see `reported_without_run`)."""
    if isinstance(decision, dg.RunRequest) or reported_without_run(instance, ref.partition_key):
        return decision
    why = decision.skip_message.removeprefix(f"{ref.partition_key} ")
    return dg.SensorResult(skip_reason=decision, asset_events=[not_returned(ref.partition_key, why)])
