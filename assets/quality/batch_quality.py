"""One batch's quality, from its annotation rows: the function `qa_results` runs on a Dask worker."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from assets.quality.agreement import krippendorff_alpha
from assets.quality.annotation_rows import TASK_PART, annotator_rows, batch_score
from assets.quality.consensus import consensus
from assets.quality.cross_modal_consistency import cross_modal_consistency
from assets.quality.gold_sampling import wilson_interval
from assets.quality.image_accuracy import box_score
from assets.quality.scorecards import batch_scorecards, gold_scores
from assets.quality.speech_accuracy import transcript_score
from assets.quality.text_accuracy import label_score


@dataclass
class BatchQuality:
    scores: dict
    consensus: pd.DataFrame
    scorecards: pd.DataFrame


ANSWER_COLUMN = {"text": "label", "speech": "transcript", "image": "boxes", "multimodal": "part_labels"}
JSON_COLUMN = {"boxes": "boxes_json", "part_labels": "part_labels_json"}
# what the quality functions read besides the answer: the catalog's other columns only slow every filter
QUALITY_COLUMNS = ["task_id", "annotator", "ground_truth", "lead_time"]


def rows_from_catalog(annotations: pd.DataFrame, modality: str) -> pd.DataFrame:
    """Catalog rows as the quality functions take them: the columns they read, answers as Python objects."""
    answer = ANSWER_COLUMN[modality]
    columns = {column: annotations[column].array for column in QUALITY_COLUMNS}
    columns["lead_time"] = pd.to_numeric(annotations["lead_time"], errors="coerce").array
    if answer in JSON_COLUMN:
        columns[answer] = [
            json.loads(value) if isinstance(value, str) else None
            for value in annotations[JSON_COLUMN[answer]]
        ]
    else:
        columns[answer] = annotations[answer].array
    # built in one go, with a fresh index: components find their rows by index label
    return pd.DataFrame(columns)


# the accuracy on gold each modality is judged by (multimodal: every part's label, and each part alone)
ACCURACY = {
    "text": "text_accuracy",
    "multimodal": "text_accuracy",
    "speech": "speech_accuracy",
    "image": "image_box_f1",
}


def gold_evidence(on_gold, modality: str, accuracy: float | None) -> dict:
    """What the gate stands on: gold tasks answered, labels scored, the accuracy's Wilson 95 % interval
    (a mean score over its scored annotations for 1 - CER and box F1), and per part for multimodal."""
    scored = on_gold.rows.loc[on_gold.components.index]
    trials = len(scored)
    low, high = wilson_interval((accuracy or 0.0) * trials, trials)
    evidence = {
        "gold_tasks": int(scored.task_id.nunique()),
        "gold_labels": trials,
        "accuracy_low": low,
        "accuracy_high": high,
    }
    if modality == "multimodal":
        by_part = {
            part: batch_score(on_gold.components[(scored.part == part).to_numpy()], label_score)
            for part in sorted(scored.part.unique())
        }
        evidence["part_accuracy_json"] = json.dumps(by_part)
    return evidence


def measure_batch(annotations: pd.DataFrame, modality: str, label_set: list[str]) -> BatchQuality:
    rows = rows_from_catalog(annotations, modality)
    work = annotator_rows(rows)
    gold_tasks = set(rows.task_id[rows.ground_truth])
    scores = {
        "tasks": int(rows.task_id.nunique()),
        "annotations": len(work),
        "gold_annotations": int(work.task_id.isin(gold_tasks).sum()),
        "annotators": int(work.annotator.nunique()),
        "text_accuracy": None,
        "speech_accuracy": None,
        "image_box_f1": None,
        "cross_modal_consistency": None,
        "krippendorff_alpha": None,
        "gold_tasks": 0,
        "gold_labels": 0,
        "accuracy_low": None,
        "accuracy_high": None,
        "part_accuracy_json": None,
    }
    if work.empty:
        return BatchQuality({**scores, "mean_item_agreement": None}, pd.DataFrame(), pd.DataFrame())
    # the measures below share these instead of each filtering and scoring the rows again: consensus
    # and alpha leave gold rows out, so `work` gives them the same answer as `rows`
    agreed = consensus(work, modality, label_set)
    on_gold = gold_scores(rows, modality)
    if modality == "text":
        scores["text_accuracy"] = batch_score(on_gold.components, label_score)
        scores["krippendorff_alpha"] = krippendorff_alpha(work)
    elif modality == "multimodal":
        scores["text_accuracy"] = batch_score(on_gold.components, label_score)
        scores["cross_modal_consistency"] = cross_modal_consistency(agreed)
        scores["krippendorff_alpha"] = krippendorff_alpha(on_gold.rows, unit=TASK_PART)
    elif modality == "speech":
        scores["speech_accuracy"] = batch_score(on_gold.components, transcript_score)
    else:
        scores["image_box_f1"] = batch_score(on_gold.components, box_score)
    scores.update(gold_evidence(on_gold, modality, scores[ACCURACY[modality]]))
    scores["mean_item_agreement"] = float(agreed["agreement"].mean()) if len(agreed) else None
    cards = batch_scorecards(rows, modality, label_set, agreed, on_gold)
    return BatchQuality(scores, agreed.reset_index(), cards)
