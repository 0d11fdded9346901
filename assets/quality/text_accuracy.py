"""Text accuracy: the share of annotations on gold tasks whose label equals the reference.

Gold references are the rows with ground_truth=True; only the other rows are scored. Every
annotation counts once, so an annotator who did more gold tasks weighs more. Multimodal parts are
scored the same way, with (task_id, part) as the unit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from assets.quality.annotation_rows import (
    Sums,
    annotator_rows,
    batch_score,
    gold_references,
    rows_with_reference,
)


def label_components(rows: pd.DataFrame, references: pd.Series) -> pd.DataFrame:
    """Per annotation whose unit has a reference: 1 if its label is the reference's."""
    scored, reference = rows_with_reference(rows, references)
    correct = (scored["label"].to_numpy() == reference).astype(int)
    return pd.DataFrame({"correct": correct, "labels": 1}, index=scored.index)


def label_score(sums: Sums) -> np.ndarray:
    return sums["correct"] / sums["labels"]


def text_accuracy(annotations: pd.DataFrame) -> float | None:
    """Share of right labels on gold tasks; None when the batch has no gold task."""
    references = gold_references(annotations, "label")
    return batch_score(label_components(annotator_rows(annotations), references), label_score)
