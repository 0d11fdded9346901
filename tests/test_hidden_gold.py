"""Hidden gold: honeypot references never leave annobase, every batch carries a GB/T 2828.1 review
sample, a batch without enough gold is never passed, multimodal parts are each held to accuracy, and
the gate's operating characteristic is what benchmarks/RESULTS.md says."""

import io
import json

import pandas as pd
import pytest
from flow_helpers import run_client_delivery, run_flow_for_delivery, run_qa

from annobase.keys import DeliveryRef
from annobase.settings import load_settings
from assets.annotation.batching import plan_batches
from assets.annotation.label_studio_export import REFERENCE_ANNOTATOR, parse_export
from assets.quality import gold_sampling
from assets.quality.gold_sampling import code_letter, gold_verdict, review_sample_size
from benchmarks.oc import gold_plan, share_passed
from resources import CatalogResource
from simulator import make_delivery, upload_delivery
from simulator.annotation_tool import complete_batch
from simulator.annotators import Annotator, default_crew
from simulator.starter_gold import curate_starter_gold

SHARP_CREW = [Annotator(2, 0.995, 20.0), Annotator(3, 0.995, 25.0), Annotator(4, 0.995, 30.0)]
CARELESS = [member for member in default_crew(seed=4) if member.accuracy is None or member.accuracy < 0.9]


# --- the sampling plan, the verdict and the batches, as plain functions ---------------------------


@pytest.mark.parametrize(
    ("lot", "letter", "sample"),
    [(2, "A", 2), (8, "A", 2), (9, "B", 3), (20, "C", 5), (50, "D", 8), (51, "E", 13), (200, "G", 32)]
    + [(500, "H", 50), (1000, "J", 80), (1201, "K", 125), (10000, "L", 200), (10001, "M", 315)],
)
def test_the_review_sample_follows_gb_t_2828_1_level_ii(lot, letter, sample):
    assert (code_letter(lot), review_sample_size(lot)) == (letter, sample)


def test_a_batch_without_enough_gold_is_never_passed_whatever_its_accuracy():
    verdict = gold_verdict(gold_tasks=7, required=8, accuracy=1.0, threshold=0.95)
    assert not verdict.passed and verdict.reason == gold_sampling.INSUFFICIENT_GOLD
    assert gold_verdict(8, 8, 1.0, 0.95).passed


def test_multimodal_parts_are_judged_before_consistency():
    careless_text = gold_verdict(
        20, 8, 0.96, 0.95, part_accuracy={"image": 1.0, "text": 0.92}, consistency=(0.99, 0.9)
    )
    assert (careless_text.passed, careless_text.reason) == (False, gold_sampling.PART_BELOW_THRESHOLD)
    assert "text 0.9200" in careless_text.detail
    truly_disagree = gold_verdict(
        20, 8, 0.99, 0.95, part_accuracy={"image": 0.99, "text": 0.99}, consistency=(0.7, 0.9)
    )
    assert (truly_disagree.passed, truly_disagree.reason) == (False, gold_sampling.PAIRS_DISAGREE)


def test_every_batch_carries_a_review_sample_and_small_part_groups_join_a_sibling():
    settings = load_settings().annotation
    ref = DeliveryRef("c", "d-1")
    groups = {
        ("image", "text"): [f"c/d-1/i-{n:06d}" for n in range(75)],
        ("image", "text", "audio"): [f"c/d-1/a-{n:06d}" for n in range(3)],
    }
    honeypots = {("image", "text"): [f"c/d-0/i-{n:06d}" for n in range(40)]}
    batches = plan_batches(ref, groups, honeypots, settings)
    assert [batch.parts for batch in batches] == [("image", "text")] * 2  # 78 items: 39 and 39
    own = [[task for task in batch.tasks if not task.honeypot] for batch in batches]
    assert sorted(task.item_key for tasks in own for task in tasks) == sorted(sum(groups.values(), []))
    for batch, tasks in zip(batches, own, strict=True):
        assert sum(task.review for task in batch.tasks) == review_sample_size(len(tasks)) == 8
        assert not any(task.review for task in batch.tasks if task.honeypot)
        assert sum(task.honeypot for task in batch.tasks) == 4
    # with no sibling whose parts they have, a small group is a batch of its own
    alone = plan_batches(ref, {("text", "audio"): ["c/d-1/x-1", "c/d-1/x-2"]}, {}, settings)
    assert [len(batch.tasks) for batch in alone] == [2]


