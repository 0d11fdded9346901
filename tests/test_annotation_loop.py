"""The annotation loop end to end on SeaweedFS and a real Dask cluster: deliveries cleaned and cut into
Label Studio batches, the simulated annotation tool's exports read back, quality measured and gated
with Great Expectations, and labelled data returned to its owner only when every batch passed."""

import io
import json

import dagster as dg
import pandas as pd
import pytest
from flow_helpers import run_client_delivery, run_flow_for_delivery, run_qa

from resources import CatalogResource
from sensors.annotation_exports import annotation_exports
from simulator import make_delivery, upload_delivery
from simulator.annotation_tool import complete_batch
from simulator.annotators import Annotator, default_crew

CREW = default_crew(seed=4)
GOOD_CREW = [member for member in CREW if member.accuracy is not None and member.accuracy > 0.9]
BAD_CREW = [member for member in CREW if member not in GOOD_CREW]  # the careless one and the spammer
# on a 40-task batch's gold (20-odd labels) the gate cannot tell a 0.98 crew from a 0.90 one
# (benchmarks/RESULTS.md, oc): a crew it passes at that size, whatever the draw, is better still
SHARP_CREW = [Annotator(member.annotator_id, 0.995, member.lead_time_mean) for member in GOOD_CREW]


@pytest.fixture
def flow(s3_store, dask_cluster, instance):
    from conftest import annobase_resources

    store = s3_store.open()
    return {
        "store": store,
        "resources": annobase_resources(s3_store, dask_cluster),
        "catalog": CatalogResource(object_store=s3_store).open(),
        "instance": instance,
        "truth": {},
    }


def deliver(flow, seed: int, client_id: str, delivery_id: str, modality: str, n_items: int, **options):
    delivery = make_delivery(seed, client_id, delivery_id, modality, n_items, **options)
    upload_delivery(flow["store"], delivery)
    flow["truth"].update(
        {f"{client_id}/{delivery_id}/{item}": truth for item, truth in delivery.truth.items()}
    )
    result = run_flow_for_delivery(flow["instance"], flow["resources"], f"{client_id}/{delivery_id}")
    assert result.success
    return delivery


def batches_of(flow, client_id: str, delivery_id: str) -> list[str]:
    return (
        flow["catalog"]
        .query("delivery_batches", client_id=client_id, delivery_id=delivery_id)
        .batch_id.tolist()
    )


def gold_answers(store, batch_id: str) -> pd.DataFrame:
    """Every annotator's label on a task that has a gold (ground_truth) label, and whether it is right."""
    rows = []
    for task in json.loads(store.get(f"annotations/{batch_id}/export.json")):
        kept = [a for a in task["annotations"] if not a["was_cancelled"]]
        gold = [a["result"][0]["value"]["choices"] for a in kept if a["ground_truth"]]
        rows += [
            {"annotator": a["completed_by"], "right": a["result"][0]["value"]["choices"] == gold[0]}
            for a in kept
            if gold and not a["ground_truth"]
        ]
    return pd.DataFrame(rows)


def annotate_and_check(flow, batch_id: str, crew, seed: int = 11, review_rate: float = 0.3):
    complete_batch(flow["store"], batch_id, flow["truth"], crew, seed=seed, review_rate=review_rate)
    return run_qa(flow["instance"], flow["resources"], batch_id)


def check_passed(result: dg.ExecuteInProcessResult, name: str) -> bool:
    return next(e.passed for e in result.get_asset_check_evaluations() if e.check_name == name)


@pytest.mark.parametrize("modality", ["text", "speech", "image", "multimodal"])
def test_a_good_crew_passes_the_gate_and_the_client_gets_its_labels(flow, modality):
    client = "jinneng-mine-safety"
    deliver(flow, 21, client, f"d-loop-{modality}", modality, 40, disagreement_rate=0.0)
    batches = batches_of(flow, client, f"d-loop-{modality}")
    assert batches
    for batch_id in batches:
        tasks = json.loads(flow["store"].get(f"batches/{batch_id}/tasks.json"))
        assert all(set(task["data"]) >= {"item_id", "client_id", "delivery_id"} for task in tasks)
        result = annotate_and_check(flow, batch_id, SHARP_CREW)
        assert result.success and check_passed(result, "qa_gate") and check_passed(result, "qa_tables_valid")

    delivered = run_client_delivery(flow["instance"], flow["resources"], f"{client}/d-loop-{modality}")
    assert delivered.success
    labels = pd.read_parquet(
        io.BytesIO(flow["store"].get(f"deliveries/{client}/d-loop-{modality}/labels.parquet"))
    )
    assert len(labels) == 40 and set(labels.client_id) == {client}
    truth = flow["truth"]
    if modality == "text":
        right = sum(
            label == truth[key]["label"] for key, label in zip(labels.item_key, labels.label, strict=True)
        )
        assert right / len(labels) >= 0.95
    if modality == "image":
        assert labels.boxes_json.notna().all()
    for key in labels.filter(like="_file").stack().dropna():
        assert key.startswith(f"deliveries/{client}/d-loop-{modality}/items/")
        flow["store"].head(key)


