"""Nothing of one client reaches another's batch, export or delivery (issue 14 §2): batch ids cannot
collide, an export's tasks must be its batch's own, and delivered files are named by item."""

import copy
import dataclasses
import hashlib
import io
import json

import pandas as pd
import pytest
from flow_helpers import run_client_delivery, run_flow_for_delivery, run_qa
from test_annotation_loop import GOOD_CREW

from annobase.keys import ID_PATTERN, DeliveryRef
from annobase.settings import load_settings
from assets.annotation.batching import batch_id_for, batch_number, plan_batches
from assets.annotation.label_studio_export import TASK_NOT_IN_BATCH, parse_export
from resources import CatalogResource
from simulator import make_delivery, upload_delivery
from simulator.annotation_tool import complete_batch

LONGEST = DeliveryRef("c" * 64, "d" * 64)


def test_batch_ids_name_their_client_and_fit_the_id_rule():
    for ref in (LONGEST, DeliveryRef("jinneng-mine-safety", "d-2026-11-20-001"), DeliveryRef("a", "b")):
        for number in (1, 999, 1_000, 99_999):
            batch_id = batch_id_for(ref, number)
            assert ID_PATTERN.fullmatch(batch_id) and len(batch_id) <= 64, batch_id
            assert batch_id.startswith(f"{ref.client_id[:16]}-{ref.delivery_id[:16]}-")
            assert batch_number(batch_id) == number
    assert batch_id_for(DeliveryRef("jinneng-mine-safety", "d-001"), 7).startswith("jinneng-mine-saf-d-001-")


def test_batch_ids_keep_100_bits_where_8_hex_digits_collided():
    """The format before (`{delivery[:40]}-{8 hex digits}-b001`) gave two of 300,000 clients' first
    deliveries one batch id (a 32-bit birthday bound); the digest now has 100 bits."""
    before, refs = {}, []
    for n in range(300_000):
        ref = DeliveryRef(f"client-{n}", "d-001")
        old = f"{ref.delivery_id[:40]}-{hashlib.sha256(ref.partition_key.encode()).hexdigest()[:8]}-b001"
        refs.append(ref)
        if old in before:
            break
        before[old] = ref
    else:
        pytest.fail("300,000 deliveries do not collide on 32 bits only with luck")
    assert batch_id_for(before[old], 1) != batch_id_for(ref, 1)
    assert len({batch_id_for(ref, 1) for ref in refs}) == len(refs)


def test_a_delivery_planned_again_keeps_the_batch_ids_it_has():
    """Batches cut before the format changed (stored in the catalog, known to Label Studio) keep their ids."""
    ref = DeliveryRef("yungang-grottoes", "d-2026-001")
    items = {("text",): [f"{ref.partition_key}/i-{n:03d}" for n in range(250)]}
    settings = load_settings().annotation
    fresh = plan_batches(ref, items, {}, settings)
    legacy = {batch_number(b.batch_id): f"d-2026-001-0badcafe-b{batch_number(b.batch_id):03d}" for b in fresh}
    again = plan_batches(ref, items, {}, settings, legacy)
    assert [b.batch_id for b in again] == [legacy[n + 1] for n in range(len(fresh))]
    assert [b.tasks for b in again] == [b.tasks for b in fresh]


def test_the_parser_sets_aside_tasks_of_items_outside_the_batch():
    raw = json.dumps(
        [
            {
                "id": n,
                "data": {"item_id": item, "client_id": client, "delivery_id": "d-001", "text": "x"},
                "annotations": [
                    {
                        "id": 10 + n,
                        "completed_by": 1,
                        "result": [
                            {
                                "from_name": "label",
                                "to_name": "text",
                                "type": "choices",
                                "value": {"choices": ["a"]},
                            }
                        ],
                    }
                ],
            }
            for n, (client, item) in enumerate([("c1", "i-1"), ("c1", "i-2"), ("c2", "i-1")], start=1)
        ]
    ).encode()
    parsed = parse_export(raw, "b-1", "text", ["a", "b"], batch_items=["c1/d-001/i-1"])
    assert [row.item_id for row in parsed.annotations] == ["i-1"]
    assert [(p.code, p.task_id) for p in parsed.problems] == [(TASK_NOT_IN_BATCH, 2), (TASK_NOT_IN_BATCH, 3)]
    assert "c2/d-001/i-1 is not one of the tasks of batch b-1" in parsed.problems[1].detail


