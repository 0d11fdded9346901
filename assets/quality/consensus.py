"""Consensus: the one answer a batch keeps for each item, and how many annotators agree with it.

- Labels: majority vote, ties broken by the lowest label in label_set order so a re-run never
  flips a label; and Dawid–Skene (EM over per-annotator confusion matrices, vectorised numpy,
  initialised from the majority vote, stopped when the mean log-likelihood gains less than `tol` or
  after `max_iter` iterations), used where an item has ≥ 3 labels: with fewer, a confusion matrix
  cannot outvote anyone, so the majority vote stands.
- Transcripts: the medoid, the annotation with the least total edit distance (on normalised text)
  to the task's other transcripts; ties go to the lowest annotator id.
- Boxes: annotators are taken in id order and each one's boxes are matched (greedy, one-to-one,
  same label, IoU ≥ 0.5) to the running means of the boxes already seen; a box a strict majority
  of the task's annotators drew is kept, at the mean of its matched boxes.
- Per-item agreement: the share of the item's annotators agreeing with the consensus (the same
  label; the same normalised transcript; boxes that all match the consensus boxes one-to-one).

Gold rows take no part: the consensus is what the annotators say.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from annotation_types import annotation_type
from assets.quality.annotation_rows import TASK, annotator_rows, unit_index
from assets.quality.image_accuracy import (
    COORDINATES,
    box_components,
    box_pairs,
    explode_boxes,
    greedy_matches,
)
from assets.quality.speech_accuracy import edit_distances, normalise_transcripts

DAWID_SKENE_MIN_LABELS = 3
TOLERANCE = 1e-5
MAX_ITERATIONS = 100
_EPS = 1e-10


class _Labels(NamedTuple):
    """Label rows as integer codes, the form numpy works on."""

    units: pd.Index  # the distinct units, in code order
    unit: np.ndarray  # per row: its unit's code
    annotator: np.ndarray  # per row: its annotator's code
    label: np.ndarray  # per row: its label's position in label_set
    label_set: list[str]
    n_annotators: int

    def counts(self) -> np.ndarray:
        """votes[unit, label]."""
        k = len(self.label_set)
        return np.bincount(self.unit * k + self.label, minlength=len(self.units) * k).reshape(-1, k)


def _encode(annotations: pd.DataFrame, label_set: Sequence[str] | None, unit: Sequence[str]) -> _Labels:
    """The annotators' labels as codes; labels outside the label set are an error, not a new class.

    A missing label (an empty answer) is no vote.
    """
    rows = annotator_rows(annotations)
    rows = rows[rows["label"].notna()]
    labels = list(label_set) if label_set is not None else sorted(rows["label"].unique())
    label = pd.Index(labels).get_indexer(rows["label"]).astype(np.int64)
    if (label < 0).any():
        unknown = sorted(set(rows["label"][label < 0]))
        raise ValueError(f"labels outside the label set {labels}: {unknown}")
    unit_codes, units = unit_index(rows, unit).factorize(sort=True)
    annotator_codes, annotators = pd.factorize(rows["annotator"])
    return _Labels(
        units.set_names(list(unit)),
        unit_codes.astype(np.int64),
        annotator_codes.astype(np.int64),
        label,
        labels,
        len(annotators),
    )


def _label_frame(
    encoded: _Labels, chosen: np.ndarray, counts: np.ndarray, **more: np.ndarray
) -> pd.DataFrame:
    """`more`: further columns, built with the rest (adding a column afterwards costs half as much again)."""
    n = counts.sum(axis=1)
    return pd.DataFrame(
        {
            "label": np.asarray(encoded.label_set, dtype=object)[chosen],
            "annotations": n,
            "agreement": counts[np.arange(len(chosen)), chosen] / n,
            **more,
        },
        index=encoded.units,
    )


def majority_vote(
    annotations: pd.DataFrame, label_set: Sequence[str] | None = None, unit: Sequence[str] = TASK
) -> pd.DataFrame:
    """Per unit: the most frequent label (ties: the first in label_set), its annotations and agreement."""
    encoded = _encode(annotations, label_set, unit)
    counts = encoded.counts()
    return _label_frame(encoded, counts.argmax(axis=1), counts)


def _dawid_skene_posteriors(encoded: _Labels, tol: float, max_iter: int) -> np.ndarray:
    """posterior[unit, true label] by EM; confusion[annotator, true, given] is re-estimated each round."""
    n_units, n_annotators, k = len(encoded.units), encoded.n_annotators, len(encoded.label_set)
    counts = encoded.counts()
    posterior = counts / counts.sum(axis=1, keepdims=True)
    cell = encoded.annotator * k + encoded.label  # (annotator, given label) of each row
    previous = -np.inf
    for _ in range(max_iter):
        # M-step: priors and confusion matrices from the current posteriors
        log_prior = np.log(np.clip(posterior.mean(axis=0), _EPS, None))
        # weights summed per (annotator, given) cell for each true label: [annotator, given, true]
        per_cell = [
            np.bincount(cell, weights=posterior[encoded.unit, true], minlength=n_annotators * k)
            for true in range(k)
        ]
        confusion = np.stack(per_cell, axis=1).reshape(n_annotators, k, k)
        confusion = np.clip(confusion.transpose(0, 2, 1), _EPS, None)
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step: every row adds log P(given | true) to its unit's log posterior
        row_log = np.log(confusion)[encoded.annotator, :, encoded.label]
        log_joint = log_prior + np.stack(
            [np.bincount(encoded.unit, weights=row_log[:, true], minlength=n_units) for true in range(k)],
            axis=1,
        )
        top = log_joint.max(axis=1, keepdims=True)
        posterior = np.exp(log_joint - top)
        evidence = posterior.sum(axis=1, keepdims=True)
        posterior /= evidence
        log_likelihood = float((top + np.log(evidence)).sum()) / len(encoded.label)
        if log_likelihood - previous < tol:
            break
        previous = log_likelihood
    return posterior


def dawid_skene(
    annotations: pd.DataFrame,
    label_set: Sequence[str] | None = None,
    unit: Sequence[str] = TASK,
    tol: float = TOLERANCE,
    max_iter: int = MAX_ITERATIONS,
) -> pd.DataFrame:
    """Per unit: the Dawid–Skene label, its posterior probability (`confidence`) and annotations."""
    encoded = _encode(annotations, label_set, unit)
    posterior = _dawid_skene_posteriors(encoded, tol, max_iter)
    chosen = posterior.argmax(axis=1)
    return pd.DataFrame(
        {
            "label": np.asarray(encoded.label_set, dtype=object)[chosen],
            "confidence": posterior[np.arange(len(chosen)), chosen],
            "annotations": encoded.counts().sum(axis=1),
        },
        index=encoded.units,
    )


def label_consensus(
    annotations: pd.DataFrame, label_set: Sequence[str] | None = None, unit: Sequence[str] = TASK
) -> pd.DataFrame:
    """Per unit: Dawid–Skene's label where it has ≥ 3 labels, else the majority's; `method` says which."""
    encoded = _encode(annotations, label_set, unit)
    counts = encoded.counts()
    chosen = counts.argmax(axis=1)
    enough = counts.sum(axis=1) >= DAWID_SKENE_MIN_LABELS
    if enough.any():
        # fitted on every row: units with one or two labels still tell how each annotator errs
        chosen = np.where(
            enough, _dawid_skene_posteriors(encoded, TOLERANCE, MAX_ITERATIONS).argmax(axis=1), chosen
        )
    return _label_frame(encoded, chosen, counts, method=np.where(enough, "dawid_skene", "majority_vote"))


def _pairs_within(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j), i < j, of two rows in the same group, rows being sorted by group of these sizes."""
    ends = np.repeat(np.cumsum(sizes), sizes)
    later = ends - np.arange(len(ends)) - 1  # per row: the rows after it in its group
    i = np.repeat(np.arange(len(ends)), later)
    # the pairs of row i are numbered from its first; j = i + 1 + that number
    j = i + 1 + np.arange(len(i)) - np.repeat(np.cumsum(later) - later, later)
    return i, j


