"""A delivery is judged and released by the manifest version it came from (issue 13 §1).

A client uploads v1 (publishable, many items) and, seconds later, v2 (private, one item). Each
version's intake run reads exactly the version it was requested for (If-Match on the ETag the
sensor named); a run whose version was replaced under it stops for that delivery (superseded,
nothing recorded) while the new version's run, which waited for the delivery's lease, takes it in.
Two runs of one delivery never interleave, and no later release holds the delivery. On the real
services: SeaweedFS, a Dask cluster, a Dagster instance on PostgreSQL.
"""

from __future__ import annotations

import json
import threading

import pytest
from flow_helpers import CREW, run_flow_for_delivery, run_qa

import assets.intake.delivery_lease as delivery_lease
import assets.intake.intake as intake_module
from annobase.leases import HELD, RELEASED, LeaseHeld, LeaseRecord
from simulator import encode_manifest, make_delivery, upload_delivery
from simulator.annotation_tool import complete_batch

CLIENT, DELIVERY = "jinneng-mine-safety", "d-ver-001"
PARTITION = f"{CLIENT}/{DELIVERY}"
MANIFEST_KEY = f"uploads/{PARTITION}/manifest.json"


@pytest.fixture
def object_store_resource(s3_store):
    return s3_store


@pytest.fixture
def instance(postgres_instance):
    """Two runs at once need an instance that is shared the way the daemon's is."""
    return postgres_instance


def lease_chain(store) -> list[LeaseRecord]:
    prefix = f"locks/{delivery_lease.lease_name(intake_module.DeliveryRef(CLIENT, DELIVERY))}/"
    return [LeaseRecord(**json.loads(store.get(obj.key))) for obj in store.list(prefix)]


def release_with_the_delivery(base) -> dict:
    """v0 of the delivery, publishable, annotated, gated and released beside another energy client's."""
    base.deliver_and_annotate(40, CLIENT, DELIVERY, "text", 6)
    base.deliver_and_annotate(41, "shanxi-coal-grid", "d-ver-other", "text", 6)
    first = base.publish("energy")
    assert PARTITION in released_deliveries(base, first["release"])
    return first


def released_deliveries(base, release: str) -> set[str]:
    rows = base.release_items(release)
    return set(rows.client_id.astype(str) + "/" + rows.delivery_id.astype(str))


def annotate_and_publish(base) -> dict:
    """Whatever batches the delivery has now are annotated and gated, then energy is published."""
    batches = base.catalog.query("delivery_batches", client_id=CLIENT, delivery_id=DELIVERY).batch_id
    for batch_id in batches:
        complete_batch(base.store, batch_id, base.truth, CREW, seed=5)
        run_qa(base.instance, base.resources, batch_id)
    return base.publish("energy")


def upload(base, seed: int, n_items: int, license: str, **changes) -> str:
    delivery = make_delivery(seed, CLIENT, DELIVERY, "text", n_items, license=license, disagreement_rate=0.0)
    base.truth.update({f"{PARTITION}/{k}": v for k, v in delivery.truth.items()})
    if changes:
        delivery.manifest = {**delivery.manifest, **changes}
    upload_delivery(base.store, delivery)
    return base.store.head(MANIFEST_KEY).etag


def assert_taken_in_as(base, etag: str, run_id: str, license: str | None, status: str) -> None:
    [row] = base.catalog.read_partition("deliveries", PARTITION).to_dict("records")
    recorded_license = row["license"] if isinstance(row["license"], str) else None  # null reads as NaN
    assert (row["manifest_etag"], row["dagster_run_id"], recorded_license, row["status"]) == (
        etag,
        run_id,
        license,
        status,
    )
    assert row["in_progress"] is False or row["in_progress"] == 0
    for table in ("raw_items", "rejections"):
        rows = base.catalog.read_partition(table, PARTITION)
        assert set(rows.manifest_etag) <= {etag}, f"{table} holds rows of another manifest version"


def race(base, monkeypatch, n_items: int) -> dict:
    """v1 is requested and its run starts verifying; v2 lands then, and its own run starts and finds
    the delivery held. Returns both runs' results and the ETags."""
    v1 = upload(base, 42, n_items, "publishable")
    runs: dict = {"v1": v1}
    r2_refused = threading.Event()
    real_verify, real_acquire = intake_module._verify_on_cluster, delivery_lease.acquire

    def acquire_noting_refusals(store, name, owner, *args, **kwargs):
        try:
            return real_acquire(store, name, owner, *args, **kwargs)
        except LeaseHeld:
            if owner != runs.get("r1_id"):
                r2_refused.set()
            raise

    def second_version_lands_meanwhile(parsed, *args, **kwargs):
        if "v2" not in runs:  # v1's run, verifying its items
            runs["r1_id"] = lease_chain(base.store)[-1].owner
            runs["v2"] = upload(base, 43, 1, "private")
            second = threading.Thread(
                target=lambda: runs.update(
                    r2=run_flow_for_delivery(base.instance, base.resources, PARTITION, runs["v2"])
                )
            )
            second.start()
            runs["thread"] = second
            assert r2_refused.wait(180), "v2's run never tried the delivery while v1's run held it"
        return real_verify(parsed, *args, **kwargs)

    monkeypatch.setattr(intake_module, "_verify_on_cluster", second_version_lands_meanwhile)
    monkeypatch.setattr(delivery_lease, "acquire", acquire_noting_refusals)
    runs["r1"] = run_flow_for_delivery(base.instance, base.resources, PARTITION, v1)
    runs["thread"].join(600)
    return runs


