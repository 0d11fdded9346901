"""The local store never follows a symbolic link (issue 14 §2): links planted in `uploads/` point out
of the root, into another client's delivery, or at themselves; each read, list and copy refuses
them, intake rejects the items with `symbolic_link`, and the sensor records a linked manifest
instead of failing its tick."""

import json
import os

import pytest
from flow_helpers import run_intake
from test_client_uploads_sensor import tick

from annobase.object_store import SymbolicLink
from resources import CatalogResource, ObjectStoreResource
from simulator import make_delivery, upload_delivery


@pytest.fixture
def local(tmp_path):
    resource = ObjectStoreResource(local_root=str(tmp_path / "store"), bucket="annobase")
    return resource, resource.open()


@pytest.fixture
def outside(tmp_path):
    """A directory beside the store, with a secret in it."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(b"not for any client")
    return folder


def plant(store, key: str, target) -> None:
    """A symbolic link at `key`, as a client with file access to the store's directory could make."""
    path = store.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def test_reads_lists_and_copies_refuse_every_kind_of_link(local, outside):
    _, store = local
    store.put("uploads/victim/d-001/items/i-1.txt", b"the victim's text")
    store.put("uploads/evil/d-001/items/plain.txt", b"an honest file")
    plant(store, "uploads/evil/d-001/items/out.txt", outside / "secret.txt")
    plant(store, "uploads/evil/d-001/items/across.txt", store.root / "uploads/victim/d-001/items/i-1.txt")
    plant(store, "uploads/evil/d-001/items/loop.txt", "loop.txt")  # points at itself
    plant(store, "uploads/evil/d-001/items/dir-loop", ".")  # a directory containing itself
    plant(store, "uploads/evil/d-001/outdir", outside)
    plant(store, "uploads/linked-client", outside)  # a whole 'client' that is a link

    listed = [obj.key for obj in store.list("uploads/evil/")]
    assert listed == [
        "uploads/evil/d-001/items/across.txt",
        "uploads/evil/d-001/items/dir-loop",
        "uploads/evil/d-001/items/loop.txt",
        "uploads/evil/d-001/items/out.txt",
        "uploads/evil/d-001/items/plain.txt",
        "uploads/evil/d-001/outdir",
    ], "links are keys of their own, never entered"
    assert store.list_prefixes("uploads/") == ["uploads/evil/", "uploads/victim/"]
    assert not list(store.list("uploads/linked-client/"))

    for key in (
        "uploads/evil/d-001/items/out.txt",
        "uploads/evil/d-001/items/across.txt",
        "uploads/evil/d-001/items/loop.txt",
        "uploads/evil/d-001/items/dir-loop/plain.txt",
        "uploads/evil/d-001/outdir/secret.txt",
        "uploads/linked-client/secret.txt",
    ):
        for read in (store.get, store.head, lambda k: store.get_within(k, 1 << 20)):
            with pytest.raises(SymbolicLink, match="symbolic link"):
                read(key)
        with pytest.raises(SymbolicLink):
            store.copy(key, "quarantine/evil/d-001/copy.txt")
    assert store.head("quarantine/evil/d-001/copy.txt") is None
    assert store.get("uploads/evil/d-001/items/plain.txt") == b"an honest file"

    # writes through a linked directory land nowhere, in particular not outside the root
    for write in (
        lambda: store.put("uploads/evil/d-001/outdir/planted.txt", b"x"),
        lambda: store.put_if_absent("uploads/evil/d-001/outdir/planted.txt", b"x"),
        lambda: store.copy("uploads/evil/d-001/items/plain.txt", "uploads/evil/d-001/outdir/planted.txt"),
    ):
        with pytest.raises(SymbolicLink):
            write()
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_discarding_through_a_link_is_refused_and_removes_nothing(local, outside):
    _, store = local
    plant(store, "datasets/energy", outside)
    plant(store, "datasets/medical/v0002", outside)
    for prefix in ("datasets/energy/v0001/", "datasets/medical/v0002/"):
        with pytest.raises(SymbolicLink):
            store.discard_unpublished(prefix)
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    store.put("datasets/medical/v0001/data/a.txt", b"x")
    store.discard_unpublished("datasets/medical/v0001/")
    assert [obj.key for obj in store.list("datasets/medical/")] == ["datasets/medical/v0002"]