def transcript_consensus(annotations: pd.DataFrame) -> pd.DataFrame:
    """Per task: the medoid transcript (as typed), its annotations and agreement."""
    rows = annotator_rows(annotations)
    task, tasks = pd.factorize(rows["task_id"], sort=True)
    # rows by task, then annotator: a task's first row of least total distance is its medoid
    order = np.lexsort((pd.factorize(rows["annotator"], sort=True)[0], task))
    task = task[order]
    normalised = np.asarray(normalise_transcripts(rows["transcript"]), dtype=object)[order]
    sizes = np.bincount(task, minlength=len(tasks))
    i, j = _pairs_within(sizes)
    distance = edit_distances(normalised[i], normalised[j])
    # each row's total distance to the other transcripts of its task
    total = np.bincount(i, weights=distance, minlength=len(rows))
    total += np.bincount(j, weights=distance, minlength=len(rows))
    medoid = np.lexsort((total, task))[np.cumsum(sizes) - sizes]  # stable: ties keep the annotator order
    agrees = normalised == normalised[medoid][task]
    return pd.DataFrame(
        {
            "transcript": rows["transcript"].array.take(order[medoid]),
            "annotations": sizes,
            "agreement": np.bincount(task, weights=agrees, minlength=len(tasks)) / sizes,
        },
        index=pd.Index(tasks, name="task_id"),
    )


