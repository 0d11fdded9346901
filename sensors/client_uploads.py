"""Sensor `client_uploads`: a delivery is complete when its `manifest.json` (written last) lands."""

import os
from datetime import UTC, datetime

import dagster as dg

from annobase.keys import MANIFEST_NAME, UPLOADS, parse_manifest_key
from assets.intake import reasons
from assets.intake.quarantine import quarantine_invalid_key
from assets.intake.reasons import Reason
from assets.partitions import deliveries_partitions
from orchestration.jobs import intake_job
from resources import ObjectStoreResource
from sensors.upload_listing import ListingCursor, find_new_objects

CLIENT_TAG = "annobase/client_id"
ETAG_TAG = "annobase/manifest_etag"


def _is_manifest(key: str) -> bool:
    return key.endswith("/" + MANIFEST_NAME)


@dg.sensor(
    job=intake_job,
    # not a secret, and the daemon needs it when the code location loads
    minimum_interval_seconds=int(os.environ.get("ANNOBASE_SENSOR_INTERVAL_SECONDS", "30")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests intake of every new or changed delivery manifest under uploads/.",
)
def client_uploads(context: dg.SensorEvaluationContext, object_store: ObjectStoreResource) -> dg.SensorResult:
    store = object_store.open()
    cursor = ListingCursor.parse(context.cursor)
    manifests, next_cursor = find_new_objects(store, UPLOADS, cursor, _is_manifest)

    run_requests, new_partitions = [], []
    for manifest in manifests:
        try:
            ref = parse_manifest_key(manifest.key)
        except ValueError as error:
            record = quarantine_invalid_key(
                store, manifest.key, Reason(reasons.INVALID_UPLOAD_KEY, str(error)), datetime.now(UTC)
            )
            context.log.error(f"{manifest.key!r} rejected ({error}); recorded at {record}")
            continue
        if ref is None:  # a manifest.json deeper inside a delivery is an item file, not a commit marker
            continue
        etag = manifest.etag or getattr(store.head(manifest.key), "etag", None)
        if etag is None:  # deleted between listing and now: nothing to take in
            continue
        partition = ref.partition_key
        if partition not in new_partitions and not context.instance.has_dynamic_partition(
            deliveries_partitions.name, partition
        ):
            new_partitions.append(partition)
        run_requests.append(
            dg.RunRequest(
                run_key=f"{partition}@{etag}",
                partition_key=partition,
                tags={CLIENT_TAG: ref.client_id, ETAG_TAG: etag},
            )
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[deliveries_partitions.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=next_cursor.serialize(),
    )
