"""Annotation rows: which are gold, which are annotators' work, how a row finds its reference.

A unit is what one label is given to: a task, or a (task, part) pair for multimodal items, where
each part is labelled on its own. References (gold or consensus) are Series indexed by the unit.
Each measure turns rows into additive components (right labels, edits, box matches), so the same
code scores a batch (sum everything) and an annotator (sum their rows).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

TASK = ("task_id",)
TASK_PART = ("task_id", "part")

# a measure's components summed by name: the batch's totals, or arrays of per-annotator sums; a score
# turns them into the measure with numpy arithmetic, as numpy is cheaper than a DataFrame of sums
Sums = Mapping[str, np.ndarray]
Score = Callable[[Sums], np.ndarray]


def annotator_rows(annotations: pd.DataFrame) -> pd.DataFrame:
    """The annotators' work: gold rows are the reference, never part of what is measured."""
    gold = annotations["ground_truth"].to_numpy(dtype=bool)
    # rows already without gold (a batch's measures share one filtered frame) are taken as they are
    return annotations[~gold] if gold.any() else annotations


def gold_references(annotations: pd.DataFrame, column: str, unit: Sequence[str] = TASK) -> pd.Series:
    """The reviewed value of each gold unit (the first gold row if a task has several)."""
    # from the two columns it needs: filtering the whole frame costs several times more
    gold = annotations["ground_truth"].to_numpy(dtype=bool)
    units = unit_index(annotations, unit)[gold]
    first = ~units.duplicated()
    return pd.Series(annotations[column].array[gold][first], index=units[first], name=column)


def unit_index(rows: pd.DataFrame, unit: Sequence[str]) -> pd.Index:
    """Each row's unit, shaped like the index of the references it is compared with."""
    if len(unit) == 1:
        return pd.Index(rows[unit[0]], name=unit[0])
    return pd.MultiIndex.from_frame(rows[list(unit)])


def rows_with_reference(rows: pd.DataFrame, references: pd.Series) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows whose unit has a reference, and that reference for each of them."""
    position = references.index.get_indexer(unit_index(rows, references.index.names))
    has = position >= 0
    return (rows if has.all() else rows[has]), references.to_numpy()[position[has]]


def part_label_rows(annotations: pd.DataFrame) -> pd.DataFrame:
    """Multimodal rows, one per (annotation, part): each part's label is a label of its own."""
    # an annotation without part labels (None) labels no part
    parts = pd.DataFrame([labels or {} for labels in annotations["part_labels"]], index=annotations.index)
    labels = parts.stack().dropna().rename("label").rename_axis([None, "part"]).reset_index(level="part")
    return annotations.drop(columns="part_labels").join(labels, how="inner").reset_index(drop=True)


def summed_score(score: Score, sums: Sums) -> np.ndarray:
    """score(sums) as floats; a zero denominator gives inf or NaN without a warning, as pandas would."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(score(sums), dtype=float)


def batch_score(components: pd.DataFrame, score: Score) -> float | None:
    """A measure over the whole batch: its per-annotation components summed, then scored (None if empty)."""
    if components.empty:
        return None
    return float(summed_score(score, components.sum()))
