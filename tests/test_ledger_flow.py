"""The provenance ledger through the flow on SeaweedFS: every step leaves its entry before its catalog
row, a release's signed MANIFEST pins the head it was cut from, and `annobase ledger verify` and
`annobase trace` read it back; a rewritten chain or a verdict changed in the catalog is caught."""

import hashlib
import io
import json

import pandas as pd
import pytest
from flow_helpers import operator_env, run_client_delivery, run_qa

from annobase import ledger
from resources.catalog import Catalog

CLIENT, DELIVERY = "jinneng-mine-safety", "d-led-001"


@pytest.fixture
def object_store_resource(s3_store):
    """The flow's ledger on the production store (the chain itself is tested on both, test_ledger.py)."""
    return s3_store


def entries_of(store, kind: str) -> list[ledger.Entry]:
    check = ledger.verify_chain(store, CLIENT)
    assert check.ok, check.problem
    return [entry for entry in check.entries if entry.kind == kind]


def test_the_flow_is_recorded_step_by_step_and_releases_pin_the_head(base, signing, monkeypatch, capsys):
    from annobase.cli import main

    delivery = base.deliver_and_annotate(11, CLIENT, DELIVERY, "text", 8)
    store, catalog, partition = base.store, base.catalog, f"{CLIENT}/{DELIVERY}"
    batch_ids = catalog.query("delivery_batches", client_id=CLIENT, delivery_id=DELIVERY).batch_id.tolist()

    # a crash between the gate's ledger entry and its catalog row: the run fails, the ledger holds
    # the attempt, the catalog keeps the earlier verdict, and nothing is unrecorded
    real_write = Catalog.write_partition

    def crash_at_the_verdict(self, table, *args, **kwargs):
        if table == "gate_results":
            raise ConnectionError("the step's process died here")
        return real_write(self, table, *args, **kwargs)

    monkeypatch.setattr(Catalog, "write_partition", crash_at_the_verdict)
    crashed = run_qa(base.instance, base.resources, batch_ids[0])
    monkeypatch.setattr(Catalog, "write_partition", real_write)
    assert not crashed.success
    assert crashed.run_id in {entry.run_id for entry in entries_of(store, ledger.GATE)}
    assert crashed.run_id not in set(
        catalog.query("ledger_recorded_verdicts", client_id=CLIENT).dagster_run_id
    )
    assert run_client_delivery(base.instance, base.resources, partition).success
    release = base.publish("energy")["release"]

    manifest_key = f"uploads/{CLIENT}/{DELIVERY}/manifest.json"
    [upload] = entries_of(store, ledger.UPLOAD)
    assert upload.facts == {
        "delivery_id": DELIVERY,
        "manifest_key": manifest_key,
        "manifest_etag": store.head(manifest_key).etag,
        "manifest_sha256": hashlib.sha256(store.get(manifest_key)).hexdigest(),
    }
    [intake] = entries_of(store, ledger.INTAKE)
    raw = catalog.read_partition("raw_items", partition)
    assert intake.facts["status"] == "accepted" and intake.facts["items_accepted"] == 8
    assert intake.facts["accepted_digest"] == ledger.digest_of(
        f"{row.item_key} {row.part} {row.sha256}" for row in raw.itertuples()
    )
    assert {item["files"]["text"]["sha256"] for item in delivery.manifest["items"]} == set(raw.sha256)
    [cleaning] = entries_of(store, ledger.CLEANING)
    kept = catalog.read_partition("clean_items", partition).query("status == 'kept'")
    assert cleaning.facts["kept"] == len(kept) and cleaning.facts["kept_digest"] == ledger.digest_of(
        kept.item_key
    )
    [batches] = entries_of(store, ledger.BATCHES)
    assert [batch["batch_id"] for batch in batches.facts["batches"]] == sorted(batch_ids)

    exports = entries_of(store, ledger.EXPORT)
    for batch_id in batch_ids:
        export_key = f"annotations/{batch_id}/export.json"
        facts = next(entry.facts for entry in reversed(exports) if entry.facts["batch_id"] == batch_id)
        assert facts["export_sha256"] == hashlib.sha256(store.get(export_key)).hexdigest()
        assert facts["export_etag"] == store.head(export_key).etag
    gates = entries_of(store, ledger.GATE)
    assert {(g.facts["batch_id"], g.facts["check"]) for g in gates} == {
        (batch_id, check) for batch_id in batch_ids for check in ("qa_gate", "qa_tables_valid")
    }
    for gate in gates:  # each verdict names the export it judged, recorded before it
        judged = [e for e in exports if e.seq < gate.seq and e.facts["batch_id"] == gate.facts["batch_id"]]
        assert judged and gate.facts["export_etag"] == judged[-1].facts["export_etag"]
    verdict = next(g for g in gates if g.facts["check"] == "qa_gate" and g.run_id != crashed.run_id)
    row = catalog.read_partition("gate_results", f"{verdict.facts['batch_id']}/qa_gate").iloc[0]
    assert verdict.facts["passed"] is True and verdict.facts["metric"] == "text_accuracy"
    assert (
        (verdict.facts["observed"], verdict.facts["threshold"])
        == (row.observed, row.threshold)
        == (1.0, 0.95)
    )

    [returned] = entries_of(store, ledger.CLIENT_DELIVERY)
    labels = store.get(f"deliveries/{CLIENT}/{DELIVERY}/labels.parquet")
    assert returned.facts["labels_sha256"] == hashlib.sha256(labels).hexdigest()
    assert returned.facts["items"] == len(pd.read_parquet(io.BytesIO(labels))) == len(kept)

    [released] = entries_of(store, ledger.RELEASE)
    manifest_bytes = store.get(f"{release}/MANIFEST.json")
    assert released.facts["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    pinned = json.loads(manifest_bytes)["lineage"]["ledger_heads"]
    # the head the release was cut from: every entry before its own, the client delivery's included
    assert pinned == {CLIENT: {"seq": released.seq - 1, "hash": released.prev}}
    assert returned.seq < released.seq

    operator_env(monkeypatch, base.resources, signing)
    capsys.readouterr()
    assert main(["ledger", "verify"]) == 0
    out = capsys.readouterr().out
    assert f"OK: {CLIENT}: {released.seq} entries" in out and "1 release pins reached" in out
    assert main(["ledger", "verify", CLIENT]) == 0
    assert main(["ledger", "verify", "Not/A-Client"]) == 2
    assert main(["ledger", "verify", "no-such-client"]) == 1
    assert "no-such-client: no ledger entries" in capsys.readouterr().err

    item_key = f"{CLIENT}/{DELIVERY}/{kept.item_id.iloc[0]}"
    assert main(["trace", item_key]) == 0
    out = capsys.readouterr().out.split("== provenance ledger", 1)[1]
    for entry in (upload, intake, cleaning, batches, verdict, returned, released):
        assert f"#{entry.seq} {entry.at} {entry.kind}" in out
    assert released.facts["manifest_sha256"] in out


def test_verify_catches_a_rewritten_chain_and_a_verdict_changed_in_the_catalog(
    base, signing, monkeypatch, capsys
):
    from annobase.cli import main

    base.deliver_and_annotate(12, CLIENT, DELIVERY, "text", 6)
    release = base.publish("energy")["release"]
    store = base.store
    operator_env(monkeypatch, base.resources, signing)
    assert main(["ledger", "verify"]) == 0
    snapshot = {obj.key: store.get(obj.key) for obj in store.list(ledger.client_prefix(CLIENT))}

    # a forger rewrites every entry from the pinned head on, links and head hint included
    pinned = json.loads(store.get(f"{release}/MANIFEST.json"))["lineage"]["ledger_heads"][CLIENT]["seq"]
    previous = json.loads(snapshot[ledger.entry_key(CLIENT, pinned - 1)])["hash"]
    for seq in range(pinned, len(snapshot)):
        document = json.loads(snapshot[ledger.entry_key(CLIENT, seq)])
        document.pop("hash")
        document.update(prev=previous, run_id="forged")
        data, previous = ledger.seal(document)
        store.put(ledger.entry_key(CLIENT, seq), data)
    store.put(ledger.head_hint_key(CLIENT), ledger.canonical({"seq": len(snapshot) - 1, "hash": previous}))
    capsys.readouterr()
    assert main(["ledger", "verify", CLIENT]) == 1
    assert f"BROKEN: {CLIENT}: {release}/MANIFEST.json names entry {pinned}" in capsys.readouterr().err
    for key, data in snapshot.items():
        store.put(key, data)
    assert main(["ledger", "verify", CLIENT]) == 0

    # a blocked verdict flipped to passed in the catalog, where deliveries and releases read it
    [batch_id] = base.catalog.query("delivery_batches", client_id=CLIENT, delivery_id=DELIVERY).batch_id
    gate = base.catalog.read_partition("gate_results", f"{batch_id}/qa_gate")
    base.catalog.write_partition(
        "gate_results", f"{batch_id}/qa_gate", gate.assign(passed=False).to_dict("records")
    )
    capsys.readouterr()
    assert main(["ledger", "verify"]) == 1
    err = capsys.readouterr().err
    assert f"gate_results row of batch {batch_id} qa_gate (passed=False" in err and "behind annobase" in err