def test_a_bad_crew_is_blocked_listed_for_rework_and_nothing_is_delivered(flow):
    client = "yungang-grottoes"
    deliver(flow, 22, client, "d-loop-bad", "text", 30)
    [batch_id] = batches_of(flow, client, "d-loop-bad")
    result = annotate_and_check(flow, batch_id, BAD_CREW)

    # a verdict, not an outage: the run succeeds, the gate's check fails, the run says "blocked"
    assert result.success and not check_passed(result, "qa_gate")
    assert flow["instance"].get_run_by_id(result.run_id).tags["annobase/verdict"] == "blocked"
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "qa_gate")
    assert evaluation.metadata["observed"].value < 0.95
    below = {row.data["annotator"] for row in evaluation.metadata["annotators_below_threshold"].value.records}
    assert evaluation.description.startswith("blocked: text_accuracy 0.")
    assert below and below <= {member.annotator_id for member in BAD_CREW}
    rework = flow["catalog"].query("rework_batches")
    assert rework.batch_id.tolist() == [batch_id]
    assert flow["store"].head(rework.gx_result_key.iloc[0]) is not None  # the GX result is kept

    from assets.quality.annotator_scorecards import annotator_scorecards

    dg.materialize([annotator_scorecards], instance=flow["instance"], resources=flow["resources"])
    cards = flow["catalog"].read_partition("annotator_scorecards", "all").set_index("annotator")
    careless = next(member for member in BAD_CREW if member.accuracy is not None)
    assert cards.loc[careless.annotator_id, "batches_blocked"] == 1
    # each bad annotator's gold accuracy, counted by hand from the export, is the scorecard's, and the
    # two of them together are far below the threshold (one alone may be lucky on a few gold tasks)
    on_gold = gold_answers(flow["store"], batch_id)
    for member in BAD_CREW:
        right = on_gold[on_gold.annotator == member.annotator_id].right
        assert cards.loc[member.annotator_id, "gold_accuracy"] == pytest.approx(right.mean())
    assert on_gold[on_gold.annotator.isin([m.annotator_id for m in BAD_CREW])].right.mean() < 0.9

    refused = run_client_delivery(flow["instance"], flow["resources"], f"{client}/d-loop-bad")
    assert not refused.success
    assert not list(flow["store"].list(f"deliveries/{client}/"))

    # rework: the batch comes back from better annotators (and a reviewer who checked more of it),
    # passes, and only then is delivered
    result = annotate_and_check(flow, batch_id, GOOD_CREW, seed=12, review_rate=0.6)
    assert result.success
    assert run_client_delivery(flow["instance"], flow["resources"], f"{client}/d-loop-bad").success


def test_later_batches_carry_earlier_gold_as_honeypots(flow):
    client = "datong-schools"
    deliver(flow, 23, client, "d-gold-001", "text", 30)
    for batch_id in batches_of(flow, client, "d-gold-001"):
        annotate_and_check(flow, batch_id, GOOD_CREW)
    gold = flow["catalog"].query(
        "client_gold_items", client_id=client, modality="text", parts=["text"], delivery_id="d-gold-002"
    )
    assert len(gold) >= 2
    deliver(flow, 24, client, "d-gold-002", "text", 30)
    [batch_id] = batches_of(flow, client, "d-gold-002")
    tasks = json.loads(flow["store"].get(f"batches/{batch_id}/tasks.json"))
    honeypots = [task for task in tasks if task["data"]["delivery_id"] == "d-gold-001"]
    # ordinary tasks to the tool: their references stay with annobase
    assert honeypots and not any("annotations" in task for task in tasks)
    result = annotate_and_check(flow, batch_id, GOOD_CREW)
    assert result.success
    consensus = flow["catalog"].read_partition("consensus", batch_id)
    assert consensus.honeypot.sum() == len(honeypots)


def test_medical_text_reaches_annotators_masked(flow):
    delivery = deliver(flow, 25, "xiehe-clinic", "d-pii-001", "text", 40)
    shown = "".join(
        flow["store"].get(f"batches/{batch_id}/tasks.json").decode()
        for batch_id in batches_of(flow, "xiehe-clinic", "d-pii-001")
    )
    planted = [pii for truth in delivery.truth.values() for pii in truth["pii"] if pii["valid"]]
    assert planted and not [pii for pii in planted if pii["value"] in shown]


