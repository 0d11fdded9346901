"""Finding new objects under a prefix without listing the whole bucket every tick.

Two passes share one cursor:
- the *fast path* lists only the keys after the highest key seen so far (S3 `StartAfter`), which
  is every new key when ids grow, as delivery and batch ids do. With `per_directory` it keeps a
  high-water key for every 'directory' one level below the prefix (a client under `uploads/`),
  found by one Delimiter listing, so a new delivery of any client is found on the next tick, not
  only of the client that sorts last. The tick's key budget is served to the directories in turns
  of KEYS_PER_TURN, round-robin, starting after the directory the previous tick served last: a
  client writing more keys than a tick lists delays the others by at most one tick, never starves
  them (it only works off its own backlog more slowly);
- the *sweep* walks the whole prefix a few pages per tick and reports objects modified since the
  previous sweep began, so a key that sorts before its directory's high-water mark (a re-uploaded
  manifest, a late delivery id) is found within one sweep cycle.
An object found by both passes, or by two sweeps, or uploaded again with the same bytes, is
reported once: the cursor remembers what it reported (key and ETag) for as long as a sweep could
report it again. A symbolic link (which only the local store can hold) is reported with no ETag.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta

from annobase.object_store import ObjectStore, StoredObject, SymbolicLink

# Clocks of the sensor host and the S3 server may differ; the sweep looks this far back as well.
CLOCK_SLACK = timedelta(minutes=5)
# Work per tick is bounded so a tick stays far inside Dagster's 60 s sensor timeout whatever the
# bucket holds (SeaweedFS lists about 4,000 keys/s here, AWS more); a backlog is worked off over
# the following ticks, from the cursor. The sweep only has to find what the per-client fast path
# cannot (re-uploads, out-of-order ids), so it takes a small slice: a tick stays under a second on
# top of the new keys, and 100,000 keys are swept in 50 ticks.
FAST_KEYS_PER_TICK = 20_000
SWEEP_KEYS_PER_TICK = 2_000
# A directory's turn on the fast path: one S3 page, so a turn is one request.
KEYS_PER_TURN = 1_000


@dataclass
class ListingCursor:
    high_water: dict[str, str] = field(default_factory=dict)  # directory -> highest key listed in it
    served_last: str = ""  # the directory whose turn the previous tick's fast path ended on
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
    keys_per_turn: int = KEYS_PER_TURN,
) -> tuple[list[StoredObject], ListingCursor]:
    """Objects under `prefix` for which `wanted(key)` holds and that are new since `cursor`."""
    now = now or datetime.now(UTC)
    found: dict[str, StoredObject] = {}
    high_water = dict(cursor.high_water)
    directories = store.list_prefixes(prefix) if per_directory else [prefix]
    served_last = _fast_path(
        store, directories, cursor.served_last, high_water, wanted, found, max_fast_keys, keys_per_turn
    )

    sweep = ListingCursor(
        high_water,
        served_last,
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
    found = {key: obj if obj.etag else _with_etag(store, obj) for key, obj in found.items()}
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


def _with_etag(store: ObjectStore, obj: StoredObject) -> StoredObject | None:
    """The object as `head` sees it (None if gone since listed); a symbolic link in the local store
    stays without an ETag, for the sensor to refuse it rather than fail its tick."""
    try:
        return store.head(obj.key)
    except SymbolicLink:
        return obj


def _fast_path(
    store: ObjectStore,
    directories: list[str],
    served_last: str,
    high_water: dict[str, str],
    wanted: Callable[[str], bool],
    found: dict[str, StoredObject],
    budget: int,
    keys_per_turn: int,
) -> str:
    """Lists each directory after its high-water key, `keys_per_turn` keys a turn, round-robin from the
    directory after `served_last` until the budget is spent or every directory is listed to its end;
    updates `high_water` and `found` and returns the directory served last."""
    start = next((n for n, directory in enumerate(directories) if directory > served_last), 0)
    turns = deque(directories[start:] + directories[:start])
    while turns and budget > 0:
        directory = turns.popleft()
        turn = min(keys_per_turn, budget)
        listed = 0
        for obj in store.list(directory, start_after=high_water.get(directory) or None, page_size=turn):
            high_water[directory] = obj.key
            if wanted(obj.key):
                found[obj.key] = obj
            listed += 1
            if listed == turn:
                turns.append(directory)  # it may hold more: another turn after the others had theirs
                break
        budget -= listed
        served_last = directory
    return served_last