@pytest.mark.parametrize("n_items", [500, pytest.param(5_000, marks=pytest.mark.long)])
def test_v1_publishable_and_v2_private_seconds_apart(base, monkeypatch, n_items):
    first = release_with_the_delivery(base)
    runs = race(base, monkeypatch, n_items)
    r1, r2 = runs["r1"], runs["r2"]
    assert r1.success and r2.success

    # v1's run left the delivery when it found v2 there: superseded, nothing of v1 recorded
    [v1_materialization] = r1.asset_materializations_for_node("raw_items")
    assert v1_materialization.metadata["status"].value == "superseded"
    assert_taken_in_as(base, runs["v2"], r2.run_id, "private", "accepted")
    assert len(base.catalog.read_partition("raw_items", PARTITION)) == 1

    # never interleaved: v2's run held the delivery only after v1's run gave it back
    chain = [(record.owner, record.state) for record in lease_chain(base.store)]
    v0_run = chain[0][0]
    assert chain == [
        (v0_run, HELD),
        (v0_run, RELEASED),
        (r1.run_id, HELD),
        (r1.run_id, RELEASED),
        (r2.run_id, HELD),
        (r2.run_id, RELEASED),
    ]

    later = annotate_and_publish(base)
    assert later["released"]
    assert PARTITION not in released_deliveries(base, later["release"])
    manifest = json.loads(base.store.get(f"{later['release']}/MANIFEST.json"))
    [withdrawn] = manifest["lineage"]["withdrawn_deliveries"]
    assert (withdrawn["delivery_id"], withdrawn["released_in"]) == (DELIVERY, first["version"])
    assert withdrawn["reason"] == "license: its current version is 'private'"


@pytest.mark.parametrize("failure", ["rejected_field", "crash"])
def test_v2_private_whose_intake_fails_leaves_every_later_release(base, monkeypatch, failure):
    """v2 is private and its intake fails: refused for a field (an item_id with a trailing newline,
    its only item), or crashing inside intake. The delivery still leaves every later release, at once:
    before v2's intake ran, and after."""
    first = release_with_the_delivery(base)
    v1 = upload(base, 44, 500, "publishable")
    broken = make_delivery(45, CLIENT, DELIVERY, "text", 1, license="private").manifest
    if failure == "rejected_field":
        broken["items"][0]["item_id"] += "\n"
    else:
        real_parse = intake_module.parse_manifest

        def crashing_on_v2(raw, *args, **kwargs):
            if b'"private"' in raw:
                raise RuntimeError("poison: " + "x" * 5_000)
            return real_parse(raw, *args, **kwargs)

        monkeypatch.setattr(intake_module, "parse_manifest", crashing_on_v2)
    base.store.put(MANIFEST_KEY, encode_manifest(broken))
    v2 = base.store.head(MANIFEST_KEY).etag

    before = base.publish("energy")  # neither version taken in yet
    assert PARTITION not in released_deliveries(base, before["release"])
    [withdrawn] = json.loads(base.store.get(f"{before['release']}/MANIFEST.json"))["lineage"][
        "withdrawn_deliveries"
    ]
    assert withdrawn["reason"] == "manifest_changed: re-uploaded as 'private', awaiting its intake"

    r1 = run_flow_for_delivery(base.instance, base.resources, PARTITION, v1)
    assert r1.success  # v1 is no longer there to be read: superseded, not a failure
    assert r1.asset_materializations_for_node("raw_items")[0].metadata["status"].value == "superseded"
    r2 = run_flow_for_delivery(base.instance, base.resources, PARTITION, v2)
    assert r2.success  # the failure is the delivery's: quarantined, the run goes on
    code = "invalid_id" if failure == "rejected_field" else "internal_error"
    assert_taken_in_as(base, v2, r2.run_id, None if failure == "crash" else "private", "rejected")
    rejections = base.catalog.read_partition("rejections", PARTITION)
    assert code in set(rejections.code)
    assert all(len(detail) <= 400 for detail in rejections.detail), "a detail echoes the input whole"
    if failure == "crash":
        [detail] = rejections.detail
        assert detail.startswith("intake failed: RuntimeError: poison: xxx")
        record = json.loads(base.store.get(f"quarantine/{PARTITION}/rejection.json"))
        assert record["manifest_etag"] == v2
        assert base.store.get(f"quarantine/{PARTITION}/manifest.json") == encode_manifest(broken)

    after = annotate_and_publish(base)
    assert not after["released"] or PARTITION not in released_deliveries(base, after["release"])
    assert base.store.get("datasets/energy/LATEST").decode() != first["version"]
