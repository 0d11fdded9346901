"""One run at a time per delivery: two runs of one delivery (an old manifest version's and the new
one's, or a run launched twice) never interleave their intake, cleaning and batching.

A lease in the store (`annobase.leases`, `locks/intake/{client_id}/{delivery_id}/`), not Dagster's
concurrency: pools and run-tag limits are per op or per run, so they cannot name each delivery of a
range run, and they bind only runs queued on one instance (`execute_in_process`, a second instance
and retried runs go around them). `raw_items` takes the lease before it reads the manifest and keeps
it while `clean_items` and `annotation_batches` of the same run work on the delivery; the last step
gives it back. A run that ended without giving it back (it crashed) is passed over at once.
"""

from __future__ import annotations

import time
from datetime import timedelta

import dagster as dg

from annobase.keys import DeliveryRef
from annobase.leases import HELD, Lease, LeaseHeld, LeaseRecord, acquire, newest_record
from annobase.object_store import ObjectStore

# Longer than any run may live (run monitoring's max_runtime_seconds, 2 h): a live run never loses it
LEASE_TTL = timedelta(hours=3)
POLL_SECONDS = 2.0


def lease_name(ref: DeliveryRef) -> str:
    return f"intake/{ref.client_id}/{ref.delivery_id}"


def take(
    context: dg.AssetExecutionContext, store: ObjectStore, ref: DeliveryRef, wait_seconds: float
) -> Lease:
    """The delivery's lease for this run, waiting up to `wait_seconds` while another live run holds
    it; LeaseHeld when it is still held then."""

    def run_ended(record: LeaseRecord) -> bool:
        run = context.instance.get_run_by_id(record.owner)
        return run is not None and run.is_finished

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return acquire(store, lease_name(ref), context.run.run_id, LEASE_TTL, run_ended)
        except LeaseHeld as held:
            if time.monotonic() >= deadline:
                raise
            context.log.info(f"{ref.partition_key}: waiting for run {held.record.owner} to finish with it")
            time.sleep(POLL_SECONDS)


def held_by(store: ObjectStore, ref: DeliveryRef, run_id: str) -> Lease | None:
    """The lease as this run holds it, or None when it does not (any more)."""
    record = newest_record(store, lease_name(ref))
    if record is None or record.owner != run_id or record.state != HELD:
        return None
    return Lease(store, lease_name(ref), record)


def give_back(store: ObjectStore, ref: DeliveryRef, run_id: str) -> None:
    """Release the delivery's lease if this run holds it."""
    if (lease := held_by(store, ref, run_id)) is not None:
        lease.release()
