"""Sensor `client_uploads`: finds complete deliveries, requests each (manifest, ETag) once, lists only
what is new."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from sensors.client_uploads import client_uploads
from sensors.upload_listing import FAST_KEYS_PER_TICK, KEYS_PER_TURN, ListingCursor, find_new_objects
from simulator import make_delivery, upload_delivery


def tick(instance, object_store_resource, cursor=None) -> dg.SensorResult:
    from resources import CatalogResource

    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "object_store": object_store_resource,
            "catalog": CatalogResource(object_store=object_store_resource),
        },
    ) as context:
        return client_uploads(context)


def apply_partitions(instance, result: dg.SensorResult) -> None:
    """What the daemon does with a tick's dynamic partition requests."""
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def test_a_delivery_is_requested_once_its_manifest_lands(store, object_store_resource, instance):
    delivery = make_delivery(1, "jinneng-mine-safety", "d-2026-11-20-001", "text", 3)
    for path, data in delivery.files.items():  # the client is still uploading: no manifest yet
        store.put(f"uploads/jinneng-mine-safety/d-2026-11-20-001/{path}", data)
    first = tick(instance, object_store_resource)
    assert first.run_requests == [] and first.dynamic_partitions_requests == []

    store.put("uploads/jinneng-mine-safety/d-2026-11-20-001/manifest.json", delivery.manifest_bytes)
    second = tick(instance, object_store_resource, first.cursor)
    etag = store.head("uploads/jinneng-mine-safety/d-2026-11-20-001/manifest.json").etag
    [request] = second.run_requests
    assert request.partition_key == "jinneng-mine-safety/d-2026-11-20-001"
    assert request.run_key == f"jinneng-mine-safety/d-2026-11-20-001@{etag}"
    assert request.tags["annobase/client_id"] == "jinneng-mine-safety"
    [partitions] = second.dynamic_partitions_requests
    assert list(partitions.partition_keys) == ["jinneng-mine-safety/d-2026-11-20-001"]


def test_unchanged_manifests_keep_their_run_key_and_changed_ones_get_a_new_one(
    store, object_store_resource, instance
):
    """Dagster launches a run key once: the same bytes re-uploaded keep their key, new bytes get a new one."""
    first_delivery = make_delivery(2, "yungang-grottoes", "d-001", "image", 2)
    upload_delivery(store, first_delivery)
    first = tick(instance, object_store_resource)
    apply_partitions(instance, first)
    seen = {request.run_key for request in first.run_requests}
    assert len(seen) == 1

    upload_delivery(store, first_delivery)  # identical bytes uploaded again
    again = tick(instance, object_store_resource, first.cursor)
    assert again.run_requests == []  # same ETag: reported once, whichever pass sees it again
    assert again.dynamic_partitions_requests == []  # the partition exists already

    changed = make_delivery(3, "yungang-grottoes", "d-001", "image", 2)
    upload_delivery(store, changed)
    after_change = tick(instance, object_store_resource, again.cursor)
    new_keys = {request.run_key for request in after_change.run_requests} - seen
    assert len(new_keys) == 1 and new_keys.pop().startswith("yungang-grottoes/d-001@")


def test_every_client_has_its_own_high_water_key(store, object_store_resource, instance):
    """A new client, or a client that sorts before the last one listed, is found on the next tick."""
    upload_delivery(store, make_delivery(4, "yungang-grottoes", "d-009", "text", 2))
    first = tick(instance, object_store_resource)
    assert [r.partition_key for r in first.run_requests] == ["yungang-grottoes/d-009"]
    upload_delivery(store, make_delivery(5, "datong-schools", "d-001", "text", 2))
    upload_delivery(store, make_delivery(6, "yungang-grottoes", "d-010", "text", 2))
    later = tick(instance, object_store_resource, first.cursor)
    assert {r.partition_key for r in later.run_requests} == {"datong-schools/d-001", "yungang-grottoes/d-010"}
    assert set(ListingCursor.parse(later.cursor).high_water) == {
        "uploads/datong-schools/",
        "uploads/yungang-grottoes/",
    }


