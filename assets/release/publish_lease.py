"""One publish of an industry at a time, however it was launched (UI, CLI, schedule, another instance).

Dagster's run-tag limit (`annobase/publish` in deploy/dagster.yaml) only queues runs of one instance;
`execute_in_process`, a second instance or a run launched around the queue ignore it, and two
publishes at once would pick the same version number and write over each other's files. So the
choice of the version and the writing of the release are done holding a lease in the store itself
(`annobase.leases`): the second run refuses with the holder's run id, writing nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg

from annobase.leases import Lease, LeaseHeld, LeaseRecord, holding
from annobase.object_store import ObjectStore

# Longer than any run may live (run monitoring's max_runtime_seconds, 2 h, in deploy/dagster.yaml),
# so a live publish never loses its hold; a holder that died unnoticed blocks the next one this long
# at most, and not at all once its run is recorded as ended.
LEASE_TTL = timedelta(hours=3)


def lease_name(industry: str) -> str:
    return f"publish/{industry}"


@contextmanager
def publishing(context: dg.AssetExecutionContext, store: ObjectStore, industry: str) -> Iterator[Lease]:
    """The industry's publish lease for this run; a dg.Failure naming the holder if another run has it."""

    def run_ended(record: LeaseRecord) -> bool:  # a run of this instance that crashed holding it
        run = context.instance.get_run_by_id(record.owner)
        return run is not None and run.is_finished

    try:
        with holding(store, lease_name(industry), context.run.run_id, LEASE_TTL, run_ended) as lease:
            yield lease
    except LeaseHeld as held:
        raise dg.Failure(
            description=f"not published: another publish of {industry} is running ({held}); "
            "this run wrote nothing",
            metadata={"held_by": held.record.owner, "held_until": held.record.expires_at},
            allow_retries=False,
        ) from held
