"""Intake end to end: simulated client deliveries through `raw_items` on a real Dask cluster, against
both object stores. Each kind of bad input is its own test case."""

import json

import pytest
from flow_helpers import run_flow_for_range, run_intake, snapshot

from simulator import FAILURE_MODES, all_bad_deliveries, make_delivery, upload_bad_delivery, upload_delivery
from simulator.bad_deliveries import invalid_id

BAD = {bad.expected_reason: bad for bad in all_bad_deliveries(seed=7, n_items=4)}
DELIVERY_LEVEL = {reason for reason, bad in BAD.items() if not bad.bad_item_ids}


def catalog_rows(store_resource, table: str, partition: str):
    from resources import CatalogResource

    return CatalogResource(object_store=store_resource).open().read_partition(table, partition)


@pytest.mark.parametrize("modality", ["text", "speech", "image", "multimodal"])
def test_good_deliveries_are_recorded_item_by_item(
    modality, object_store_resource, store, resources, instance
):
    delivery = make_delivery(11, "jinneng-mine-safety", f"d-good-{modality}", modality, 6)
    upload_delivery(store, delivery)
    partition = f"jinneng-mine-safety/d-good-{modality}"

    result = run_intake(instance, resources, partition)

    rows = catalog_rows(object_store_resource, "raw_items", partition)
    expected_files = {
        (item["item_id"], part, spec["sha256"], spec["bytes"])
        for item in delivery.manifest["items"]
        for part, spec in item["files"].items()
    }
    assert set(zip(rows.item_id, rows.part, rows.sha256, rows.bytes, strict=True)) == expected_files
    assert set(rows.upload_key) == {
        f"uploads/jinneng-mine-safety/d-good-{modality}/{spec['path']}"
        for item in delivery.manifest["items"]
        for spec in item["files"].values()
    }
    assert set(rows.dagster_run_id) == {result.run_id}
    assert set(rows.industry) == {"energy"} and set(rows.modality) == {modality}
    assert set(rows.license) == {"publishable"}
    if modality == "speech":
        assert (rows.sample_rate == 16000).all() and (rows.audio_seconds > 0).all()
    deliveries = catalog_rows(object_store_resource, "deliveries", partition)
    assert deliveries.status.tolist() == ["accepted"] and deliveries.items_accepted.tolist() == [6]
    assert not list(store.list(f"quarantine/jinneng-mine-safety/d-good-{modality}/"))
    materialization = result.asset_materializations_for_node("raw_items")[0]
    assert materialization.metadata["items_accepted"].value == 6
    assert all(evaluation.passed for evaluation in result.get_asset_check_evaluations())


@pytest.mark.parametrize("reason", sorted(FAILURE_MODES))
def test_bad_input_is_quarantined_with_its_reason(reason, object_store_resource, store, resources, instance):
    bad = BAD[reason]
    upload_bad_delivery(store, bad)
    uploads_before = snapshot(store, "uploads/")
    partition = f"{bad.client_id}/{bad.delivery_id}"

    result = run_intake(instance, resources, partition)

    assert snapshot(store, "uploads/") == uploads_before, "intake must never change or delete an upload"
    rejections = catalog_rows(object_store_resource, "rejections", partition)
    delivery = catalog_rows(object_store_resource, "deliveries", partition).iloc[0]
    accepted = catalog_rows(object_store_resource, "raw_items", partition)
    quarantine = f"quarantine/{bad.client_id}/{bad.delivery_id}/"
    assert reason in set(rejections.code), rejections[["code", "detail"]].to_string()
    assert all(rejections.detail.str.len() > 10)
    if reason in DELIVERY_LEVEL:
        assert delivery.status == "rejected" and delivery.reason == reason
        assert accepted.empty
        record = json.loads(store.get(quarantine + "rejection.json"))
        assert record["scope"] == "delivery" and reason in {r["code"] for r in record["reasons"]}
        assert store.get(quarantine + "manifest.json") == bad.manifest_bytes
        check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "delivery_accepted")
        assert not check.passed and check.partition == partition
        assert check.description.startswith(f"rejected: {reason}")
    else:
        assert set(rejections.item_id) == set(bad.bad_item_ids)
        assert delivery.status == "partially_accepted"
        listed = json.loads(bad.manifest_bytes)["items"]
        assert set(accepted.item_id) == {item["item_id"] for item in listed} - set(bad.bad_item_ids)
        assert delivery.items_accepted + delivery.items_rejected == delivery.items_listed == len(listed)
        for record_key in set(rejections.quarantine_key):
            record = json.loads(store.get(record_key))
            assert record["scope"] == "item" and reason in {r["code"] for r in record["reasons"]}
            for part, copy_key in record["copies"].items():
                assert store.get(copy_key) == store.get(record["files"][part])
    materialization = result.asset_materializations_for_node("raw_items")[0]
    by_reason = {
        record.data["reason"]: record.data["items"]
        for record in materialization.metadata["rejected_by_reason"].value.records
    }
    assert by_reason.get(reason, 0) >= 1