def test_intake_rejects_linked_items_and_takes_in_the_rest(local, outside, dask_cluster, instance):
    from conftest import annobase_resources

    resource, store = local
    victim = make_delivery(31, "datong-schools", "d-001", "text", 2)
    upload_delivery(store, victim)
    delivery = make_delivery(32, "yungang-grottoes", "d-001", "text", 5)
    upload_delivery(store, delivery)
    prefix = "uploads/yungang-grottoes/d-001/"
    paths = {item["item_id"]: item["files"]["text"]["path"] for item in delivery.manifest["items"]}
    out_id, across_id, loop_id, *kept = sorted(paths)
    # the links lead to the very bytes the manifest names: only the link can reject them
    (outside / "copy.txt").write_bytes(delivery.files[paths[out_id]])
    victim_key = "uploads/datong-schools/d-001/" + victim.manifest["items"][0]["files"]["text"]["path"]
    store.put(victim_key, delivery.files[paths[across_id]])
    for item_id, target in (
        (out_id, outside / "copy.txt"),
        (across_id, store.root / victim_key),
        (loop_id, paths[loop_id].rsplit("/", 1)[-1]),
    ):
        os.remove(store.root / (prefix + paths[item_id]))
        plant(store, prefix + paths[item_id], target)
    plant(store, prefix + "items/dir-loop", ".")

    run_intake(instance, annobase_resources(resource, dask_cluster), "yungang-grottoes/d-001")

    catalog = CatalogResource(object_store=resource).open()
    rejections = catalog.read_partition("rejections", "yungang-grottoes/d-001")
    assert dict(zip(rejections.item_id, rejections.code, strict=True)) == {
        out_id: "symbolic_link",
        across_id: "symbolic_link",
        loop_id: "symbolic_link",
    }
    assert set(catalog.read_partition("raw_items", "yungang-grottoes/d-001").item_id) == set(kept)
    delivery_row = catalog.read_partition("deliveries", "yungang-grottoes/d-001").iloc[0]
    assert delivery_row.status == "partially_accepted" and delivery_row.items_rejected == 3
    for item_id in (out_id, across_id, loop_id):
        record = json.loads(store.get(f"quarantine/yungang-grottoes/d-001/items/{item_id}/rejection.json"))
        assert record["copies"] == {}, "a link's target is never copied into quarantine"
        assert record["reasons"][0]["code"] == "symbolic_link"


def test_the_sensor_records_a_linked_manifest_and_goes_on(local, outside, instance, monkeypatch):
    resource, store = local
    upload_delivery(store, make_delivery(33, "datong-schools", "d-001", "text", 2))
    plant(store, "uploads/evil/d-001/manifest.json", "manifest.json")  # a loop
    plant(store, "uploads/evil/d-002/manifest.json", outside / "secret.txt")
    plant(store, "uploads/evil/d-003", ".")  # a directory loop under the client

    first = tick(instance, resource)

    assert [r.partition_key for r in first.run_requests] == ["datong-schools/d-001"]
    records = [json.loads(store.get(obj.key)) for obj in store.list("quarantine/_invalid_keys/")]
    assert sorted(record["upload_key"] for record in records) == [
        "uploads/evil/d-001/manifest.json",
        "uploads/evil/d-002/manifest.json",
    ]
    assert {record["reasons"][0]["code"] for record in records} == {"symbolic_link"}
    again = tick(instance, resource, first.cursor)
    assert again.run_requests == [] and len(list(store.list("quarantine/_invalid_keys/"))) == 2

    # the reconciliation, which re-derives the same decisions from state, passes the links over too
    import dagster as dg

    from resources import CatalogResource
    from sensors.reconciliation import reconciliation

    catalog = CatalogResource(object_store=resource)
    monkeypatch.setenv("ANNOBASE_RECONCILE_GRACE_SECONDS", "0")  # the uploads count as settled
    with dg.build_sensor_context(
        instance=instance, resources={"object_store": resource, "catalog": catalog}
    ) as context:
        reconciled = reconciliation(context)
    assert {r.run_key.split("@")[0] for r in reconciled.run_requests} == {"datong-schools/d-001"}


def test_the_export_sensor_records_a_linked_export_and_goes_on(local, outside, instance):
    import dagster as dg

    from sensors.annotation_exports import annotation_exports

    resource, store = local
    instance.add_dynamic_partitions("batches", ["b-linked", "b-plain"])
    plant(store, "annotations/b-linked/export.json", outside / "secret.txt")
    store.put("annotations/b-plain/export.json", b"[]")
    with dg.build_sensor_context(instance=instance, resources={"object_store": resource}) as context:
        result = annotation_exports(context)
    assert [r.partition_key for r in result.run_requests] == ["b-plain"]
    [record] = [json.loads(store.get(obj.key)) for obj in store.list("quarantine/_invalid_keys/")]
    assert record["upload_key"] == "annotations/b-linked/export.json"
    assert record["reasons"][0]["code"] == "symbolic_link"
