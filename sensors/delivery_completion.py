"""Sensor `delivery_completion`: when a batch's QA run succeeds, return its delivery if every batch passed."""

import dagster as dg

from orchestration.jobs import annotation_qa_job, client_delivery_job
from resources import CatalogResource


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[annotation_qa_job],
    request_job=client_delivery_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests the client delivery of a delivery whose batches have all passed the gate.",
)
def delivery_completion(context: dg.RunStatusSensorContext, catalog: CatalogResource):
    batch_id = context.dagster_run.tags.get("dagster/partition")
    writer = catalog.open()
    batch = writer.query("batch_info", batch_id=batch_id)
    if batch.empty:
        return dg.SkipReason(f"batch {batch_id!r} is not in the catalog")
    client_id, delivery_id = batch.client_id.iloc[0], batch.delivery_id.iloc[0]
    gates = writer.query("delivery_gate_status", client_id=client_id, delivery_id=delivery_id)
    if not gates.passed.eq(True).all():
        waiting = gates.batch_id[gates.passed.ne(True)].tolist()
        return dg.SkipReason(f"{client_id}/{delivery_id} waits for batches {waiting}")
    return dg.RunRequest(
        partition_key=f"{client_id}/{delivery_id}",
        run_key=f"{client_id}/{delivery_id}@{context.dagster_run.run_id}",
        tags={"annobase/client_id": client_id},
    )
