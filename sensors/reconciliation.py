"""Sensor `reconciliation`: every decision the event-driven sensors make, re-derived from state.

`client_uploads`, `annotation_exports` and `delivery_completion` react to events: a new key in a
listing, a run that succeeded. An event can be lost (an evaluation that raised is skipped for good, a
run that crashed is not seen again by a cursor that moved on), and then a delivery is silently never
taken in, an export never judged, a delivery never returned. This sensor compares what the store holds
with what the catalog records, a few clients per tick in turn, and requests whatever is missing, under
the very run keys the other sensors use: a decision already requested by anyone is not requested again.

It leaves the event sensors their turn: what changed within the grace period, and whatever a run in
flight is working on, is theirs (a sensor's requests become runs only after its evaluation, so two
sensors evaluated at once cannot see each other's; the grace period covers that window).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from annobase.keys import MANIFEST_NAME, UPLOADS, DeliveryRef, export_key, is_valid_id
from annobase.object_store import ObjectStore, StoredObject, SymbolicLink
from assets.partitions import deliveries_partitions
from assets.quality.verdicts import on_current_exports
from orchestration.jobs import annotation_qa_job, client_delivery_job, intake_job
from resources import CatalogResource, ObjectStoreResource
from resources.catalog import Catalog
from sensors.annotation_exports import qa_request
from sensors.client_uploads import CLIENT_TAG, already_requested, intake_request
from sensors.delivery_completion import request_under

# A tick reads a client's manifests, exports and verdicts: a few clients per tick keeps it far inside
# the 60 s sensor timeout; every client is visited once per round of ticks.
CLIENTS_PER_TICK = 10
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def grace_period() -> timedelta:
    """How long a new manifest, export or verdict is left to the event sensors (seconds, default 120)."""
    return timedelta(seconds=float(os.environ.get("ANNOBASE_RECONCILE_GRACE_SECONDS", "120")))


@dataclass
class ReconciliationCursor:
    after_client: str = ""  # the last client visited; the next tick starts after it

    @classmethod
    def parse(cls, raw: str | None) -> ReconciliationCursor:
        return cls(**json.loads(raw)) if raw else cls()


@dg.sensor(
    jobs=[intake_job, annotation_qa_job, client_delivery_job],
    minimum_interval_seconds=int(os.environ.get("ANNOBASE_RECONCILE_INTERVAL_SECONDS", "300")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-derives from state what the event sensors decide: deliveries not taken in, exports "
    "not judged, deliveries whose batches all passed but that were not returned; requests each once.",
)
def reconciliation(
    context: dg.SensorEvaluationContext, object_store: ObjectStoreResource, catalog: CatalogResource
) -> dg.SensorResult:
    store, writer = object_store.open(), catalog.open()
    cursor = ReconciliationCursor.parse(context.cursor)
    clients = [
        prefix[len(UPLOADS) : -1]
        for prefix in store.list_prefixes(UPLOADS)
        if is_valid_id(prefix[len(UPLOADS) : -1])
    ]
    turn = [client for client in clients if client > cursor.after_client] + clients
    visited = list(dict.fromkeys(turn))[:CLIENTS_PER_TICK]
    requests: list[dg.RunRequest] = []
    new_partitions: list[str] = []
    settled_before = datetime.now(UTC) - grace_period()
    for client_id in visited:
        untaken, unknown = untaken_manifests(context.instance, store, writer, client_id, settled_before)
        requests += untaken
        new_partitions += unknown
        requests += unjudged_exports(context.instance, store, writer, client_id, settled_before)
        requests += unreturned_deliveries(context.instance, store, writer, client_id, settled_before)
    fresh = [request for request in requests if not already_requested(context.instance, request.run_key)]
    for request in fresh:
        context.log.info(f"reconciliation requests {request.job_name}: {request.run_key}")
    return dg.SensorResult(
        run_requests=fresh,
        dynamic_partitions_requests=[deliveries_partitions.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=json.dumps(asdict(ReconciliationCursor(visited[-1] if visited else ""))),
    )


def in_flight(instance: dg.DagsterInstance, job_name: str, tags: dict[str, str]) -> bool:
    """Whether a run of the job with these tags is queued or running: its outcome is not known yet."""
    runs = dg.RunsFilter(job_name=job_name, tags=tags, statuses=IN_FLIGHT)
    return bool(instance.get_run_records(runs, limit=1))


def untaken_manifests(
    instance: dg.DagsterInstance,
    store: ObjectStore,
    writer: Catalog,
    client_id: str,
    settled_before: datetime,
) -> tuple[list[dg.RunRequest], list[str]]:
    """Intake runs for the client's manifests whose version the catalog has not taken in, and the
    partitions of those deliveries Dagster does not know yet; none while the client's intake runs."""
    if in_flight(instance, intake_job.name, {CLIENT_TAG: client_id}):
        return [], []
    taken = writer.query("client_manifests_taken_in", client_id=client_id)
    taken_in = set(zip(taken.partition, taken.manifest_etag, strict=True))
    requests, unknown = [], []
    for prefix in store.list_prefixes(f"{UPLOADS}{client_id}/"):
        delivery_id = prefix.rstrip("/").rsplit("/", 1)[-1]
        if not is_valid_id(delivery_id):
            continue  # `client_uploads` quarantines keys outside the id rule
        head = _object(store, prefix + MANIFEST_NAME)
        partition = DeliveryRef(client_id, delivery_id).partition_key
        if head is None or (partition, head.etag) in taken_in or head.last_modified > settled_before:
            continue
        if not instance.has_dynamic_partition(deliveries_partitions.name, partition):
            unknown.append(partition)
        requests.append(
            intake_request(client_id, [(partition, head.etag)]).with_replaced_attrs(job_name=intake_job.name)
        )
    return requests, unknown


