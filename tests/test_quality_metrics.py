"""Quality measures: published values, a reference implementation, hand-made cases and simulated crews."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene

from assets.quality.agreement import krippendorff_alpha
from assets.quality.consensus import (
    box_consensus,
    consensus,
    dawid_skene,
    label_consensus,
    majority_vote,
    transcript_consensus,
)
from assets.quality.cross_modal_consistency import cross_modal_consistency
from assets.quality.image_accuracy import box_f1, box_iou, greedy_matches, image_accuracy
from assets.quality.scorecards import batch_scorecards
from assets.quality.speech_accuracy import edit_distances, normalise_transcript, speech_accuracy
from assets.quality.text_accuracy import text_accuracy
from simulator import iter_text_items
from simulator.annotators import Annotator, annotate_labels, default_crew

ENERGY = ["hazard", "normal"]
DETECTION = ["miner", "helmet", "conveyor"]


def rows(records: list[tuple], column: str) -> pd.DataFrame:
    """Annotation rows from (task_id, annotator, ground_truth, lead_time, value) tuples."""
    frame = pd.DataFrame(records, columns=["task_id", "annotator", "ground_truth", "lead_time", column])
    frame.insert(1, "item_id", "i-" + frame["task_id"].astype(str))
    return frame


def box(x: float, y: float, width: float, height: float, label: str = "helmet") -> dict:
    return {"x": x, "y": y, "width": width, "height": height, "label": label}


def simulated_text(n_items: int, seed: int, crew: list[Annotator], overlap: int = 3, gold_rate: float = 0.0):
    """The crew labelling a simulated energy client's texts; returns (rows, true label per task_id)."""
    truth = {item_id: label for item_id, _, label, _ in iter_text_items(seed, "energy", n_items)}
    annotations = annotate_labels(truth, ENERGY, crew, overlap, np.random.default_rng(seed), gold_rate)
    return annotations, pd.Series(list(truth.values()), index=pd.RangeIndex(1, n_items + 1, name="task_id"))


# -- inter-annotator agreement ---------------------------------------------------------------------


def test_krippendorff_alpha_on_krippendorffs_published_example():
    """4 coders × 12 units, nominal, with missing values: alpha = 0.743 (Krippendorff 2011, Computing
    Krippendorff's Alpha-Reliability; the same matrix is in the krippendorff package's docstring)."""
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    records = [
        (unit + 1, coder + 1, False, None, str(value))
        for coder, values in enumerate(data)
        for unit, value in enumerate(values)
        if value is not None
    ]
    # a gold row is a reviewer's reference, not a coder: it must not move alpha
    records.append((1, 99, True, None, "5"))
    assert krippendorff_alpha(rows(records, "label")) == pytest.approx(0.743, abs=0.001)


def test_krippendorff_alpha_is_none_when_undefined():
    no_overlap = rows([(1, 1, False, 1.0, "a"), (2, 2, False, 1.0, "b")], "label")
    one_value = rows([(1, 1, False, 1.0, "a"), (1, 2, False, 1.0, "a")], "label")
    assert krippendorff_alpha(no_overlap) is None
    assert krippendorff_alpha(one_value) is None


# -- label consensus -------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # crowd-kit 1.4.2's own pandas calls
def test_dawid_skene_agrees_with_crowd_kit():
    crew = default_crew(seed=3)
    truth = {f"i-{k:05d}": DETECTION[k % 3] for k in range(3000)}
    annotations = annotate_labels(truth, DETECTION, crew, 3, np.random.default_rng(3), gold_rate=0.0)
    ours = dawid_skene(annotations, DETECTION)["label"]
    data = annotations.rename(columns={"task_id": "task", "annotator": "worker"})[["task", "worker", "label"]]
    reference = DawidSkene(n_iter=100, tol=1e-5).fit_predict(data)
    same = (ours == reference.reindex(ours.index).astype(object)).mean()
    print(f"Dawid-Skene vs crowd-kit: {same:.2%} same labels over {len(ours)} tasks")
    assert same >= 0.99