def test_a_delivery_id_that_sorts_before_its_clients_cursor_is_found_by_the_sweep(
    store, object_store_resource, instance
):
    upload_delivery(store, make_delivery(7, "yungang-grottoes", "d-009", "text", 2))
    first = tick(instance, object_store_resource)
    upload_delivery(store, make_delivery(8, "yungang-grottoes", "d-001", "text", 2))  # a late, lower id
    found = [r for r in tick(instance, object_store_resource, first.cursor).run_requests]
    assert [r.partition_key for r in found] == ["yungang-grottoes/d-001"]


def test_a_tick_reports_each_manifest_once_however_many_passes_see_it(store, object_store_resource, instance):
    """The fast path and the sweep both see a fresh manifest; the cursor remembers it was reported."""
    upload_delivery(store, make_delivery(9, "xiehe-clinic", "d-001", "text", 2))
    first = tick(instance, object_store_resource)
    apply_partitions(instance, first)
    assert len(first.run_requests) == 1
    cursor = first.cursor
    for _ in range(3):  # each tick sweeps the whole (small) prefix again
        result = tick(instance, object_store_resource, cursor)
        assert result.run_requests == []
        cursor = result.cursor
    assert "uploads/xiehe-clinic/d-001/manifest.json" in ListingCursor.parse(cursor).reported


def test_a_burst_of_deliveries_is_one_run_per_client_over_a_partition_range(
    store, object_store_resource, instance
):
    """What makes 1,000 deliveries at once cheap: a run per client and tick, not per delivery."""
    for number in range(7):
        client = ("datong-schools", "xiehe-clinic")[number % 2]
        upload_delivery(store, make_delivery(20 + number, client, f"d-{number:03d}", "text", 2))
    result = tick(instance, object_store_resource)
    [added] = result.dynamic_partitions_requests
    assert list(added.partition_keys) == [
        "datong-schools/d-000",
        "datong-schools/d-002",
        "datong-schools/d-004",
        "datong-schools/d-006",
        "xiehe-clinic/d-001",
        "xiehe-clinic/d-003",
        "xiehe-clinic/d-005",
    ]
    by_client = {r.tags["annobase/client_id"]: r for r in result.run_requests}
    assert len(result.run_requests) == 2
    assert by_client["datong-schools"].tags["dagster/asset_partition_range_start"] == "datong-schools/d-000"
    assert by_client["datong-schools"].tags["dagster/asset_partition_range_end"] == "datong-schools/d-006"
    assert by_client["xiehe-clinic"].tags["annobase/deliveries"] == "3"
    # evaluated again from the same cursor (a tick retried), the same runs are asked for
    again = tick(instance, object_store_resource, None)
    assert {r.run_key for r in again.run_requests} == {r.run_key for r in result.run_requests}


def test_runs_are_cut_at_deliveries_per_run(store, object_store_resource, instance, monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("sensors.client_uploads"), "DELIVERIES_PER_RUN", 2)
    for number in range(5):
        upload_delivery(store, make_delivery(40 + number, "datong-schools", f"d-{number:03d}", "text", 1))
    result = tick(instance, object_store_resource)
    ranges = [
        (r.tags.get("dagster/asset_partition_range_start"), r.tags.get("dagster/asset_partition_range_end"))
        for r in result.run_requests
    ]
    assert ranges == [
        ("datong-schools/d-000", "datong-schools/d-001"),
        ("datong-schools/d-002", "datong-schools/d-003"),
        (None, None),
    ]
    assert result.run_requests[-1].partition_key == "datong-schools/d-004"


def test_a_manifest_key_with_invalid_ids_is_quarantined_not_run(store, object_store_resource, instance):
    store.put("uploads/Bad Client/d-001/manifest.json", b"{}")
    result = tick(instance, object_store_resource)
    assert result.run_requests == []
    [record] = list(store.list("quarantine/_invalid_keys/"))
    assert b"invalid_upload_key" in store.get(record.key) and b"Bad Client" in store.get(record.key)
    assert store.get("uploads/Bad Client/d-001/manifest.json") == b"{}"