def _object(store: ObjectStore, key: str) -> StoredObject | None:
    """The object at `key`, None when there is none; a symbolic link (local store) is none either:
    the event sensors record it, and it must not fail this tick."""
    try:
        return store.head(key)
    except SymbolicLink:
        return None


def unjudged_exports(
    instance: dg.DagsterInstance,
    store: ObjectStore,
    writer: Catalog,
    client_id: str,
    settled_before: datetime,
) -> list[dg.RunRequest]:
    """QA runs for the client's exports whose version the catalog has not read."""
    read = writer.query("client_exports_read", client_id=client_id)
    requests = []
    for batch_id, etag in zip(read.batch_id, read.export_etag, strict=True):
        head = _object(store, export_key(batch_id))
        if head is None or head.etag == etag or head.last_modified > settled_before:
            continue
        if not in_flight(instance, annotation_qa_job.name, {"dagster/partition": batch_id}):
            requests.append(
                qa_request(batch_id, head.etag).with_replaced_attrs(job_name=annotation_qa_job.name)
            )
    return requests


def unreturned_deliveries(
    instance: dg.DagsterInstance,
    store: ObjectStore,
    writer: Catalog,
    client_id: str,
    settled_before: datetime,
) -> list[dg.RunRequest]:
    """Delivery runs for the client's deliveries whose batches all passed on their current exports but
    that were not returned under those verdicts."""
    verdicts = on_current_exports(store, writer.query("client_delivery_verdicts", client_id=client_id))
    requests = []
    for delivery_id, gates in verdicts.groupby("delivery_id", sort=True):
        ref = DeliveryRef(client_id, delivery_id)
        if gates.checked_at.max() > settled_before or in_flight(
            instance, client_delivery_job.name, {"dagster/partition": ref.partition_key}
        ):
            continue
        request = request_under(ref, gates)
        if isinstance(request, dg.RunRequest) and returned_under(store, ref) != request.run_key:
            requests.append(request.with_replaced_attrs(job_name=client_delivery_job.name))
    return requests


def returned_under(store: ObjectStore, ref: DeliveryRef) -> str | None:
    """The run key of the verdicts the delivery was last returned under (from its delivery.json)."""
    try:
        returned = json.loads(store.get(f"deliveries/{ref.client_id}/{ref.delivery_id}/delivery.json"))
    except KeyError:
        return None
    return f"{ref.partition_key}@{returned.get('verdicts')}" if isinstance(returned, dict) else None
