"""Sensor `client_uploads`: a delivery is complete when its `manifest.json` (written last) lands."""

import hashlib
import os
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from annobase.keys import MANIFEST_NAME, UPLOADS, parse_manifest_key
from assets.intake import reasons
from assets.intake.quarantine import quarantine_invalid_key
from assets.intake.raw_items import ETAG_TAG
from assets.intake.reasons import Reason
from assets.partitions import DELIVERIES_PER_RUN, deliveries_partitions
from orchestration.jobs import intake_job
from resources import CatalogResource, ObjectStoreResource
from resources.catalog import Catalog
from sensors.upload_listing import ListingCursor, find_new_objects

CLIENT_TAG = "annobase/client_id"
RUN_KEY_TAG = "dagster/run_key"
DELIVERIES_TAG = "annobase/deliveries"
# Dagster's own tags for a run over a partition range (what a single-run backfill sets)
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
LINKED_MANIFEST = "the manifest is a symbolic link (local store), not an uploaded file: never followed"


def _is_manifest(key: str) -> bool:
    return key.endswith("/" + MANIFEST_NAME)


@dg.sensor(
    job=intake_job,
    # not a secret, and the daemon needs it when the code location loads
    minimum_interval_seconds=int(os.environ.get("ANNOBASE_SENSOR_INTERVAL_SECONDS", "30")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests intake of every new or changed delivery manifest under uploads/.",
)
def client_uploads(
    context: dg.SensorEvaluationContext, object_store: ObjectStoreResource, catalog: CatalogResource
) -> dg.SensorResult:
    """One run per client per tick for its new deliveries (a partition range, at most
    DELIVERIES_PER_RUN long); a changed manifest of a known delivery gets a run of its own, and one
    whose ETag the catalog already records as taken in gets none."""
    store, writer = object_store.open(), catalog.open()
    cursor = ListingCursor.parse(context.cursor)
    manifests, next_cursor = find_new_objects(store, UPLOADS, cursor, _is_manifest, per_directory=True)

    arrivals: dict[str, list[tuple[str, str]]] = {}  # client -> [(partition, manifest ETag)], key order
    for manifest in manifests:
        try:
            ref = parse_manifest_key(manifest.key)
        except ValueError as error:
            refuse(context, store, manifest.key, Reason(reasons.INVALID_UPLOAD_KEY, str(error)))
            continue
        if ref is not None and manifest.etag is None:
            refuse(context, store, manifest.key, Reason(reasons.SYMBOLIC_LINK, LINKED_MANIFEST))
            continue
        if ref is None:  # a manifest.json deeper inside a delivery is an item file, not a commit marker
            continue
        arrivals.setdefault(ref.client_id, []).append((ref.partition_key, manifest.etag))

    run_requests, new_partitions = [], []
    for client_id, deliveries in sorted(arrivals.items()):
        new = []
        for partition, etag in deliveries:
            if not context.instance.has_dynamic_partition(deliveries_partitions.name, partition):
                new.append((partition, etag))
            elif not taken_in(writer, partition, etag):
                request = intake_request(client_id, [(partition, etag)])
                # `reconciliation` asks under the same key (and adds the partition first): Dagster
                # skips a run key only within one sensor, so the other sensor's run is looked up
                if not already_requested(context.instance, request.run_key):
                    run_requests.append(request)
        # added in this order, a client's new deliveries are a contiguous range of the partitions
        new_partitions += [partition for partition, _ in new]
        run_requests += [
            intake_request(client_id, new[start : start + DELIVERIES_PER_RUN])
            for start in range(0, len(new), DELIVERIES_PER_RUN)
        ]
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[deliveries_partitions.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=next_cursor.serialize(),
    )


def refuse(context: dg.SensorEvaluationContext, store, key: str, reason: Reason) -> None:
    """A manifest that cannot be taken in as such is recorded, by its key's hash, and never run."""
    record = quarantine_invalid_key(store, key, reason, datetime.now(UTC))
    context.log.error(f"{key!r} rejected ({reason.code}: {reason.detail}); recorded at {record}")


def already_requested(instance: dg.DagsterInstance, run_key: str) -> bool:
    """Whether any sensor (or the demo) already launched a run under this key."""
    return bool(instance.get_run_records(dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1))


def taken_in(writer: Catalog, partition: str, etag: str) -> bool:
    """Whether the catalog records this very manifest version as taken in, every step of it finished
    (same bytes uploaded again, long after the cursor forgot it)."""
    delivery = writer.read_partition("deliveries", partition, missing_ok=True)
    finished = ~delivery.get("in_progress", pd.Series(False, index=delivery.index)).fillna(False).astype(bool)
    return bool(((delivery.manifest_etag == etag) & finished).any())


def intake_request(client_id: str, deliveries: list[tuple[str, str]]) -> dg.RunRequest:
    """The run for consecutive deliveries of one client; its run key names every (delivery, ETag),
    so Dagster launches it once however often a tick is evaluated again, and its config passes each
    delivery's ETag to intake, which reads exactly that manifest version."""
    tags = {CLIENT_TAG: client_id}
    run_config = {"ops": {"raw_items": {"config": {"manifest_etags": dict(deliveries)}}}}
    if len(deliveries) == 1:
        [(partition, etag)] = deliveries
        return dg.RunRequest(
            run_key=f"{partition}@{etag}",
            partition_key=partition,
            tags={**tags, ETAG_TAG: etag},
            run_config=run_config,
        )
    first, last = deliveries[0][0], deliveries[-1][0]
    digest = hashlib.sha256("\n".join(f"{p}@{e}" for p, e in deliveries).encode()).hexdigest()[:16]
    return dg.RunRequest(
        run_key=f"{first}...{last}@{digest}",
        tags={**tags, RANGE_START_TAG: first, RANGE_END_TAG: last, DELIVERIES_TAG: str(len(deliveries))},
        run_config=run_config,
    )