def test_the_cursor_lists_only_what_is_new(store):
    """After the first tick the fast path starts at the high-water key and the sweep reads a bounded slice."""
    for index in range(30):
        store.put(f"uploads/c/d-{index:03d}/manifest.json", b"{}")
    listed = []

    class CountingStore:
        def __getattr__(self, name):
            return getattr(store, name)

        def list(self, prefix="", start_after=None, page_size=1000):
            for obj in store.list(prefix, start_after, page_size):
                listed.append(obj.key)
                yield obj

    counting = CountingStore()
    now = datetime.now(UTC)
    found, cursor = find_new_objects(
        counting, "uploads/", ListingCursor(), lambda k: True, now, sweep_keys_per_tick=10
    )
    assert len(found) == 30 and cursor.high_water == {"uploads/": "uploads/c/d-029/manifest.json"}
    listed.clear()
    store.put("uploads/c/d-030/manifest.json", b"{}")
    found, cursor = find_new_objects(
        counting, "uploads/", cursor, lambda k: True, now + timedelta(hours=1), sweep_keys_per_tick=10
    )
    assert [obj.key for obj in found][-1] == "uploads/c/d-030/manifest.json"
    assert len(listed) <= 1 + 11, "one new key on the fast path plus one sweep slice"


def ticks_until_caught_up(instance, resource, cursor=None, limit=20) -> tuple[int, str]:
    """Tick as the daemon would until the fast path has nothing left to list; returns the ticks taken."""
    for ticks in range(1, limit + 1):
        result = tick(instance, resource, cursor)
        before = ListingCursor.parse(cursor).high_water
        cursor = result.cursor
        if ListingCursor.parse(cursor).high_water == before:
            return ticks, cursor
    raise AssertionError(f"not caught up after {limit} ticks")


def assert_ticks_stay_bounded(instance, resource, existing: int, new_manifest_key: str, partition: str):
    """A backlog is worked off in bounded slices, one per tick, so every tick stays inside Dagster's
    sensor timeout whatever the bucket holds (how long a tick takes: benchmarks/sensor_tick.py)."""
    ticks, cursor = ticks_until_caught_up(instance, resource)
    assert ticks == -(-existing // FAST_KEYS_PER_TICK) + 1
    resource.open().put(new_manifest_key, b"{}")
    result = tick(instance, resource, cursor)
    assert [r.partition_key for r in result.run_requests] == [partition]


def test_100k_existing_keys_on_the_local_store(tmp_path, instance):
    from resources import ObjectStoreResource

    existing = 100_000
    root = tmp_path / "store" / "annobase"
    for index in range(existing):
        path = root / f"uploads/c{index % 50:03d}/d-{index // 20:06d}/items/i-{index:06d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    resource = ObjectStoreResource(local_root=str(tmp_path / "store"))
    assert_ticks_stay_bounded(
        instance, resource, existing, "uploads/c049/d-999999/manifest.json", "c049/d-999999"
    )


def test_25k_existing_keys_on_seaweedfs(s3_store, seaweedfs, instance):
    """The same on a real S3 server."""
    existing = 25_000
    client = seaweedfs.client()
    keys = [f"uploads/c{i % 50:03d}/d-{i // 20:06d}/items/i-{i:06d}.txt" for i in range(existing)]
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=s3_store.bucket, Key=key, Body=b"x"), keys))
    assert_ticks_stay_bounded(
        instance, s3_store, existing, "uploads/c049/d-999999/manifest.json", "c049/d-999999"
    )


def test_a_manifest_taken_in_is_not_run_again_once_the_cursor_forgot_it(
    store, object_store_resource, resources, instance
):
    """The cursor forgets what it reported after a sweep cycle; the catalog still knows the ETag."""
    from flow_helpers import run_flow_for_delivery

    upload_delivery(store, make_delivery(60, "datong-schools", "d-060", "text", 2))
    first = tick(instance, object_store_resource)
    apply_partitions(instance, first)
    # taken in once every step of the intake job finished with it
    assert run_flow_for_delivery(instance, resources, "datong-schools/d-060").success
    upload_delivery(store, make_delivery(60, "datong-schools", "d-060", "text", 2))  # same bytes
    assert tick(instance, object_store_resource, None).run_requests == []
    upload_delivery(store, make_delivery(61, "datong-schools", "d-060", "text", 3))  # new bytes
    [changed] = tick(instance, object_store_resource, None).run_requests
    assert changed.partition_key == "datong-schools/d-060"


