"""Sensor `annotation_exports`: a batch is finished when the annotation tool writes its `export.json`."""

import os
from datetime import UTC, datetime

import dagster as dg

from annobase.keys import ANNOTATIONS, batch_of_export_key, is_valid_id
from assets.intake import reasons
from assets.intake.quarantine import quarantine_invalid_key
from assets.intake.reasons import Reason
from assets.partitions import batches_partitions
from orchestration.jobs import annotation_qa_job
from resources import ObjectStoreResource
from sensors.upload_listing import ListingCursor, find_new_objects

EXPORT_ETAG_TAG = "annobase/export_etag"


@dg.sensor(
    job=annotation_qa_job,
    minimum_interval_seconds=int(os.environ.get("ANNOBASE_SENSOR_INTERVAL_SECONDS", "30")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests QA of every new or changed Label Studio export under annotations/.",
)
def annotation_exports(
    context: dg.SensorEvaluationContext, object_store: ObjectStoreResource
) -> dg.SensorResult:
    store = object_store.open()
    cursor = ListingCursor.parse(context.cursor)
    exports, next_cursor = find_new_objects(
        store, ANNOTATIONS, cursor, lambda key: batch_of_export_key(key) is not None
    )
    run_requests = []
    for export in exports:
        batch_id = batch_of_export_key(export.key)
        known = is_valid_id(batch_id) and context.instance.has_dynamic_partition(
            batches_partitions.name, batch_id
        )
        if not known or export.etag is None:
            reason = (
                Reason(reasons.UNKNOWN_BATCH, f"{export.key!r} is not the export of a batch annobase wrote")
                if not known
                else Reason(reasons.SYMBOLIC_LINK, f"{export.key!r} is a symbolic link: never followed")
            )
            record = quarantine_invalid_key(store, export.key, reason, datetime.now(UTC))
            context.log.error(f"{reason.detail}; recorded at {record}")
            continue
        run_requests.append(qa_request(batch_id, export.etag))
    return dg.SensorResult(run_requests=run_requests, cursor=next_cursor.serialize())


def qa_request(batch_id: str, export_etag: str) -> dg.RunRequest:
    """The QA run of one export version: Dagster launches a run key once."""
    return dg.RunRequest(
        run_key=f"{batch_id}@{export_etag}", partition_key=batch_id, tags={EXPORT_ETAG_TAG: export_etag}
    )