def test_duplicates_are_dropped_before_annotation(flow):
    first = deliver(flow, 26, "jinneng-mine-safety", "d-dup-001", "image", 6)
    again = make_delivery(27, "jinneng-mine-safety", "d-dup-002", "image", 4)
    again.files["items/i-000001.png"] = first.files["items/i-000001.png"]  # a file seen in d-dup-001
    item = again.manifest["items"][0]["files"]["image"]
    item.update(first.manifest["items"][0]["files"]["image"])
    upload_delivery(flow["store"], again)
    run_flow_for_delivery(flow["instance"], flow["resources"], "jinneng-mine-safety/d-dup-002")
    cleaned = flow["catalog"].read_partition("clean_items", "jinneng-mine-safety/d-dup-002")
    dropped = cleaned[cleaned.status == "dropped"]
    assert dropped.drop_reason.tolist() == ["exact_duplicate"]
    assert dropped.duplicate_of.tolist() == ["jinneng-mine-safety/d-dup-001/i-000001"]


def test_the_export_sensor_requests_each_export_once_and_quarantines_strangers(flow):
    deliver(flow, 28, "jinneng-mine-safety", "d-sensor-001", "text", 10)
    [batch_id] = batches_of(flow, "jinneng-mine-safety", "d-sensor-001")
    complete_batch(flow["store"], batch_id, flow["truth"], GOOD_CREW)
    flow["store"].put("annotations/no-such-batch/export.json", b"[]")
    context = dg.build_sensor_context(
        instance=flow["instance"], resources={"object_store": flow["resources"]["object_store"]}
    )
    result = annotation_exports(context)
    etag = flow["store"].head(f"annotations/{batch_id}/export.json").etag
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [(batch_id, f"{batch_id}@{etag}")]
    assert list(flow["store"].list("quarantine/_invalid_keys/"))


def test_later_text_batches_carry_honest_prelabels(flow):
    """No model for a client's first delivery; from its consensus labels, one for the next."""
    client = "jinneng-mine-safety"
    deliver(flow, 29, client, "d-pre-001", "text", 60)
    first_tasks = [
        task
        for batch_id in batches_of(flow, client, "d-pre-001")
        for task in json.loads(flow["store"].get(f"batches/{batch_id}/tasks.json"))
    ]
    assert not any("predictions" in task for task in first_tasks)
    for batch_id in batches_of(flow, client, "d-pre-001"):
        annotate_and_check(flow, batch_id, GOOD_CREW)

    deliver(flow, 30, client, "d-pre-002", "text", 60)
    tasks = [
        task
        for batch_id in batches_of(flow, client, "d-pre-002")
        for task in json.loads(flow["store"].get(f"batches/{batch_id}/tasks.json"))
        if task["data"]["delivery_id"] == "d-pre-002"
    ]
    predicted = [(task["data"]["item_id"], task["predictions"][0]) for task in tasks]
    assert len(predicted) == 60
    right = sum(
        p["result"][0]["value"]["choices"][0] == flow["truth"][f"{client}/d-pre-002/{item}"]["label"]
        for item, p in predicted
    )
    assert right / len(predicted) >= 0.7, right
    assert all(
        0.5 <= p["score"] <= 1 and p["model_version"].startswith("char-bigram-nb-v1") for _, p in predicted
    )


def test_batches_have_the_shape_label_studio_imports(flow):
    """Side by side with the files Label Studio 1.23.2 itself took (../shared/fixtures)."""
    from pathlib import Path

    fixtures = Path(__file__).resolve().parents[2] / "shared/fixtures/label-studio"
    deliver(flow, 31, "jinneng-mine-safety", "d-shape-001", "text", 10)
    [batch_id] = batches_of(flow, "jinneng-mine-safety", "d-shape-001")
    ours = json.loads(flow["store"].get(f"batches/{batch_id}/tasks.json"))
    theirs = json.loads((fixtures / "text.tasks.json").read_text())
    assert {key for task in ours for key in task} <= {key for task in theirs for key in task}
    # Label Studio keeps any data field; ours add only the batch's tasks version (stale exports are refused)
    assert all(set(task["data"]) - set(theirs[0]["data"]) == {"tasks_version"} for task in ours)
    assert all(set(theirs[0]["data"]) <= set(task["data"]) for task in ours)
    config = flow["store"].get(f"batches/{batch_id}/config.xml").decode()
    assert config == (fixtures / "text.config.xml").read_text().strip()
