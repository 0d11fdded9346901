"""Finding new objects under a prefix without listing the whole bucket every tick.

Two passes share one cursor:
- the *fast path* lists only the keys after the highest key seen so far (S3 `StartAfter`), which
  is every new key when ids grow, as delivery and batch ids do. With `per_directory` it keeps a
  high-water key for every 'directory' one level below the prefix (a client under `uploads/`),
  found by one Delimiter listing, so a new delivery of any client is found on the next tick, not
  only of the client that sorts last;
- the *sweep* walks the whole prefix a few pages per tick and reports objects modified since the
  previous sweep began, so a key that sorts before its directory's high-water mark (a re-uploaded
  manifest, a late delivery id) is found within one sweep cycle.
An object found by both passes, or by two sweeps, or uploaded again with the same bytes, is
reported once: the cursor remembers what it reported (key and ETag) for as long as a sweep could
report it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta

from annobase.object_store import ObjectStore, StoredObject

# Clocks of the sensor host and the S3 server may differ; the sweep looks this far back as well.
CLOCK_SLACK = timedelta(minutes=5)
# Work per tick is bounded so a tick stays far inside Dagster's 60 s sensor timeout whatever the
# bucket holds (SeaweedFS lists about 4,000 keys/s here, AWS more); a backlog is worked off over
# the following ticks, from the cursor. The sweep only has to find what the per-client fast path
# cannot (re-uploads, out-of-order ids), so it takes a small slice: a tick stays under a second on
# top of the new keys, and 100,000 keys are swept in 50 ticks.
FAST_KEYS_PER_TICK = 20_000
SWEEP_KEYS_PER_TICK = 2_000


@dataclass
class ListingCursor:
    high_water: dict[str, str] = field(default_factory=dict)  # directory -> highest key listed in it
    sweep_after: str = ""
    sweep_started: str = ""
    previous_sweep_started: str = ""
    # key -> [content identity, last modified] of what was reported and a sweep may still see
    reported: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> ListingCursor:
        """The cursor a tick stored; fields of older cursor versions are dropped, not fatal."""
        if not raw:
            return cls()
        known = {spec.name for spec in fields(cls)}
        return cls(**{name: value for name, value in json.loads(raw).items() if name in known})

    def serialize(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def sweep_since(self) -> datetime:
        """Objects modified before this were reported by an earlier tick (the first tick's fast path
        lists the prefix from the start, and every sweep reports what changed since the one before)."""
        return datetime.fromisoformat(self.previous_sweep_started or self.sweep_started) - CLOCK_SLACK


def find_new_objects(
    store: ObjectStore,
    prefix: str,
    cursor: ListingCursor,
    wanted: Callable[[str], bool],
    now: datetime | None = None,
    max_fast_keys: int = FAST_KEYS_PER_TICK,
    sweep_keys_per_tick: int = SWEEP_KEYS_PER_TICK,
    per_directory: bool = False,
) -> tuple[list[StoredObject], ListingCursor]:
    """Objects under `prefix` for which `wanted(key)` holds and that are new since `cursor`."""
    now = now or datetime.now(UTC)
    found: dict[str, StoredObject] = {}
    high_water = dict(cursor.high_water)
    budget = max_fast_keys
    for directory in store.list_prefixes(prefix) if per_directory else [prefix]:
        if budget <= 0:
            break
        for obj in store.list(directory, start_after=high_water.get(directory) or None):
            high_water[directory] = obj.key
            if wanted(obj.key):
                found[obj.key] = obj
            budget -= 1
            if budget <= 0:
                break

    sweep = ListingCursor(
        high_water,
        cursor.sweep_after,
        cursor.sweep_started or now.isoformat(),
        cursor.previous_sweep_started,
    )
    since = sweep.sweep_since()
    swept = 0
    reached_end = True
    for obj in store.list(prefix, start_after=cursor.sweep_after or None):
        if swept >= sweep_keys_per_tick:
            reached_end = False
            break
        swept += 1
        sweep.sweep_after = obj.key
        if wanted(obj.key) and obj.last_modified >= since:
            found[obj.key] = obj
    if reached_end:
        sweep.previous_sweep_started = sweep.sweep_started
        sweep.sweep_started = now.isoformat()
        sweep.sweep_after = ""

    # content identity is the ETag; stores that do not list it (the local one) are asked per object
    found = {key: obj if obj.etag else store.head(key) for key, obj in found.items()}
    new = [
        obj
        for key, obj in sorted(found.items())
        if obj is not None and cursor.reported.get(key, [""])[0] != obj.etag
    ]
    reported = dict(cursor.reported)
    reported.update((obj.key, [obj.etag, obj.last_modified.isoformat()]) for obj in new)
    forget_before = sweep.sweep_since()
    sweep.reported = {
        key: entry for key, entry in reported.items() if datetime.fromisoformat(entry[1]) >= forget_before
    }
    return new, sweep