def test_dawid_skene_beats_majority_vote_with_a_spammer_and_a_careless_annotator():
    crew = default_crew(seed=5)
    annotations, truth = simulated_text(4000, seed=5, crew=crew)
    mv_right = (majority_vote(annotations, ENERGY)["label"] == truth).sum()
    ds_right = (dawid_skene(annotations, ENERGY)["label"] == truth).sum()
    consensus_right = (label_consensus(annotations, ENERGY)["label"] == truth).sum()
    print(f"true labels recovered of 4000: majority vote {mv_right}, Dawid-Skene {ds_right}")
    assert ds_right > mv_right
    assert consensus_right == ds_right  # every task has 3 labels, so the consensus is Dawid-Skene's


def test_dawid_skene_on_300k_labels_recovers_the_truth():
    """At scale (its speed is measured by benchmarks/qa.py): weighing annotators by their estimated
    confusion beats the plain vote against the default crew, careless annotator and spammer included."""
    truth = {f"i-{k:06d}": ENERGY[k % 2] for k in range(100_000)}
    annotations = annotate_labels(truth, ENERGY, default_crew(), 3, np.random.default_rng(0), gold_rate=0.0)
    assert len(annotations) == 300_000
    result = dawid_skene(annotations, ENERGY)
    items = annotations.drop_duplicates("task_id").set_index("task_id").item_id
    expected = items.reindex(result.index).map(truth)
    right = (result.label == expected).mean()
    voted = majority_vote(annotations, ENERGY)
    assert len(result) == 100_000 and right > 0.98 and right > (voted.label == expected).mean(), right


def test_majority_vote_breaks_ties_by_label_set_order_and_reports_agreement():
    annotations = rows(
        [
            (1, 1, False, 1.0, "normal"),
            (1, 2, False, 1.0, "hazard"),
            (2, 1, False, 1.0, "normal"),
            (2, 2, False, 1.0, "normal"),
            (2, 3, False, 1.0, "hazard"),
            (2, 9, True, None, "hazard"),  # gold: not a vote
        ],
        "label",
    )
    votes = majority_vote(annotations, ENERGY)
    assert votes["label"].tolist() == ["hazard", "normal"]
    assert votes["annotations"].tolist() == [2, 3]
    assert votes["agreement"].tolist() == pytest.approx([0.5, 2 / 3])
    assert majority_vote(annotations, ["normal", "hazard"]).loc[1, "label"] == "normal"


def test_missing_answers_are_no_votes():
    labels = rows(
        [(1, 2, False, 1.0, "normal"), (1, 3, False, 1.0, None), (1, 4, False, 1.0, "hazard")], "label"
    )
    assert majority_vote(labels, ENERGY).loc[1].to_dict() == {
        "label": "hazard",
        "annotations": 2,
        "agreement": 0.5,
    }
    parts = rows(
        [(1, 2, False, 1.0, {"image": "normal", "text": "normal"}), (1, 3, False, 1.0, None)], "part_labels"
    )
    assert consensus(parts, "multimodal", ENERGY)["annotations"].tolist() == [1, 1]


def test_label_consensus_uses_dawid_skene_only_with_three_labels():
    annotations = rows(
        [(1, 1, False, 1.0, "hazard"), (1, 2, False, 1.0, "hazard"), (1, 3, False, 1.0, "normal")]
        + [(2, 1, False, 1.0, "normal"), (2, 2, False, 1.0, "hazard")],
        "label",
    )
    assert label_consensus(annotations, ENERGY)["method"].tolist() == ["dawid_skene", "majority_vote"]
    with pytest.raises(ValueError, match="outside the label set"):
        label_consensus(annotations, ["hazard"])


# -- speech ----------------------------------------------------------------------------------------


def test_cer_normalisation_folds_width_and_drops_punctuation():
    assert normalise_transcript("井下，安全！") == normalise_transcript("井下安全") == "井下安全"
    assert edit_distances(
        [normalise_transcript("井下，安全！")], [normalise_transcript("井下安全")]
    ).tolist() == [0]
    assert normalise_transcript("ＣＯ浓度　２４ｐｐｍ。") == "CO浓度24ppm"
    assert normalise_transcript("“好” 的、 ok.") == "好的ok"