def _clusters(drawn: pd.DataFrame) -> pd.DataFrame:
    """Boxes grouped across a task's annotators: coordinate sums and votes per cluster.

    Turn t matches the t-th annotator's boxes (of every task at once) to the clusters built so far;
    an unmatched box starts a cluster of its own.
    """
    clusters = drawn.iloc[:0][["task_id", "label", *COORDINATES]].assign(votes=np.zeros(0, dtype=np.int64))
    for _, boxes in drawn.groupby("turn", sort=True):
        means = clusters[COORDINATES].div(clusters["votes"].astype(float), axis=0)
        right = pd.concat([clusters[["task_id", "label"]], means], axis=1).assign(cluster=clusters.index)
        matches = greedy_matches(box_pairs(boxes, right, on=["task_id"]), "box", "cluster")
        clusters.loc[matches["cluster"], COORDINATES] += matches[COORDINATES].to_numpy()
        clusters.loc[matches["cluster"], "votes"] += 1
        new = boxes[~boxes["box"].isin(matches["box"])][["task_id", "label", *COORDINATES]]
        clusters = pd.concat([clusters, new.assign(votes=1)], ignore_index=True)
    return clusters


def box_consensus(annotations: pd.DataFrame) -> pd.DataFrame:
    """Per task: the consensus boxes (a list of x, y, width, height, label dicts), annotations, agreement."""
    rows = annotator_rows(annotations).sort_values(["task_id", "annotator"], kind="stable")
    rows = rows.reset_index(drop=True)
    n_annotations = rows.groupby("task_id").size()
    drawn = explode_boxes(rows["boxes"])
    owner = drawn["owner"].to_numpy(dtype=np.int64)
    drawn["task_id"] = rows["task_id"].to_numpy()[owner]
    drawn["turn"] = rows.groupby("task_id").cumcount().to_numpy()[owner]
    drawn["box"] = np.arange(len(drawn))
    clusters = _clusters(drawn)
    votes = clusters["votes"].astype(float)
    kept = clusters[votes > n_annotations.reindex(clusters["task_id"]).to_numpy() / 2]
    kept = kept.assign(**{c: (kept[c] / votes[kept.index]).round(4) for c in COORDINATES})
    per_task: dict[object, list[dict]] = defaultdict(list)
    for task, box in zip(kept["task_id"], kept[[*COORDINATES, "label"]].to_dict("records"), strict=True):
        per_task[task].append(box)
    boxes = pd.Series(
        [per_task[task] for task in n_annotations.index], index=n_annotations.index, dtype=object
    )
    components = box_components(rows, boxes)
    exact = (components["fp"] == 0) & (components["fn"] == 0)
    return pd.DataFrame(
        {
            "boxes": boxes,
            "annotations": n_annotations,
            "agreement": exact.groupby(rows["task_id"]).mean(),
        }
    ).rename_axis("task_id")


def consensus(
    annotations: pd.DataFrame, modality: str, label_set: Sequence[str] | None = None
) -> pd.DataFrame:
    """The consensus a modality's annotation type calls for (multimodal: one label per (task_id, part))."""
    return annotation_type(modality).consensus(annotations, label_set)