@pytest.fixture
def flow(s3_store, dask_cluster, instance):
    from conftest import annobase_resources

    return {
        "store": s3_store.open(),
        "resources": annobase_resources(s3_store, dask_cluster),
        "catalog": CatalogResource(object_store=s3_store).open(),
        "instance": instance,
    }


def deliver(flow, delivery, truth: dict) -> list[str]:
    upload_delivery(flow["store"], delivery)
    partition = f"{delivery.client_id}/{delivery.delivery_id}"
    truth.update({f"{partition}/{item}": value for item, value in delivery.truth.items()})
    assert run_flow_for_delivery(flow["instance"], flow["resources"], partition).success
    batches = flow["catalog"].query(
        "delivery_batches", client_id=delivery.client_id, delivery_id=delivery.delivery_id
    )
    return batches.batch_id.tolist()


def test_an_export_carrying_another_clients_task_is_scored_without_it(flow):
    """A tool that mixes up projects puts a task of client B's batch into client A's export: it is set
    aside as task_not_in_batch, and A's scores, gold and consensus never see it."""
    truth = {}
    [ours] = deliver(
        flow, make_delivery(51, "datong-schools", "d-001", "text", 12, disagreement_rate=0), truth
    )
    [theirs] = deliver(
        flow, make_delivery(52, "xiehe-clinic", "d-001", "text", 12, disagreement_rate=0), truth
    )
    assert ours.startswith("datong-schools-d-001-") and theirs.startswith("xiehe-clinic-d-001-")
    store = flow["store"]
    complete_batch(store, theirs, truth, GOOD_CREW, seed=5)
    complete_batch(store, ours, truth, GOOD_CREW, seed=5)
    export = json.loads(store.get(f"annotations/{ours}/export.json"))
    stranger = copy.deepcopy(json.loads(store.get(f"annotations/{theirs}/export.json"))[0])
    stranger["id"] = max(task["id"] for task in export) + 1
    store.put(f"annotations/{ours}/export.json", json.dumps(export + [stranger]).encode())

    run_qa(flow["instance"], flow["resources"], ours)

    catalog = flow["catalog"]
    problems = catalog.read_partition("export_problems", ours)
    assert problems.code.tolist() == [TASK_NOT_IN_BATCH] and problems.task_id.tolist() == [stranger["id"]]
    for table in ("annotations", "consensus", "gold"):
        rows = catalog.read_partition(table, ours, missing_ok=True)
        assert not rows.empty or table == "gold"
        assert rows.item_key.str.startswith("datong-schools/d-001/").all(), table
    record = json.loads(store.get(f"quarantine/datong-schools/d-001/batches/{ours}/rejection.json"))
    assert record["problems"][0]["code"] == TASK_NOT_IN_BATCH


def test_items_whose_uploads_share_a_basename_are_delivered_each_under_its_own_name(flow):
    """`items/a/photo.png` and `items/b/photo.png` of one delivery: both delivered, neither over the other."""
    delivery = make_delivery(53, "yungang-grottoes", "d-basename", "image", 4, disagreement_rate=0)
    manifest, files = copy.deepcopy(delivery.manifest), {}
    for index, item in enumerate(manifest["items"]):
        spec = item["files"]["image"]
        renamed = f"items/{'ab'[index % 2]}/photo{'.png' if index < 2 else '-2.png'}"
        files[renamed] = delivery.files[spec["path"]]
        spec["path"] = renamed
    delivery = dataclasses.replace(delivery, manifest=manifest, files=files)
    truth = {}
    for batch_id in deliver(flow, delivery, truth):
        complete_batch(flow["store"], batch_id, truth, GOOD_CREW, seed=6)
        assert run_qa(flow["instance"], flow["resources"], batch_id).success

    assert run_client_delivery(flow["instance"], flow["resources"], "yungang-grottoes/d-basename").success

    store = flow["store"]
    prefix = "deliveries/yungang-grottoes/d-basename/"
    labels = pd.read_parquet(io.BytesIO(store.get(prefix + "labels.parquet")))
    uploaded = {item["item_id"]: files[item["files"]["image"]["path"]] for item in manifest["items"]}
    assert dict(zip(labels.item_id, labels.image_file, strict=True)) == {
        item_id: f"{prefix}items/{item_id}.image.png" for item_id in uploaded
    }
    for item_id, data in uploaded.items():
        assert store.get(f"{prefix}items/{item_id}.image.png") == data
    assert len({obj.key for obj in store.list(prefix + "items/")}) == 4
