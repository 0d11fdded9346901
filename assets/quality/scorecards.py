"""Annotator scorecards: per annotator of a batch, how much they did, how well, and how fast.

- tasks_done: distinct tasks the annotator submitted (gold tasks included, gold rows not).
- gold_tasks, gold_accuracy: on the gold tasks they did, the modality's accuracy against the
  reference: right labels (per part for multimodal), 1 − CER for speech, box F1 for images.
- agreement_with_consensus: the same measure against the batch's consensus instead of gold, on
  the tasks with at least two annotations (alone on a task, anyone agrees with themselves).
- median_lead_time: seconds; missing lead times (None) are skipped, NaN if none is known.

Scores are NaN where an annotator has nothing to score, never 0, so no one is blamed for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from assets.quality.annotation_rows import TASK, TASK_PART, annotator_rows, gold_references, part_label_rows
from assets.quality.consensus import consensus
from assets.quality.image_accuracy import box_components, box_score
from assets.quality.speech_accuracy import transcript_components, transcript_score
from assets.quality.text_accuracy import label_components, label_score


class _Measure(NamedTuple):
    column: str
    unit: Sequence[str]
    components: Callable[[pd.DataFrame, pd.Series], pd.DataFrame]
    score: Callable[[pd.DataFrame], pd.Series]


_MEASURES = {
    "text": _Measure("label", TASK, label_components, label_score),
    "multimodal": _Measure("label", TASK_PART, label_components, label_score),
    "speech": _Measure("transcript", TASK, transcript_components, transcript_score),
    "image": _Measure("boxes", TASK, box_components, box_score),
}


def _by_annotator(measure: _Measure, rows: pd.DataFrame, references: pd.Series) -> pd.Series:
    """The measure against `references`, summed over each annotator's rows."""
    components = measure.components(rows, references)
    # summed with bincount: pandas' groupby by an outside key formats that key into an error message
    # it then discards, which costs more than the sums
    codes, annotators = pd.factorize(rows.loc[components.index, "annotator"])
    sums = {
        name: np.bincount(codes, weights=values, minlength=len(annotators))
        for name, values in components.items()
    }
    return measure.score(pd.DataFrame(sums, index=annotators))


def batch_scorecards(
    annotations: pd.DataFrame,
    modality: str,
    label_set: Sequence[str] | None = None,
    agreed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per annotator of one batch; `agreed` is the batch's consensus if already computed."""
    if modality not in _MEASURES:
        raise ValueError(f"unknown modality {modality!r}; known: {sorted(_MEASURES)}")
    measure = _MEASURES[modality]
    annotations = annotations.reset_index(drop=True)
    work = annotator_rows(annotations)
    # multimodal parts are scored one by one, like separate labels
    scored = part_label_rows(annotations) if modality == "multimodal" else annotations
    scored_work = annotator_rows(scored) if modality == "multimodal" else work
    gold = gold_references(scored, measure.column, measure.unit)
    if agreed is None:
        agreed = consensus(annotations, modality, label_set)
    contested = agreed.loc[agreed["annotations"] >= 2, measure.column]
    on_gold = work[work["task_id"].isin(gold.index.get_level_values("task_id"))]
    lead_time = pd.to_numeric(work["lead_time"], errors="coerce")
    cards = pd.DataFrame(
        {
            "tasks_done": work.groupby("annotator")["task_id"].nunique(),
            "gold_tasks": on_gold.groupby("annotator")["task_id"].nunique(),
            "gold_accuracy": _by_annotator(measure, scored_work, gold),
            "agreement_with_consensus": _by_annotator(measure, scored_work, contested),
            "median_lead_time": lead_time.groupby(work["annotator"]).median(),
        }
    )
    cards["gold_tasks"] = cards["gold_tasks"].fillna(0).astype(int)
    return cards.rename_axis("annotator").reset_index()