def test_speech_accuracy_sums_edits_over_the_batch():
    annotations = rows(
        [
            (1, 9, True, None, "井下安全。"),
            (1, 1, False, 3.0, "井上安全"),  # 1 edit of 4 characters
            (2, 9, True, None, "通风系统运转正常"),
            (2, 1, False, 5.0, "通风系统，运转正常！"),  # 0 edits of 8
            (3, 1, False, 2.0, "没有参考"),  # no gold: not scored
        ],
        "transcript",
    )
    assert speech_accuracy(annotations) == pytest.approx(1 - 1 / 12)


def test_transcript_consensus_is_the_medoid():
    annotations = rows(
        [
            (1, 1, False, 1.0, "井下安全正常"),
            (1, 2, False, 1.0, "井下安全，正常。"),
            (1, 3, False, 1.0, "井上安全正常"),
            (1, 4, False, 1.0, "井上完全不常"),
        ],
        "transcript",
    )
    result = transcript_consensus(annotations).loc[1]
    assert result["transcript"] == "井下安全正常"  # ties with annotator 2's, which normalises the same
    assert result["annotations"] == 4
    assert result["agreement"] == pytest.approx(0.5)


# -- images ----------------------------------------------------------------------------------------


def test_box_iou_and_f1_on_hand_made_boxes():
    assert box_iou(box(0, 0, 10, 10), box(5, 0, 10, 10)) == pytest.approx(1 / 3)
    assert box_iou(box(0, 0, 10, 10), box(20, 20, 5, 5)) == 0.0
    reference = [box(10, 10, 20, 20, "helmet"), box(50, 50, 20, 20, "miner")]
    drawn = [
        box(11, 11, 20, 20, "helmet"),  # IoU 0.82: a match
        box(50, 50, 20, 20, "helmet"),  # right place, wrong label
        box(80, 5, 10, 10, "miner"),  # nothing there
    ]
    assert box_f1(drawn, reference) == pytest.approx(2 * 1 / (2 * 1 + 2 + 1))
    assert box_f1(reference, reference) == 1.0
    assert box_f1([], []) == 1.0
    # two boxes on one object: one-to-one, so the second is a false positive
    assert box_f1([box(10, 10, 20, 20), box(12, 10, 20, 20)], [box(10, 10, 20, 20)]) == pytest.approx(2 / 3)
    # IoU exactly 0.5 matches
    assert box_iou(box(0, 0, 20, 10), box(0, 0, 10, 10)) == 0.5
    assert box_f1([box(0, 0, 20, 10)], [box(0, 0, 10, 10)]) == 1.0


def test_vectorised_greedy_matching_is_sequential_greedy():
    rng = np.random.default_rng(11)
    pairs = pd.DataFrame(
        {"left": rng.integers(0, 40, 400), "right": rng.integers(0, 40, 400), "iou": rng.uniform(0.5, 1, 400)}
    ).drop_duplicates(["left", "right"])
    expected, used_left, used_right = set(), set(), set()
    for left, right, _ in sorted(
        zip(pairs["left"], pairs["right"], pairs["iou"], strict=True), key=lambda p: -p[2]
    ):
        if left not in used_left and right not in used_right:
            expected.add((left, right))
            used_left.add(left)
            used_right.add(right)
    matches = greedy_matches(pairs, "left", "right")
    assert set(zip(matches["left"], matches["right"], strict=True)) == expected


