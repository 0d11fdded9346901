"""Trust (issue 13): a verdict counts only for the data it judged, a release holds only what the client's
current manifest version allows, and only bytes intake verified, signed by the base's own key.

Each test injects the race, the crash or the input on the real services (SeaweedFS, a Dask cluster)
and checks the end state: what the catalog lets through, what a release holds, what verify says.
"""

import json

import pytest
from flow_helpers import CREW, operator_env, run_client_delivery, run_flow_for_delivery, run_qa

from annobase.cli import main
from annobase.keys import export_key
from resources import SigningKeyResource
from resources.object_store import ObjectStoreResource
from simulator import encode_manifest, make_delivery, upload_delivery
from simulator.annotation_tool import complete_batch


@pytest.fixture
def object_store_resource(s3_store):
    """These promises are about the production store."""
    return s3_store


def gates(base, client_id: str, delivery_id: str):
    return base.catalog.query("delivery_gate_status", client_id=client_id, delivery_id=delivery_id)


def released_deliveries(base, release: str) -> set[str]:
    rows = base.release_items(release)
    return set(rows.client_id.astype(str) + "/" + rows.delivery_id.astype(str))


def reupload(base, seed: int, client_id: str, delivery_id: str, n_items: int, **options):
    delivery = make_delivery(seed, client_id, delivery_id, "text", n_items, disagreement_rate=0.0, **options)
    upload_delivery(base.store, delivery)
    base.truth.update({f"{client_id}/{delivery_id}/{k}": v for k, v in delivery.truth.items()})
    return delivery


def test_a_batch_cut_again_after_a_reupload_never_inherits_its_verdict(base):
    """After a batch passes, its delivery is re-sent with 3 more items: the batch is cut again (a new
    tasks version), the old verdict no longer counts, QA of the old export sets its tasks aside as
    stale, and the delivery's items leave the release until the new tasks are annotated and gated."""
    base.deliver_and_annotate(21, "datong-schools", "d-ver-001", "text", 8)
    base.deliver_and_annotate(22, "datong-schools", "d-ver-002", "text", 6)
    first = base.publish("education")
    assert released_deliveries(base, first["release"]) == {
        "datong-schools/d-ver-001",
        "datong-schools/d-ver-002",
    }
    [batch_id] = gates(base, "datong-schools", "d-ver-001").batch_id
    old_version = json.loads(base.store.get(f"batches/{batch_id}/batch.json"))["tasks_version"]

    reupload(base, 21, "datong-schools", "d-ver-001", 11)
    assert run_flow_for_delivery(base.instance, base.resources, "datong-schools/d-ver-001").success
    plan = json.loads(base.store.get(f"batches/{batch_id}/batch.json"))
    assert plan["tasks_version"] != old_version
    assert sum(task["item_key"].startswith("datong-schools/d-ver-001/") for task in plan["tasks"]) == 11
    assert not gates(base, "datong-schools", "d-ver-001").passed.eq(True).any()

    # the export still under annotations/ answers the old tasks: judged again, it passes nothing
    # (a verdict on a run that succeeded: the gate's check fails, nothing broke)
    judged = run_qa(base.instance, base.resources, batch_id)
    assert judged.success
    assert not next(e.passed for e in judged.get_asset_check_evaluations() if e.check_name == "qa_gate")
    problems = base.catalog.read_partition("export_problems", batch_id)
    assert set(problems.code) == {"stale_task"} and len(problems) == 8
    assert not gates(base, "datong-schools", "d-ver-001").passed.eq(True).any()
    assert not run_client_delivery(base.instance, base.resources, "datong-schools/d-ver-001").success

    second = base.publish("education")
    assert released_deliveries(base, second["release"]) == {"datong-schools/d-ver-002"}
    manifest = json.loads(base.store.get(f"{second['release']}/MANIFEST.json"))
    [withdrawn] = manifest["lineage"]["withdrawn_deliveries"]
    assert (withdrawn["delivery_id"], withdrawn["released_in"]) == ("d-ver-001", first["version"])
    assert withdrawn["reason"].startswith("not_gated")

    complete_batch(base.store, batch_id, base.truth, CREW, seed=3)
    assert run_qa(base.instance, base.resources, batch_id).success
    third = base.publish("education")
    rows = base.release_items(third["release"])
    assert (rows.delivery_id == "d-ver-001").sum() == 11


