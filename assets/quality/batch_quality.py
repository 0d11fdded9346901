"""One batch's quality, from its annotation rows: the function `qa_results` runs on a Dask worker."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from annotation_types import AnnotationType, annotation_type, score_columns
from assets.quality.annotation_rows import annotator_rows, batch_score
from assets.quality.consensus import consensus
from assets.quality.gold_sampling import wilson_interval
from assets.quality.scorecards import batch_scorecards, gold_scores


@dataclass
class BatchQuality:
    scores: dict
    consensus: pd.DataFrame
    scorecards: pd.DataFrame


# what the quality functions read besides the answer: the catalog's other columns only slow every filter
QUALITY_COLUMNS = ["task_id", "annotator", "ground_truth", "lead_time"]


def rows_from_catalog(annotations: pd.DataFrame, modality: str) -> pd.DataFrame:
    """Catalog rows as the quality functions take them: the columns they read, answers as Python objects."""
    kind = annotation_type(modality)
    columns = {column: annotations[column].array for column in QUALITY_COLUMNS}
    columns["lead_time"] = pd.to_numeric(annotations["lead_time"], errors="coerce").array
    if kind.catalog_json:
        columns[kind.answer_field] = [
            json.loads(value) if isinstance(value, str) else None
            for value in annotations[kind.catalog_column]
        ]
    else:
        columns[kind.answer_field] = annotations[kind.catalog_column].array
    # built in one go, with a fresh index: components find their rows by index label
    return pd.DataFrame(columns)


def gold_evidence(on_gold, kind: AnnotationType, accuracy: float | None) -> dict:
    """What the gate stands on: gold tasks answered, labels scored, the accuracy (the type's
    `accuracy_metric`) with its Wilson 95 % interval (a mean score over its scored annotations for
    1 - CER and box F1), and each part's alone for a type with one control per part."""
    scored = on_gold.rows.loc[on_gold.components.index]
    trials = len(scored)
    low, high = wilson_interval((accuracy or 0.0) * trials, trials)
    evidence = {
        "gold_tasks": int(scored.task_id.nunique()),
        "gold_labels": trials,
        "accuracy_low": low,
        "accuracy_high": high,
    }
    if kind.per_part:
        by_part = {
            part: batch_score(on_gold.components[(scored.part == part).to_numpy()], kind.measure.score)
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
        **dict.fromkeys(score_columns()),
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
    kind = annotation_type(modality)
    scores[kind.accuracy_metric] = batch_score(on_gold.components, kind.measure.score)
    if kind.more_scores is not None:
        scores.update(kind.more_scores(work, agreed, on_gold))
    scores.update(gold_evidence(on_gold, kind, scores[kind.accuracy_metric]))
    scores["mean_item_agreement"] = float(agreed["agreement"].mean()) if len(agreed) else None
    cards = batch_scorecards(rows, modality, label_set, agreed, on_gold)
    return BatchQuality(scores, agreed.reset_index(), cards)
