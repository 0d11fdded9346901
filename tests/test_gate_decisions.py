"""The gate at realistic gold sizes: batches annotated by crews of known accuracy are measured within
±1.5 points of their true accuracy, and the Great Expectations gate passes exactly those whose true
accuracy meets the threshold."""

import numpy as np
import pandas as pd
import pytest

from annobase.settings import load_settings
from assets.quality.batch_quality import measure_batch
from quality_checks.gx_runner import validate_dataframe
from quality_checks.qa_gate import gate_expectations
from simulator.annotators import Annotator, annotate_labels, annotate_transcripts

LABELS = ["hazard", "normal"]


def catalog_shaped(rows):
    """The columns `annotations` has in the catalog."""
    rows = rows.copy()
    for column in ("label", "transcript", "boxes_json", "part_labels_json"):
        if column not in rows:
            rows[column] = None
    rows["item_key"] = "c/d/" + rows.item_id
    return rows


def true_accuracy(rows, crew: list[Annotator]) -> float:
    """What the crew's known accuracies predict for the annotations actually made on gold tasks."""
    gold_tasks = set(rows.task_id[rows.ground_truth])
    work = rows[~rows.ground_truth & rows.task_id.isin(gold_tasks)]
    known = {member.annotator_id: member.expected_accuracy(len(LABELS)) for member in crew}
    return float(work.annotator.map(known).mean())


CREWS = {
    "good": [Annotator(2, 0.98, 20), Annotator(3, 0.97, 25), Annotator(4, 0.99, 30)],
    "one careless": [Annotator(2, 0.98, 20), Annotator(3, 0.97, 25), Annotator(8, 0.70, 7)],
    "careless and spammer": [Annotator(8, 0.70, 7), Annotator(9, None, 2), Annotator(2, 0.98, 20)],
}


@pytest.mark.parametrize("crew_name", sorted(CREWS))
def test_text_batches_are_measured_within_1_5_points_and_gated_by_their_truth(crew_name):
    crew = CREWS[crew_name]
    rng = np.random.default_rng(sum(map(ord, crew_name)))
    truth = {f"i-{n:06d}": LABELS[int(rng.integers(2))] for n in range(8000)}
    rows = catalog_shaped(annotate_labels(truth, LABELS, crew, overlap=1, rng=rng, gold_rate=0.5))

    quality = measure_batch(rows, "text", LABELS)
    expected = true_accuracy(rows, crew)
    assert quality.scores["text_accuracy"] == pytest.approx(expected, abs=0.015)

    threshold = load_settings().thresholds["text_accuracy"]
    row = {"modality": "text", **quality.scores, "unannotated_tasks": 0}
    outcome = validate_dataframe(
        pd.DataFrame([row]), "qa_gate", gate_expectations("text_accuracy", threshold)
    )
    assert outcome.success == (expected >= threshold), (crew_name, expected)
    cards = quality.scorecards.set_index("annotator")
    for member in crew:
        assert cards.loc[member.annotator_id, "gold_accuracy"] == pytest.approx(
            member.expected_accuracy(len(LABELS)), abs=0.03
        )


def test_speech_batches_are_measured_within_1_5_points():
    crew = [Annotator(2, 0.98, 20), Annotator(3, 0.93, 20)]
    rng = np.random.default_rng(5)
    texts = {f"s-{n:05d}": "井下瓦斯浓度超限立即撤人通风系统运行正常" for n in range(3000)}
    rows = catalog_shaped(annotate_transcripts(texts, crew, overlap=1, rng=rng, gold_rate=0.5))
    quality = measure_batch(rows, "speech", [])
    assert quality.scores["speech_accuracy"] == pytest.approx(true_accuracy(rows, crew), abs=0.015)
