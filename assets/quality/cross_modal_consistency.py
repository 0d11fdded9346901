"""Cross-modal consistency: for multimodal items, the share of items whose parts received the same
consensus label.

Each part of a multimodal item (image, text, audio) is labelled on its own; an item whose parts'
consensus labels differ shows either a client's mismatched data or annotators who disagree across
modalities. Only items with at least two labelled parts can disagree, so only they are counted.
"""

from __future__ import annotations

import pandas as pd


def cross_modal_consistency(part_consensus: pd.DataFrame) -> float | None:
    """Share of items whose parts agree, given a label per (task_id, part): consensus(..., "multimodal").

    None when no item has two labelled parts.
    """
    per_item = part_consensus["label"].groupby(level="task_id")
    compared = per_item.size() >= 2
    if not compared.any():
        return None
    return float((per_item.nunique()[compared] == 1).mean())