def test_a_bad_id_in_the_manifest_header_rejects_the_delivery(
    store, resources, instance, object_store_resource
):
    bad = invalid_id(make_delivery(3, "xiehe-clinic", "d-bad-client-id", "text", 3), field="client_id")
    upload_bad_delivery(store, bad)
    run_intake(instance, resources, "xiehe-clinic/d-bad-client-id")
    rejections = catalog_rows(object_store_resource, "rejections", "xiehe-clinic/d-bad-client-id")
    assert rejections.code.tolist() == ["invalid_id"] and rejections.item_id.isna().all()


def test_a_re_run_replaces_the_catalog_partition_instead_of_doubling_it(
    store, resources, instance, object_store_resource
):
    upload_delivery(store, make_delivery(5, "yungang-grottoes", "d-rerun", "image", 4))
    run_intake(instance, resources, "yungang-grottoes/d-rerun")
    second = run_intake(instance, resources, "yungang-grottoes/d-rerun")
    rows = catalog_rows(object_store_resource, "raw_items", "yungang-grottoes/d-rerun")
    assert len(rows) == 4 and set(rows.dagster_run_id) == {second.run_id}


def test_one_bad_delivery_does_not_stop_the_others(s3_store, dask_cluster, instance):
    """Deliveries are separate partitions and runs: a rejected one between two good ones changes nothing."""
    from conftest import annobase_resources

    store = s3_store.open()
    resources = annobase_resources(s3_store, dask_cluster)
    upload_delivery(store, make_delivery(1, "datong-schools", "d-001", "text", 5))
    upload_bad_delivery(store, BAD["malformed_json"])
    upload_delivery(store, make_delivery(2, "datong-schools", "d-003", "text", 5))
    outcomes = {}
    for partition in (
        "datong-schools/d-001",
        f"xiehe-clinic/{BAD['malformed_json'].delivery_id}",
        "datong-schools/d-003",
    ):
        run_intake(instance, resources, partition)
        outcomes[partition] = catalog_rows(s3_store, "deliveries", partition).status.iloc[0]
    assert list(outcomes.values()) == ["accepted", "rejected", "accepted"]


def test_a_range_run_takes_in_each_delivery_on_its_own(s3_store, dask_cluster, instance):
    """One run over three consecutive deliveries, the middle one bad: each is recorded, cleaned and
    batched (or rejected) as if it had a run of its own, and the run's check names the bad one."""
    from conftest import annobase_resources

    store = s3_store.open()
    resources = annobase_resources(s3_store, dask_cluster)
    bad = invalid_id(make_delivery(2, "datong-schools", "d-002", "text", 3), field="client_id")
    upload_delivery(store, make_delivery(1, "datong-schools", "d-001", "text", 5))
    upload_bad_delivery(store, bad)
    upload_delivery(store, make_delivery(3, "datong-schools", "d-003", "text", 4))
    partitions = ["datong-schools/d-001", "datong-schools/d-002", "datong-schools/d-003"]

    result = run_flow_for_range(instance, resources, partitions)

    assert result.success
    statuses = [catalog_rows(s3_store, "deliveries", p).status.iloc[0] for p in partitions]
    assert statuses == ["accepted", "rejected", "accepted"]
    assert [len(catalog_rows(s3_store, "clean_items", p)) for p in partitions] == [5, 0, 4]
    assert [len(catalog_rows(s3_store, "batches", p)) > 0 for p in partitions] == [True, False, True]
    materialized = {
        m.partition: m.metadata["status"].value for m in result.asset_materializations_for_node("raw_items")
    }
    assert materialized == dict(zip(partitions, statuses, strict=True))
    accepted = {
        e.partition: (e.passed, e.description.split(":")[0])
        for e in result.get_asset_check_evaluations()
        if e.check_name == "delivery_accepted"
    }
    assert accepted == {
        "datong-schools/d-001": (True, "accepted"),
        "datong-schools/d-002": (False, "rejected"),
        "datong-schools/d-003": (True, "accepted"),
    }
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["raw_items_catalog_rows_valid"].passed
    assert checks["raw_items_catalog_rows_valid"].metadata["evaluated_rows"].value == 9
