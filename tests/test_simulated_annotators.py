"""Simulated annotators: the same seed gives the same annotations, and their error rates are the ones set."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pandas as pd
import pytest
from rapidfuzz.distance import Levenshtein

from assets.quality.image_accuracy import image_accuracy
from simulator import make_delivery, make_utterance
from simulator.annotators import (
    REVIEWER_ID,
    Annotator,
    annotate_boxes,
    annotate_delivery,
    annotate_images,
    annotate_labels,
    annotate_transcript,
    default_crew,
    expected_box_f1,
)

MODALITIES = ["text", "speech", "image", "multimodal"]
COLUMNS = ["task_id", "item_id", "annotator", "ground_truth", "lead_time"]
VALUE = {"text": "label", "speech": "transcript", "image": "boxes", "multimodal": "part_labels"}
DETECTION = ["miner", "helmet", "conveyor"]


def delivery(modality: str, n_items: int = 40):
    return make_delivery(11, "jinneng-mine-safety", f"d-{modality}", modality, n_items)


def letters_and_digits(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c)[0] in "LN")


def test_default_crew_is_deterministic_with_good_careless_and_spammer():
    crew = default_crew(seed=4)
    assert crew == default_crew(seed=4)
    assert crew != default_crew(seed=5)
    accuracies = [a.accuracy for a in crew]
    assert sum(a is not None and 0.97 <= a <= 0.99 for a in accuracies) == 5
    assert sum(a is not None and 0.68 <= a <= 0.72 for a in accuracies) == 1
    assert accuracies.count(None) == 1
    ids = [a.annotator_id for a in crew]
    assert len(set(ids)) == len(ids) and REVIEWER_ID not in ids
    spammer = next(a for a in crew if a.accuracy is None)
    assert spammer.expected_accuracy(4) == 0.25
    assert spammer.lead_time_mean < min(a.lead_time_mean for a in crew if a is not spammer)


@pytest.mark.parametrize("modality", MODALITIES)
def test_annotations_are_deterministic_from_the_seed(modality):
    source = delivery(modality)
    crew = default_crew()
    first = annotate_delivery(source, crew, 3, np.random.default_rng(1), gold_rate=0.3)
    again = annotate_delivery(source, crew, 3, np.random.default_rng(1), gold_rate=0.3)
    other = annotate_delivery(source, crew, 3, np.random.default_rng(2), gold_rate=0.3)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


@pytest.mark.parametrize("modality", MODALITIES)
def test_rows_have_the_shape_the_quality_measures_read(modality):
    source = delivery(modality, n_items=200)
    crew = default_crew()
    annotations = annotate_delivery(source, crew, 3, np.random.default_rng(0), gold_rate=0.25)
    assert list(annotations.columns) == [*COLUMNS, VALUE[modality]]
    work = annotations[~annotations["ground_truth"]]
    gold = annotations[annotations["ground_truth"]]
    per_task = work.groupby("task_id")["annotator"]
    assert (per_task.size() == 3).all() and (per_task.nunique() == 3).all()
    assert set(work["annotator"]) <= {a.annotator_id for a in crew}
    assert (work["lead_time"] > 0).all()
    assert 0.15 < len(gold) / 200 < 0.35
    assert (gold["annotator"] == REVIEWER_ID).all() and gold["lead_time"].isna().all()
    truth_key = "label" if modality == "text" else VALUE[modality]
    for item_id, value in zip(gold["item_id"], gold[VALUE[modality]], strict=True):
        assert value == source.truth[item_id][truth_key]
    assert sorted(annotations["item_id"].unique()) == sorted(source.truth)


def test_every_part_of_a_multimodal_item_is_labelled():
    source = delivery("multimodal", n_items=100)
    annotations = annotate_delivery(source, default_crew(), 2, np.random.default_rng(0))
    for item_id, part_labels in zip(annotations["item_id"], annotations["part_labels"], strict=True):
        assert part_labels.keys() == source.truth[item_id]["part_labels"].keys()
        assert set(part_labels.values()) <= set(source.manifest["label_set"])


def test_label_error_rates_match_the_accuracies_set():
    crew = [Annotator(11, 0.95, 10.0), Annotator(12, 0.70, 5.0), Annotator(13, None, 1.0)]
    truth = {f"i-{k:05d}": DETECTION[k % 3] for k in range(30_000)}
    annotations = annotate_labels(truth, DETECTION, crew, 3, np.random.default_rng(9), gold_rate=0.0)
    annotations["truth"] = annotations["item_id"].map(truth)
    right = (annotations["label"] == annotations["truth"]).groupby(annotations["annotator"]).mean()
    assert right[11] == pytest.approx(0.95, abs=0.01)
    assert right[12] == pytest.approx(0.70, abs=0.01)
    assert right[13] == pytest.approx(1 / 3, abs=0.01)
    # a careless annotator's wrong labels spread evenly over the other labels
    wrong = annotations[(annotations["annotator"] == 12) & (annotations["label"] != annotations["truth"])]
    assert (wrong.groupby("truth")["label"].value_counts(normalize=True) - 0.5).abs().max() < 0.03
    lead_times = annotations.groupby("annotator")["lead_time"].mean()
    assert lead_times.to_dict() == pytest.approx({11: 10.0, 12: 5.0, 13: 1.0}, rel=0.03)


@pytest.mark.parametrize("accuracy", [0.98, 0.9, 0.7])
def test_transcript_character_error_rate_is_one_minus_accuracy(accuracy):
    source = random.Random(3)
    rng = np.random.default_rng(3)
    edits = chars = 0
    for _ in range(2000):
        text = make_utterance(source, "energy").text
        typed = annotate_transcript(text, accuracy, rng)
        # punctuation is never touched: only letters and digits count as characters
        assert [c for c in typed if unicodedata.category(c)[0] == "P"] == [
            c for c in text if unicodedata.category(c)[0] == "P"
        ]
        reference = letters_and_digits(text)
        edits += Levenshtein.distance(letters_and_digits(typed), reference)
        chars += len(reference)
    assert 1 - edits / chars == pytest.approx(accuracy, abs=0.015)
    assert annotate_transcript("井下安全，通风正常。", 1.0, rng) == "井下安全，通风正常。"


@pytest.mark.parametrize("accuracy", [0.98, 0.7])
def test_box_f1_follows_the_accuracy_set(accuracy):
    source = random.Random(5)  # up to 8 boxes on a 4 × 2 grid, so no two overlap
    truth = {
        f"i-{k:05d}": [
            {
                "x": 25.0 * (j % 4),
                "y": 50.0 * (j // 4),
                "width": 20.0,
                "height": 40.0,
                "label": source.choice(DETECTION),
            }
            for j in range(source.randint(1, 8))
        ]
        for k in range(6000)
    }
    annotations = annotate_images(
        truth, DETECTION, [Annotator(1, accuracy, 20.0)], 1, np.random.default_rng(5), 1.0
    )
    assert image_accuracy(annotations) == pytest.approx(expected_box_f1(accuracy), abs=0.015)


def test_jittered_boxes_stay_on_their_object_and_spammers_draw_anywhere():
    rng = np.random.default_rng(6)
    truth = [{"x": 10.0, "y": 20.0, "width": 15.0, "height": 25.0, "label": "miner"}]
    for _ in range(500):
        (drawn,) = annotate_boxes(truth, 1.0, rng, DETECTION)
        assert drawn["label"] == "miner"
        assert abs(drawn["x"] - 10.0) < 3 and abs(drawn["width"] - 15.0) < 3
    spammer = annotate_images({"i-1": truth}, DETECTION, [Annotator(1, None, 1.0)], 1, rng, gold_rate=0.0)
    assert 1 <= len(spammer["boxes"][0]) <= 3
