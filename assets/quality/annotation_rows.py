"""Annotation rows: which are gold, which are annotators' work, how a row finds its reference.

A unit is what one label is given to: a task, or a (task, part) pair for multimodal items, where
each part is labelled on its own. References (gold or consensus) are Series indexed by the unit.
Each measure turns rows into additive components (right labels, edits, box matches), so the same
code scores a batch (sum everything) and an annotator (sum their rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

TASK = ("task_id",)
TASK_PART = ("task_id", "part")


def annotator_rows(annotations: pd.DataFrame) -> pd.DataFrame:
    """The annotators' work: gold rows are the reference, never part of what is measured."""
    return annotations[~annotations["ground_truth"].astype(bool)]


def gold_references(annotations: pd.DataFrame, column: str, unit: Sequence[str] = TASK) -> pd.Series:
    """The reviewed value of each gold unit (the first gold row if a task has several)."""
    gold = annotations[annotations["ground_truth"].astype(bool)]
    return gold.drop_duplicates(list(unit)).set_index(list(unit))[column]


def unit_index(rows: pd.DataFrame, unit: Sequence[str]) -> pd.Index:
    """Each row's unit, shaped like the index of the references it is compared with."""
    if len(unit) == 1:
        return pd.Index(rows[unit[0]], name=unit[0])
    return pd.MultiIndex.from_frame(rows[list(unit)])


def rows_with_reference(rows: pd.DataFrame, references: pd.Series) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows whose unit has a reference, and that reference for each of them."""
    units = unit_index(rows, references.index.names)
    has = units.isin(references.index)
    return rows[has], references.reindex(units[has]).to_numpy()


def part_label_rows(annotations: pd.DataFrame) -> pd.DataFrame:
    """Multimodal rows, one per (annotation, part): each part's label is a label of its own."""
    # an annotation without part labels (None) labels no part
    parts = pd.DataFrame([labels or {} for labels in annotations["part_labels"]], index=annotations.index)
    labels = parts.stack().dropna().rename("label").rename_axis([None, "part"]).reset_index(level="part")
    return annotations.drop(columns="part_labels").join(labels, how="inner").reset_index(drop=True)


def batch_score(components: pd.DataFrame, score: Callable[[pd.DataFrame], pd.Series]) -> float | None:
    """A measure over the whole batch: its per-annotation components summed, then scored (None if empty)."""
    if components.empty:
        return None
    return float(score(components.sum().to_frame().T).iloc[0])