def test_a_honeypot_is_scored_against_the_kept_reference_not_the_tools():
    """A tool that sends ground truth for a honeypot task (someone marked it) cannot set the bar."""
    data = {"item_id": "g-1", "client_id": "annobase", "delivery_id": "starter-energy-text"}

    def choice(label):
        return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]

    export = [
        {
            "id": 5,
            "data": {**data, "text": "..."},
            "annotations": [
                {"id": 1, "completed_by": 7, "ground_truth": False, "result": choice("normal")},
                {"id": 2, "completed_by": 1, "ground_truth": True, "result": choice("normal")},
            ],
        }
    ]
    parsed = parse_export(
        json.dumps(export).encode(),
        "b-1",
        "text",
        ["hazard", "normal"],
        batch_items=["annobase/starter-energy-text/g-1"],
        references={"annobase/starter-energy-text/g-1": choice("hazard")},
    )
    assert parsed.problems == []
    rows = {(row.annotator, row.ground_truth): row.label for row in parsed.annotations}
    assert rows == {(7, False): "normal", (REFERENCE_ANNOTATOR, True): "hazard"}


# --- the operating characteristic (benchmarks/oc.py), a small run ---------------------------------


def test_the_gate_tells_a_090_crew_from_a_098_crew_where_the_plan_has_the_gold():
    import numpy as np

    rng = np.random.default_rng(7)
    for size in (200, 1000):
        assert share_passed(0.90, size, True, 3000, rng) <= 0.05
        assert 1 - share_passed(0.98, size, True, 3000, rng) <= 0.05
    # a batch of 20 has 13 gold labels: no plan on them tells 0.90 from 0.98 at 5 % both ways
    tasks, labels, required = gold_plan(20, True)
    assert (required, labels) == (5, 13)
    assert share_passed(0.90, 20, True, 3000, rng) > 0.05


# --- the whole loop on SeaweedFS, Dask and GX ------------------------------------------------------


@pytest.fixture
def flow(s3_store, dask_cluster, instance):
    from conftest import annobase_resources

    return {
        "store": s3_store.open(),
        "resources": annobase_resources(s3_store, dask_cluster),
        "catalog": CatalogResource(object_store=s3_store).open(),
        "instance": instance,
        "truth": {},
    }


def deliver(flow, seed, client_id, delivery_id, modality, n_items, **options) -> list[str]:
    delivery = make_delivery(seed, client_id, delivery_id, modality, n_items, **options)
    upload_delivery(flow["store"], delivery)
    flow["truth"].update({f"{client_id}/{delivery_id}/{item}": t for item, t in delivery.truth.items()})
    assert run_flow_for_delivery(flow["instance"], flow["resources"], f"{client_id}/{delivery_id}").success
    batches = flow["catalog"].query("delivery_batches", client_id=client_id, delivery_id=delivery_id)
    return batches.batch_id.tolist()


def gate(flow, batch_id: str) -> pd.Series:
    return flow["catalog"].read_partition("gate_results", f"{batch_id}/qa_gate").iloc[0]


def test_starter_gold_hides_among_a_first_delivery_and_never_reaches_the_tool(flow):
    store = flow["store"]
    flow["truth"].update(curate_starter_gold(store, "energy", "text", n_items=30))
    [batch_id] = deliver(flow, 41, "jinneng-mine-safety", "d-hidden-001", "text", 40)

    tasks = json.loads(store.get(f"batches/{batch_id}/tasks.json"))
    plan = json.loads(store.get(f"batches/{batch_id}/batch.json"))
    keys = [f"{t['data']['client_id']}/{t['data']['delivery_id']}/{t['data']['item_id']}" for t in tasks]
    starter = [key for key in keys if key.startswith("annobase/starter-energy-text/")]
    assert len(starter) == 4  # 10 % of 40, from the base's starter set: the client has no gold yet
    assert not any("annotations" in task for task in tasks)  # no reference goes to the tool
    assert not any("honeypot" in entry for entry in plan["tasks"])  # nor which tasks are honeypots
    kept = flow["catalog"].read_partition("honeypot_references", "jinneng-mine-safety/d-hidden-001")
    assert sorted(kept.item_key) == sorted(starter) and set(kept.source) == {"starter"}
    assert len(plan["review_item_keys"]) == review_sample_size(40) == 8
    assert not set(plan["review_item_keys"]) & set(starter)

    complete_batch(store, batch_id, flow["truth"], SHARP_CREW, seed=3)
    export = json.loads(store.get(f"annotations/{batch_id}/export.json"))
    reviewed = {
        f"{t['data']['client_id']}/{t['data']['delivery_id']}/{t['data']['item_id']}"
        for t in export
        if any(a["ground_truth"] for a in t["annotations"])
    }
    assert reviewed == set(plan["review_item_keys"])  # the review sample came back as ground truth
    result = run_qa(flow["instance"], flow["resources"], batch_id)
    assert result.success
    qa = flow["catalog"].read_partition("qa_results", batch_id).iloc[0]
    assert qa.gold_tasks == 12 and qa.gold_required == 8 and qa.unreviewed_tasks == 0
    assert qa.accuracy_low <= qa.text_accuracy <= qa.accuracy_high
    annotations = flow["catalog"].read_partition("annotations", batch_id)
    references = annotations[annotations.annotator == REFERENCE_ANNOTATOR]
    assert sorted(references.item_key) == sorted(starter) and references.ground_truth.all()
    verdict = gate(flow, batch_id)
    assert verdict.passed and verdict.reason == "passed" and verdict.observed_low < verdict.observed

    # what the client gets back holds its own items only, no honeypot
    assert run_client_delivery(
        flow["instance"], flow["resources"], "jinneng-mine-safety/d-hidden-001"
    ).success
    labels = pd.read_parquet(
        io.BytesIO(store.get("deliveries/jinneng-mine-safety/d-hidden-001/labels.parquet"))
    )
    assert len(labels) == 40 and not labels.item_key.str.startswith("annobase/").any()