class RefusingQualityWrites:
    """The store refusing every write under `quality/` (where a gate keeps its evidence)."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def put(self, key: str, data: bytes) -> str:
        if key.startswith("quality/"):
            raise PermissionError(f"write refused: {key}")
        return self._store.put(key, data)


def test_a_verdict_that_could_not_be_recorded_whole_counts_as_not_passed(base, monkeypatch):
    delivery = base.deliver_and_annotate(23, "xiehe-clinic", "d-rec-001", "text", 8)
    [batch_id] = gates(base, "xiehe-clinic", "d-rec-001").batch_id
    assert gates(base, "xiehe-clinic", "d-rec-001").passed.eq(True).all()

    # a new export of the batch (an annotator corrected an answer) is gated while quality/ refuses writes
    complete_batch(base.store, batch_id, base.truth, CREW, seed=99)
    real_open = ObjectStoreResource.open
    monkeypatch.setattr(ObjectStoreResource, "open", lambda self: RefusingQualityWrites(real_open(self)))
    assert not run_qa(base.instance, base.resources, batch_id).success
    monkeypatch.setattr(ObjectStoreResource, "open", real_open)

    status = gates(base, "xiehe-clinic", "d-rec-001")
    assert not status.passed.eq(True).any(), "the verdict on the earlier export must not count"
    assert not run_client_delivery(
        base.instance, base.resources, f"xiehe-clinic/{delivery.delivery_id}"
    ).success
    assert base.store.head("deliveries/xiehe-clinic/d-rec-001/delivery.json") is None

    assert run_qa(base.instance, base.resources, batch_id).success  # the store is back
    assert gates(base, "xiehe-clinic", "d-rec-001").passed.eq(True).all()
    assert run_client_delivery(base.instance, base.resources, "xiehe-clinic/d-rec-001").success


def test_a_delivery_reuploaded_as_private_leaves_every_later_release(base):
    """v1 publishable is released; v2 turns it private. Before v2's intake, and after an intake that
    fails, no later release holds the delivery, and the next MANIFEST lists it as withdrawn."""
    base.deliver_and_annotate(24, "jinneng-mine-safety", "d-wd-001", "text", 8)
    base.deliver_and_annotate(25, "shanxi-coal-grid", "d-wd-002", "text", 6)
    first = base.publish("energy")
    assert "jinneng-mine-safety/d-wd-001" in released_deliveries(base, first["release"])

    reupload(base, 26, "jinneng-mine-safety", "d-wd-001", 1, license="private")  # intake not run yet
    second = base.publish("energy")
    assert released_deliveries(base, second["release"]) == {"shanxi-coal-grid/d-wd-002"}
    manifest = json.loads(base.store.get(f"{second['release']}/MANIFEST.json"))
    [withdrawn] = manifest["lineage"]["withdrawn_deliveries"]
    assert withdrawn["delivery_id"] == "d-wd-001"
    assert withdrawn["reason"] == "manifest_changed: re-uploaded as 'private', awaiting its intake"

    # v3: private again, with a field that makes its intake fail
    broken = make_delivery(27, "jinneng-mine-safety", "d-wd-001", "text", 1, license="private").manifest
    base.store.put(
        "uploads/jinneng-mine-safety/d-wd-001/manifest.json",
        encode_manifest({**broken, "industry": "no-such-industry"}),
    )
    run_flow_for_delivery(base.instance, base.resources, "jinneng-mine-safety/d-wd-001")
    state = base.catalog.query("delivery_state", client_id="jinneng-mine-safety", delivery_id="d-wd-001")
    assert state.status.tolist() == ["rejected"]
    third = base.publish("energy")
    assert not third["released"] and "nothing changed" in third["reason"]
    assert base.store.get("datasets/energy/LATEST") == second["version"].encode()


def test_publishing_to_s3_without_a_signing_key_fails_before_anything_is_written(base, monkeypatch):
    base.deliver_and_annotate(28, "yungang-grottoes", "d-key-001", "text", 6)
    monkeypatch.delenv("ANNOBASE_SIGNING_KEY", raising=False)
    base.resources = {**base.resources, "signing_key": SigningKeyResource(key_path=None)}
    with pytest.raises(Exception, match="ANNOBASE_SIGNING_KEY is not set"):
        base.publish("cultural_heritage")
    assert list(base.store.list("datasets/")) == []


def test_the_base_publishes_its_key_and_verify_can_pin_it(base, signing, monkeypatch, capsys):
    base.deliver_and_annotate(29, "yungang-grottoes", "d-key-002", "text", 6)
    release = base.publish("cultural_heritage")["release"]
    key = SigningKeyResource(key_path=signing.key_path).load()
    keys = base.store.get("datasets/KEYS").decode()
    assert f"# fingerprint: {key.fingerprint}" in keys and key.public_pem.decode() in keys
    assert "PRIVATE" not in keys

    operator_env(monkeypatch, base.resources, signing)
    monkeypatch.delenv("ANNOBASE_SIGNING_KEY")  # a reader outside the base has only the published key
    capsys.readouterr()
    assert main(["verify", release]) == 0
    assert key.fingerprint in capsys.readouterr().out
    assert main(["verify", release, "--fingerprint", key.fingerprint]) == 0
    capsys.readouterr()
    assert main(["verify", release, "--fingerprint", "sha256:" + "0" * 64]) == 1
    assert "not the pinned" in capsys.readouterr().err


def test_an_export_replaced_after_its_verdict_holds_the_delivery(base):
    """A newer export whose QA has not run yet: the verdict on the older one no longer counts."""
    base.deliver_and_annotate(30, "datong-schools", "d-new-001", "text", 6)
    [batch_id] = gates(base, "datong-schools", "d-new-001").batch_id
    complete_batch(base.store, batch_id, base.truth, CREW, seed=42)
    assert (
        base.store.head(export_key(batch_id)).etag
        != gates(base, "datong-schools", "d-new-001").export_etag[0]
    )
    assert not run_client_delivery(base.instance, base.resources, "datong-schools/d-new-001").success
    assert run_qa(base.instance, base.resources, batch_id).success
    assert run_client_delivery(base.instance, base.resources, "datong-schools/d-new-001").success