def test_image_accuracy_and_box_consensus_on_hand_made_boxes():
    helmet, miner = box(10, 10, 20, 20, "helmet"), box(50, 50, 20, 20, "miner")
    annotations = rows(
        [
            (1, 9, True, None, [helmet, miner]),
            (1, 1, False, 1.0, [box(12, 10, 20, 20, "helmet"), miner]),
            (1, 2, False, 1.0, [box(8, 10, 20, 20, "helmet")]),  # missed the miner
            (1, 3, False, 1.0, [box(10, 10, 20, 20, "miner"), box(80, 80, 10, 10, "conveyor")]),
        ],
        "boxes",
    )
    # TP 3, FP 2, FN 3
    assert image_accuracy(annotations) == pytest.approx(6 / (6 + 2 + 3))
    agreed = box_consensus(annotations).loc[1]
    assert agreed["boxes"] == [box(10, 10, 20, 20, "helmet")]  # the miner was drawn by 1 of 3: dropped
    assert agreed["annotations"] == 3
    assert agreed["agreement"] == pytest.approx(1 / 3)


# -- multimodal ------------------------------------------------------------------------------------


def test_cross_modal_consistency_on_hand_made_consensus():
    part_consensus = pd.DataFrame(
        [
            (1, "image", "hazard"),
            (1, "text", "hazard"),
            (2, "image", "hazard"),
            (2, "text", "normal"),
            (3, "image", "normal"),
            (3, "text", "normal"),
            (3, "audio", "normal"),
            (4, "image", "normal"),  # one labelled part: nothing to compare
        ],
        columns=["task_id", "part", "label"],
    ).set_index(["task_id", "part"])
    assert cross_modal_consistency(part_consensus) == pytest.approx(2 / 3)


def test_cross_modal_consistency_from_part_labels():
    both_hazard = {"image": "hazard", "text": "hazard"}
    annotations = rows(
        [(1, annotator, False, 1.0, both_hazard) for annotator in (1, 2, 3)]
        + [
            (2, annotator, False, 1.0, {"image": "normal", "text": "hazard", "audio": "normal"})
            for annotator in (1, 2)
        ]
        + [
            (3, 1, False, 1.0, {"image": "normal", "text": "normal"}),
            (3, 2, False, 1.0, {"image": "normal", "text": "normal"}),
            (3, 9, True, None, both_hazard),  # gold: not part of the consensus
        ],
        "part_labels",
    )
    agreed = consensus(annotations, "multimodal", ENERGY)
    assert agreed.loc[(2, "text"), "label"] == "hazard"
    assert agreed.loc[(3, "text"), "label"] == "normal"
    assert cross_modal_consistency(agreed) == pytest.approx(2 / 3)


# -- scorecards ------------------------------------------------------------------------------------


def test_measured_accuracies_of_simulated_annotators_match_their_known_accuracy():
    crew = default_crew(seed=8)
    annotations, _ = simulated_text(20_000, seed=8, crew=crew, gold_rate=1.0)
    assert text_accuracy(annotations) is not None
    cards = batch_scorecards(annotations, "text", ENERGY).set_index("annotator")
    for annotator in crew:
        known = annotator.expected_accuracy(len(ENERGY))
        measured = cards.loc[annotator.annotator_id, "gold_accuracy"]
        print(f"annotator {annotator.annotator_id}: known {known:.3f}, measured {measured:.3f}")
        assert measured == pytest.approx(known, abs=0.015)


def test_scorecards_count_tasks_and_skip_missing_lead_times():
    annotations = rows(
        [
            (1, 9, True, None, "hazard"),
            (1, 1, False, 10.0, "hazard"),
            (1, 2, False, None, "normal"),
            (2, 1, False, 30.0, "normal"),
            (2, 2, False, None, "normal"),
            (3, 1, False, None, "hazard"),  # alone on task 3: no agreement to measure
        ],
        "label",
    )
    cards = batch_scorecards(annotations, "text", ENERGY).set_index("annotator")
    assert cards["tasks_done"].to_dict() == {1: 3, 2: 2}
    assert cards["gold_tasks"].to_dict() == {1: 1, 2: 1}
    assert cards["gold_accuracy"].to_dict() == {1: 1.0, 2: 0.0}
    assert cards.loc[1, "median_lead_time"] == 20.0
    assert np.isnan(cards.loc[2, "median_lead_time"])
    # task 1 ties 1-1 and goes to "hazard" (first in the label set); task 2 is "normal"
    assert cards["agreement_with_consensus"].to_dict() == {1: 1.0, 2: 0.5}