def test_a_batch_whose_review_did_not_come_back_is_blocked_for_insufficient_gold(flow):
    """No client gold, no starter set, and a tool that reviewed 2 tasks instead of the 8 asked."""
    [batch_id] = deliver(flow, 42, "yungang-grottoes", "d-nogold-001", "text", 40)
    complete_batch(flow["store"], batch_id, flow["truth"], SHARP_CREW, review_sample=False, review_rate=0.05)
    result = run_qa(flow["instance"], flow["resources"], batch_id)
    assert result.success  # a verdict is not an outage: the run succeeds, its qa_gate check fails
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "qa_gate")
    assert not evaluation.passed and evaluation.metadata["reason"].value == "insufficient_gold"
    verdict = gate(flow, batch_id)
    assert not verdict.passed and verdict.reason == "insufficient_gold"
    qa = flow["catalog"].read_partition("qa_results", batch_id).iloc[0]
    assert (qa.gold_tasks, qa.gold_required) == (2, 8) and qa.unreviewed_tasks >= 6
    assert not run_client_delivery(
        flow["instance"], flow["resources"], "yungang-grottoes/d-nogold-001"
    ).success


def test_a_careless_multimodal_crew_is_blocked_on_part_accuracy(flow):
    batches = deliver(
        flow, 43, "jinneng-mine-safety", "d-mm-careless", "multimodal", 30, disagreement_rate=0.0
    )
    assert len(batches) == 2  # (image, text) and (image, text, audio) items
    for batch_id in batches:
        complete_batch(flow["store"], batch_id, flow["truth"], CARELESS, seed=5)
        judged = run_qa(flow["instance"], flow["resources"], batch_id)
        evaluation = next(e for e in judged.get_asset_check_evaluations() if e.check_name == "qa_gate")
        assert judged.success and not evaluation.passed
        verdict = gate(flow, batch_id)
        assert verdict.reason == "part_below_threshold" and json.loads(verdict.annotators_below)
        qa = flow["catalog"].read_partition("qa_results", batch_id).iloc[0]
        parts = json.loads(qa.part_accuracy_json)
        assert {"image", "text"} <= set(parts) and min(parts.values()) < 0.95


def test_accurate_parts_that_disagree_are_the_clients_not_the_annotators(flow):
    # starter items with audio serve both part groups, each with its reference cut to its parts
    flow["truth"].update(curate_starter_gold(flow["store"], "energy", "multimodal", n_items=20))
    batches = deliver(flow, 44, "jinneng-mine-safety", "d-mm-pairs", "multimodal", 40, disagreement_rate=0.5)
    reasons = set()
    for batch_id in batches:
        complete_batch(flow["store"], batch_id, flow["truth"], SHARP_CREW, seed=5, review_rate=1.0)
        run_qa(flow["instance"], flow["resources"], batch_id)
        verdict = gate(flow, batch_id)
        qa = flow["catalog"].read_partition("qa_results", batch_id).iloc[0]
        assert flow["catalog"].read_partition("export_problems", batch_id).empty
        assert qa.unannotated_tasks == 0 and qa.gold_tasks > qa.gold_required  # honeypots counted
        assert min(json.loads(qa.part_accuracy_json).values()) >= 0.95  # every part accurate
        if qa.cross_modal_consistency < 0.9:
            assert not verdict.passed and verdict.reason == "client_pairs_disagree"
            assert json.loads(verdict.annotators_below) == []  # nobody blamed
        reasons.add(verdict.reason)
    assert "client_pairs_disagree" in reasons