def test_the_fast_path_serves_clients_in_turns_resuming_where_the_last_tick_stopped(store):
    """Budget 6, turns of 4 keys, three clients with 10 new keys each: no client takes a tick's whole
    budget, and each tick starts with the client after the one the previous tick served last."""
    for client in ("a", "b", "c"):
        for index in range(10):
            store.put(f"uploads/{client}/d-{index:03d}/manifest.json", b"{}")
    cursor, served = ListingCursor(), []
    for _ in range(3):
        found, cursor = find_new_objects(
            store,
            "uploads/",
            cursor,
            lambda key: True,
            per_directory=True,
            max_fast_keys=6,
            keys_per_turn=4,
            sweep_keys_per_tick=0,
        )
        served.append("".join(obj.key.split("/")[1] for obj in sorted(found, key=lambda obj: obj.key)))
    assert served == ["aaaabb", "aacccc", "bbbbcc"]
    assert cursor.served_last == "uploads/c/"


def flood(s3_store, client: str, start: int, objects: int) -> None:
    """`objects` new keys of one client, as deliveries of 99 item files and a manifest."""
    keys = []
    for number in range(start, start + objects):
        delivery, position = divmod(number, 100)
        name = "manifest.json" if position == 99 else f"items/i-{position:06d}.txt"
        keys.append(f"uploads/{client}/d-{delivery:06d}/{name}")
    client_s3 = s3_store.open().client
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda key: client_s3.put_object(Bucket=s3_store.bucket, Key=key, Body=b"x"), keys))


def assert_a_flood_delays_another_client_at_most_one_tick(
    s3_store, instance, monkeypatch, flood_per_tick: int, budget: int, turn: int
) -> int:
    """One client writes `flood_per_tick` objects before every tick, more than a tick lists
    (`budget`); another uploads one delivery: requested on the first or the second tick."""
    import functools
    import importlib

    listing = functools.partial(find_new_objects, max_fast_keys=budget, keys_per_turn=turn)
    monkeypatch.setattr(importlib.import_module("sensors.client_uploads"), "find_new_objects", listing)
    store = s3_store.open()
    flooder, other = "beijing-flood", "datong-schools"  # the flooder sorts first
    upload_delivery(store, make_delivery(70, other, "d-000", "text", 2))
    flood(s3_store, flooder, 0, 100)
    first = tick(instance, s3_store)
    apply_partitions(instance, first)
    assert {r.tags["annobase/client_id"] for r in first.run_requests} == {flooder, other}

    cursor, requested_on, flooded = first.cursor, None, 100
    upload_delivery(store, make_delivery(71, other, "d-001", "text", 3))
    for tick_number in (1, 2):
        flood(s3_store, flooder, flooded, flood_per_tick)
        flooded += flood_per_tick
        before = ListingCursor.parse(cursor).high_water[f"uploads/{flooder}/"]
        result = tick(instance, s3_store, cursor)
        apply_partitions(instance, result)
        cursor = result.cursor
        others = {r.partition_key for r in result.run_requests if r.tags["annobase/client_id"] == other}
        if requested_on is None and f"{other}/d-001" in others:
            requested_on = tick_number
        assert ListingCursor.parse(cursor).high_water[f"uploads/{flooder}/"] > before, (
            "the flood is served too"
        )
    assert requested_on in (1, 2)
    print(f"{other}/d-001 requested on tick {requested_on} of a flood of {flood_per_tick:,} objects a tick")
    return requested_on


def test_a_flooding_client_delays_another_by_at_most_one_tick(s3_store, instance, monkeypatch):
    """A tenth of the scale (the budget and turns too), for the default run."""
    assert_a_flood_delays_another_client_at_most_one_tick(
        s3_store, instance, monkeypatch, flood_per_tick=2_500, budget=2_000, turn=100
    )


@pytest.mark.long
def test_a_client_writing_25k_objects_a_tick_delays_another_by_at_most_one_tick(
    s3_store, instance, monkeypatch
):
    assert_a_flood_delays_another_client_at_most_one_tick(
        s3_store, instance, monkeypatch, 25_000, FAST_KEYS_PER_TICK, KEYS_PER_TURN
    )
