"""Leases held in the object store: one holder at a time for a named piece of work, whichever process,
host or Dagster instance asks, with nothing but the store to agree on.

A lease is a chain of small records, `locks/{name}/{generation}.json`, each written with
`put_if_absent` (S3 `If-None-Match: *`): of two processes racing for the next generation exactly
one writes it. The newest record names the holder (a run id) and when its hold expires, or says
the lease was released. A holder that died without releasing is passed over once its hold expired,
or sooner when the caller can tell its owner is gone (`is_stale`: a Dagster run that ended). A
holder whose hold was taken over learns it from `confirm` before it commits anything. Records are
never removed: the chain is the lease's history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from annobase.object_store import ObjectStore

LOCKS = "locks/"
HELD, RELEASED = "held", "released"
# Racing writers each lose at most once per generation another wrote; past this many, it is contended.
ATTEMPTS = 5


@dataclass(frozen=True)
class LeaseRecord:
    generation: int
    owner: str
    state: str
    acquired_at: str
    expires_at: str

    def holds(self, now: datetime) -> bool:
        return self.state == HELD and datetime.fromisoformat(self.expires_at) > now


class LeaseHeld(Exception):
    """Someone else holds the lease: the caller must not do the work now."""

    def __init__(self, name: str, record: LeaseRecord):
        super().__init__(
            f"{name} is held by {record.owner} (since {record.acquired_at}, until {record.expires_at})"
        )
        self.record = record


class LeaseLost(Exception):
    """The hold expired and another holder took the lease over: commit nothing."""


@dataclass
class Lease:
    store: ObjectStore
    name: str
    record: LeaseRecord

    def confirm(self) -> None:
        """Raises LeaseLost unless this hold is still the newest record and unexpired: called right
        before the step that makes the work visible."""
        newest = newest_record(self.store, self.name)
        if newest != self.record or not self.record.holds(datetime.now(UTC)):
            raise LeaseLost(f"{self.name}: the hold of {self.record.owner} ended; now {newest}")

    def release(self) -> bool:
        """Records the release; False when another holder had already taken the lease over."""
        released = LeaseRecord(
            self.record.generation + 1, self.record.owner, RELEASED, self.record.acquired_at, _now()
        )
        return self.store.put_if_absent(_record_key(self.name, released.generation), _encode(released))


def newest_record(store: ObjectStore, name: str) -> LeaseRecord | None:
    newest = None
    for obj in store.list(f"{LOCKS}{name}/"):
        newest = obj.key  # generations are zero-padded: the last key listed is the newest
    return None if newest is None else LeaseRecord(**json.loads(store.get(newest)))


def acquire(
    store: ObjectStore,
    name: str,
    owner: str,
    ttl: timedelta,
    is_stale: Callable[[LeaseRecord], bool] = lambda record: False,
) -> Lease:
    """Takes the lease for `owner` for `ttl`; raises LeaseHeld when another owner holds it."""
    for _ in range(ATTEMPTS):
        newest = newest_record(store, name)
        now = datetime.now(UTC)
        if newest is not None and newest.owner != owner and newest.holds(now) and not is_stale(newest):
            raise LeaseHeld(name, newest)
        record = LeaseRecord(
            (newest.generation if newest else 0) + 1, owner, HELD, now.isoformat(), (now + ttl).isoformat()
        )
        if store.put_if_absent(_record_key(name, record.generation), _encode(record)):
            return Lease(store, name, record)
    raise LeaseHeld(name, newest_record(store, name))


@contextmanager
def holding(
    store: ObjectStore,
    name: str,
    owner: str,
    ttl: timedelta,
    is_stale: Callable[[LeaseRecord], bool] = lambda record: False,
) -> Iterator[Lease]:
    """The lease held for the `with` block, released when it ends, however it ends."""
    lease = acquire(store, name, owner, ttl, is_stale)
    try:
        yield lease
    finally:
        lease.release()


def _record_key(name: str, generation: int) -> str:
    return f"{LOCKS}{name}/{generation:010d}.json"


def _encode(record: LeaseRecord) -> bytes:
    return json.dumps(asdict(record)).encode()


def _now() -> str:
    return datetime.now(UTC).isoformat()
