"""Finding new objects under a prefix without listing the whole bucket every tick.

Two passes share one cursor:
- the *fast path* lists only keys after the highest key seen so far (S3 `StartAfter`), which is
  every new key when ids grow, as delivery and batch ids do;
- the *sweep* walks the whole prefix a few pages per tick and reports objects modified since the
  previous sweep began, so a key that sorts before the high-water mark (a late client id, a
  re-uploaded manifest) is found within one sweep cycle.
Duplicates between the passes are harmless: run keys carry the ETag, so Dagster launches each
(object, content) once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from resources.object_store import ObjectStore, StoredObject

# Clocks of the sensor host and the S3 server may differ; the sweep looks this far back as well.
CLOCK_SLACK = timedelta(minutes=5)
# Work per tick is bounded so a tick stays far inside Dagster's 60 s sensor timeout whatever the
# bucket holds (SeaweedFS lists about 4,000 keys/s here, AWS more); a backlog is worked off over
# the following ticks, from the cursor.
FAST_KEYS_PER_TICK = 20_000
SWEEP_KEYS_PER_TICK = 5_000


@dataclass
class ListingCursor:
    high_water_key: str = ""
    sweep_after: str = ""
    sweep_started: str = ""
    previous_sweep_started: str = ""

    @classmethod
    def parse(cls, raw: str | None) -> ListingCursor:
        return cls(**json.loads(raw)) if raw else cls()

    def serialize(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def find_new_objects(
    store: ObjectStore,
    prefix: str,
    cursor: ListingCursor,
    wanted: Callable[[str], bool],
    now: datetime | None = None,
    max_fast_keys: int = FAST_KEYS_PER_TICK,
    sweep_keys_per_tick: int = SWEEP_KEYS_PER_TICK,
) -> tuple[list[StoredObject], ListingCursor]:
    """Objects under `prefix` for which `wanted(key)` holds and that are new since `cursor`."""
    now = now or datetime.now(UTC)
    found: dict[tuple[str, str | None], StoredObject] = {}
    listed = 0
    high_water = cursor.high_water_key
    for obj in store.list(prefix, start_after=cursor.high_water_key or None):
        high_water = obj.key
        if wanted(obj.key):
            found[(obj.key, obj.etag)] = obj
        listed += 1
        if listed >= max_fast_keys:
            break

    sweep = ListingCursor(
        high_water, cursor.sweep_after, cursor.sweep_started or now.isoformat(), cursor.previous_sweep_started
    )
    # Everything older than the previous sweep's start was reported by it (or, before the first
    # sweep completes, by the first tick's fast path, which listed the prefix from the start).
    since = datetime.fromisoformat(sweep.previous_sweep_started or sweep.sweep_started) - CLOCK_SLACK
    swept = 0
    reached_end = True
    for obj in store.list(prefix, start_after=cursor.sweep_after or None):
        if swept >= sweep_keys_per_tick:
            reached_end = False
            break
        swept += 1
        sweep.sweep_after = obj.key
        if wanted(obj.key) and obj.last_modified >= since:
            found[(obj.key, obj.etag)] = obj
    if reached_end:
        sweep.previous_sweep_started = sweep.sweep_started
        sweep.sweep_started = now.isoformat()
        sweep.sweep_after = ""
    return sorted(found.values(), key=lambda obj: obj.key), sweep
