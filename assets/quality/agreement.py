"""Inter-annotator agreement: Krippendorff's alpha (nominal) over the overlapping tasks.

Computed by the `krippendorff` package from per-unit value counts, so it handles any number of
annotators per task and missing labels. Only units that at least two annotators labelled carry
information about agreement; gold rows are a reviewer's reference, not an annotator's vote.
"""

from __future__ import annotations

from collections.abc import Sequence

import krippendorff
import numpy as np
import pandas as pd

from assets.quality.annotation_rows import TASK, annotator_rows, unit_index


def krippendorff_alpha(
    annotations: pd.DataFrame, column: str = "label", unit: Sequence[str] = TASK
) -> float | None:
    """Nominal alpha of `column` across annotators; None when it is undefined.

    Undefined means no unit has two annotations, or all of them carry a single value (no
    disagreement is possible, so none can be expected either).
    """
    rows = annotator_rows(annotations)
    rows = rows[rows[column].notna()]
    if rows.empty:
        return None
    units, distinct_units = unit_index(rows, unit).factorize()
    values, domain = pd.factorize(rows[column])
    counts = np.bincount(units * len(domain) + values, minlength=len(distinct_units) * len(domain))
    counts = counts.reshape(-1, len(domain))
    counts = counts[counts.sum(axis=1) >= 2]
    if (counts.sum(axis=0) > 0).sum() < 2:
        return None
    return float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))
