"""Image accuracy: box F1 at IoU ≥ 0.5 against the reference boxes.

Boxes are Label Studio rectangles in percent of the image (x, y, width, height, label). A drawn
box and a reference box match when their labels are equal and their IoU is at least 0.5; matching
is greedy and one-to-one (the highest IoU first), so one reference box is never found twice.
Matched boxes are true positives, unmatched drawn ones false positives, unmatched reference ones
false negatives; F1 = 2·TP / (2·TP + FP + FN) over the batch's totals. An image with no box on
either side is a perfect answer (F1 = 1). Everything is vectorised over all boxes of a batch.
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
    summed_score,
)

IOU_THRESHOLD = 0.5
COORDINATES = ["x", "y", "width", "height"]


def _iou(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """IoU of a's i-th box with b's i-th box (columns x, y, width, height)."""
    ax, ay, aw, ah = (a[c].to_numpy(dtype=float) for c in COORDINATES)
    bx, by, bw, bh = (b[c].to_numpy(dtype=float) for c in COORDINATES)
    iw = np.clip(np.minimum(ax + aw, bx + bw) - np.maximum(ax, bx), 0, None)
    ih = np.clip(np.minimum(ay + ah, by + bh) - np.maximum(ay, by), 0, None)
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_iou(a: dict, b: dict) -> float:
    """IoU of two boxes, labels ignored."""
    return float(_iou(pd.DataFrame([a]), pd.DataFrame([b]))[0])


def explode_boxes(boxes: pd.Series) -> pd.DataFrame:
    """One row per box of every list in `boxes`; `owner` is the index label of its list."""
    flat = boxes.explode().dropna()
    frame = pd.DataFrame(flat.tolist(), columns=[*COORDINATES, "label"])
    frame[COORDINATES] = frame[COORDINATES].astype(float)
    frame.insert(0, "owner", flat.index.to_numpy())
    return frame


def box_pairs(left: pd.DataFrame, right: pd.DataFrame, on: list[str]) -> pd.DataFrame:
    """Every pair of a left and a right box that may match: same `on` keys, same label, IoU ≥ 0.5.

    The right box's coordinates come out suffixed `_ref`; `iou` is added.
    """
    pairs = left.merge(right, on=[*on, "label"], suffixes=("", "_ref"))
    ref = pairs[[f"{c}_ref" for c in COORDINATES]].set_axis(COORDINATES, axis=1)
    pairs["iou"] = _iou(pairs, ref)
    return pairs[pairs["iou"] >= IOU_THRESHOLD]


def greedy_matches(pairs: pd.DataFrame, left: str, right: str) -> pd.DataFrame:
    """The pairs greedy one-to-one matching by descending IoU keeps, found without a Python loop per pair.

    Each round keeps the pairs that are the best remaining one for both their boxes and drops every
    pair touching a kept box. With ties broken by the keys, this is exactly what taking pairs one by
    one in descending IoU gives, in a handful of vectorised rounds.
    """
    remaining = pairs.sort_values(["iou", left, right], ascending=[False, True, True], kind="stable")
    kept = []
    while len(remaining):
        best = remaining[~remaining[left].duplicated() & ~remaining[right].duplicated()]
        kept.append(best)
        remaining = remaining[~remaining[left].isin(best[left]) & ~remaining[right].isin(best[right])]
    return pd.concat(kept) if kept else remaining


def box_components(rows: pd.DataFrame, references: pd.Series) -> pd.DataFrame:
    """Per annotation whose task has reference boxes: its true positives, false positives, false negatives."""
    scored, reference = rows_with_reference(rows, references)
    n = len(scored)
    # positions, not index labels, tie a box to its annotation: the references are aligned by position
    drawn = explode_boxes(pd.Series(scored["boxes"].to_numpy()))
    truth = explode_boxes(pd.Series(reference))
    drawn["box"] = np.arange(len(drawn))
    truth["ref"] = np.arange(len(truth))
    matches = greedy_matches(box_pairs(drawn, truth, on=["owner"]), "box", "ref")
    tp = np.bincount(matches["owner"].to_numpy(dtype=np.int64), minlength=n)
    n_drawn = np.bincount(drawn["owner"].to_numpy(dtype=np.int64), minlength=n)
    n_truth = np.bincount(truth["owner"].to_numpy(dtype=np.int64), minlength=n)
    return pd.DataFrame({"tp": tp, "fp": n_drawn - tp, "fn": n_truth - tp}, index=scored.index)


def box_score(sums: Sums) -> np.ndarray:
    denominator = 2 * sums["tp"] + sums["fp"] + sums["fn"]
    return np.where(denominator > 0, 2 * sums["tp"] / denominator, 1.0)


def box_f1(drawn: list[dict], reference: list[dict]) -> float:
    """Box F1 of one image's boxes against its reference boxes."""
    rows = pd.DataFrame({"task_id": [0], "boxes": [drawn]})
    references = pd.Series([reference], index=pd.Index([0], name="task_id"))
    return float(summed_score(box_score, box_components(rows, references).iloc[0]))


def image_accuracy(annotations: pd.DataFrame) -> float | None:
    """Box F1 of the annotations on gold tasks; None when the batch has no gold task."""
    references = gold_references(annotations, "boxes")
    return batch_score(box_components(annotator_rows(annotations), references), box_score)
