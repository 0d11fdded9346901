"""Sensor `client_uploads`: finds complete deliveries, requests each (manifest, ETag) once, lists only
what is new."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import dagster as dg

from sensors.client_uploads import client_uploads
from sensors.upload_listing import FAST_KEYS_PER_TICK, ListingCursor, find_new_objects
from simulator import make_delivery, upload_delivery


def tick(instance, object_store_resource, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"object_store": object_store_resource}
    )
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
    assert {request.run_key for request in again.run_requests} <= seen
    assert again.dynamic_partitions_requests == []  # the partition exists already

    changed = make_delivery(3, "yungang-grottoes", "d-001", "image", 2)
    upload_delivery(store, changed)
    after_change = tick(instance, object_store_resource, again.cursor)
    new_keys = {request.run_key for request in after_change.run_requests} - seen
    assert len(new_keys) == 1 and new_keys.pop().startswith("yungang-grottoes/d-001@")


def test_a_delivery_that_sorts_before_the_cursor_is_found_by_the_sweep(
    store, object_store_resource, instance
):
    upload_delivery(store, make_delivery(4, "yungang-grottoes", "d-009", "text", 2))
    first = tick(instance, object_store_resource)
    assert [r.partition_key for r in first.run_requests] == ["yungang-grottoes/d-009"]
    # a client id that sorts before everything listed so far: past the fast path's high-water key
    upload_delivery(store, make_delivery(5, "datong-schools", "d-001", "text", 2))
    later = tick(instance, object_store_resource, first.cursor)
    assert "datong-schools/d-001" in {r.partition_key for r in later.run_requests}


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
    assert len(found) == 30 and cursor.high_water_key == "uploads/c/d-029/manifest.json"
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
        before = ListingCursor.parse(cursor).high_water_key
        cursor = result.cursor
        if ListingCursor.parse(cursor).high_water_key == before:
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
