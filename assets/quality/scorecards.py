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

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from annotation_types import Measure, annotation_type
from assets.quality.annotation_rows import Score, annotator_rows, gold_references, summed_score
from assets.quality.consensus import consensus


def _measure(modality: str) -> Measure:
    """The modality's annotation type's measure; ValueError for an unknown modality."""
    return annotation_type(modality).measure


class GoldScores(NamedTuple):
    """A batch's annotator rows as its measure scores them, with their components against gold.

    The batch's accuracy and its scorecards' gold_accuracy are sums of the same components.
    """

    rows: pd.DataFrame  # annotator rows; one per (annotation, part) for multimodal
    references: pd.Series  # the gold value of each unit
    components: pd.DataFrame  # per row on a gold unit; its index is the row's


def gold_scores(annotations: pd.DataFrame, modality: str) -> GoldScores:
    """The modality's measure on gold; `annotations` need a unique index, by which components find rows."""
    measure = _measure(modality)
    # multimodal parts are scored one by one, like separate labels
    scored = annotations if measure.split is None else measure.split(annotations)
    references = gold_references(scored, measure.column, measure.unit)
    rows = annotator_rows(scored)
    return GoldScores(rows, references, measure.components(rows, references))


def _by_annotator(
    score: Score, components: pd.DataFrame, rows: pd.DataFrame, codes: np.ndarray, n: int
) -> np.ndarray:
    """Components of `rows` (annotator codes: `codes`) summed per annotator and scored; NaN for none."""
    codes = codes[rows.index.get_indexer(components.index)]
    has = np.bincount(codes, minlength=n) > 0
    # summed with bincount: pandas' groupby by an outside key formats that key into an error message
    # it then discards, which costs more than the sums
    sums = {name: np.bincount(codes, weights=values, minlength=n)[has] for name, values in components.items()}
    result = np.full(n, np.nan)
    result[has] = summed_score(score, sums)
    return result


def _tasks_per_annotator(pairs: np.ndarray, n_tasks: int, n: int) -> np.ndarray:
    """Distinct tasks per annotator, from each row's annotator code * n_tasks + task code."""
    return np.bincount(pd.unique(pairs) // n_tasks, minlength=n)  # hashed: sorting them costs more


def batch_scorecards(
    annotations: pd.DataFrame,
    modality: str,
    label_set: Sequence[str] | None = None,
    agreed: pd.DataFrame | None = None,
    on_gold: GoldScores | None = None,
) -> pd.DataFrame:
    """One row per annotator of one batch; `agreed` (consensus) and `on_gold` (gold_scores) if computed."""
    measure = _measure(modality)
    if on_gold is None:
        on_gold = gold_scores(annotations.reset_index(drop=True), modality)
    if agreed is None:
        agreed = consensus(annotations, modality, label_set)
    contested = agreed.loc[agreed["annotations"] >= 2, measure.column]
    # multimodal parts are scored one by one, but tasks and lead times count once per annotation
    work = on_gold.rows if measure.split is None else annotator_rows(annotations)
    # every column is computed per annotator code, in annotator order
    codes, annotators = pd.factorize(work["annotator"], sort=True)
    n = len(annotators)
    scored = on_gold.rows
    scored_codes = codes if scored is work else annotators.get_indexer(scored["annotator"])
    task_codes, tasks = pd.factorize(work["task_id"])
    pairs = codes * len(tasks) + task_codes
    on_gold_task = work["task_id"].isin(on_gold.references.index.get_level_values("task_id")).to_numpy()
    lead_time = pd.to_numeric(work["lead_time"], errors="coerce")
    return pd.DataFrame(
        {
            "annotator": annotators,
            "tasks_done": _tasks_per_annotator(pairs, len(tasks), n),
            "gold_tasks": _tasks_per_annotator(pairs[on_gold_task], len(tasks), n),
            "gold_accuracy": _by_annotator(measure.score, on_gold.components, scored, scored_codes, n),
            "agreement_with_consensus": _by_annotator(
                measure.score, measure.components(scored, contested), scored, scored_codes, n
            ),
            "median_lead_time": lead_time.groupby(codes).median().to_numpy(),
        }
    )
