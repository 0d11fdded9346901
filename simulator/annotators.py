"""Simulated annotators (outside world): people of KNOWN skill labelling, transcribing and drawing boxes.

Their accuracies are set, not measured, so the tests can check that the base's quality measures
find them again. They produce annotation rows as the base reads them from an export: task_id,
item_id, annotator, ground_truth, lead_time and the answer (label / part_labels / transcript /
boxes). A share of tasks also gets a gold row (ground_truth=True) by a reviewer, which is the
truth itself. Everything is deterministic from the numpy Generator passed in.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.deliveries import SimulatedDelivery
from simulator.types import simulated

REVIEWER_ID = 1  # Label Studio's first user, the project owner, writes the gold (as in the fixtures)
GOLD_RATE = 0.1
BOX_JITTER = 0.03  # standard deviation of a drawn box's edges, as a share of the box's size
# what a careless transcriber types instead of the character heard
_SUBSTITUTES = (
    "的一是在不了有人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产"
)


@dataclass(frozen=True)
class Annotator:
    """A simulated person; `accuracy` is what the base's quality measures should find again."""

    annotator_id: int
    accuracy: float | None  # share of right answers; None: a spammer, who answers at random
    lead_time_mean: float  # seconds per annotation

    def expected_accuracy(self, n_labels: int) -> float:
        """The share of right labels to expect among n_labels choices (chance for a spammer)."""
        return 1 / n_labels if self.accuracy is None else self.accuracy


def default_crew(seed: int = 0, n_good: int = 5) -> list[Annotator]:
    """Good annotators (0.97-0.99), one careless (~0.70, and fast) and one spammer (random, fastest)."""
    rng = random.Random(f"annobase-sim/crew/{seed}")
    first = REVIEWER_ID + 1
    crew = [
        Annotator(first + k, round(rng.uniform(0.97, 0.99), 3), round(rng.uniform(15.0, 40.0), 1))
        for k in range(n_good)
    ]
    crew.append(Annotator(first + n_good, round(rng.uniform(0.68, 0.72), 3), round(rng.uniform(6.0, 9.0), 1)))
    crew.append(Annotator(first + n_good + 1, None, round(rng.uniform(1.0, 3.0), 1)))
    return crew


def expected_box_f1(accuracy: float) -> float:
    """Box F1 of annotate_boxes at `accuracy`: a miss costs one FN, a wrong label one FP and one FN."""
    return 2 * accuracy / (2 * accuracy + 1.5 * (1 - accuracy))


def _assign(
    item_ids: Sequence[str],
    annotators: Sequence[Annotator],
    overlap: int,
    gold_rate: float,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Task k+1 is item k; `overlap` distinct annotators each, plus a reviewer's row on gold tasks.

    Returns the rows and each row's accuracy (1 for gold rows, NaN for a spammer's).
    """
    if not 1 <= overlap <= len(annotators):
        raise ValueError(f"overlap must be between 1 and the crew's size {len(annotators)}, not {overlap}")
    n = len(item_ids)
    items = np.asarray(item_ids, dtype=object)
    ids = np.array([a.annotator_id for a in annotators])
    skill = np.array([np.nan if a.accuracy is None else a.accuracy for a in annotators])
    mean_lead_time = np.array([a.lead_time_mean for a in annotators])
    who = np.argsort(rng.random((n, len(annotators))), axis=1)[:, :overlap].ravel()
    task = np.repeat(np.arange(n), overlap)
    gold = np.flatnonzero(rng.random(n) < gold_rate)
    rows = pd.DataFrame(
        {
            "task_id": np.concatenate([task, gold]) + 1,
            "item_id": np.concatenate([items[task], items[gold]]),
            "annotator": np.concatenate([ids[who], np.full(len(gold), REVIEWER_ID)]),
            "ground_truth": np.concatenate([np.zeros(len(task), bool), np.ones(len(gold), bool)]),
            "lead_time": np.concatenate(
                [np.round(rng.gamma(4.0, mean_lead_time[who] / 4.0), 1), np.full(len(gold), np.nan)]
            ),
        }
    )
    accuracy = np.concatenate([skill[who], np.ones(len(gold))])
    order = np.argsort(rows["task_id"].to_numpy(), kind="stable")
    return rows.iloc[order].reset_index(drop=True), accuracy[order]


def _noisy_codes(
    truth: np.ndarray, accuracy: np.ndarray, n_labels: int, rng: np.random.Generator
) -> np.ndarray:
    """Right with probability `accuracy`, else another label uniformly; uniformly random where it is NaN."""
    right = rng.random(len(truth)) < accuracy
    other = (truth + rng.integers(1, max(n_labels, 2), len(truth))) % n_labels
    guess = rng.integers(0, n_labels, len(truth))
    return np.where(np.isnan(accuracy), guess, np.where(right, truth, other))


def _label_codes(labels: Sequence[str], label_set: Sequence[str]) -> np.ndarray:
    codes = pd.Index(list(label_set)).get_indexer(labels)
    if (codes < 0).any():
        raise ValueError(f"truth labels outside the label set {list(label_set)}")
    return codes.astype(np.int64)


def annotate_labels(
    truth_labels: Mapping[str, str],
    label_set: Sequence[str],
    annotators: Sequence[Annotator],
    overlap: int,
    rng: np.random.Generator,
    gold_rate: float = GOLD_RATE,
) -> pd.DataFrame:
    """Classification rows (column `label`) for items whose true labels are `truth_labels`."""
    rows, accuracy = _assign(list(truth_labels), annotators, overlap, gold_rate, rng)
    truth = _label_codes(list(truth_labels.values()), label_set)[rows["task_id"].to_numpy() - 1]
    rows["label"] = np.asarray(label_set, dtype=object)[_noisy_codes(truth, accuracy, len(label_set), rng)]
    return rows


def annotate_part_labels(
    truth_part_labels: Mapping[str, Mapping[str, str]],
    label_set: Sequence[str],
    annotators: Sequence[Annotator],
    overlap: int,
    rng: np.random.Generator,
    gold_rate: float = GOLD_RATE,
) -> pd.DataFrame:
    """Multimodal rows (column `part_labels`): every part labelled on its own, at the annotator's accuracy."""
    rows, accuracy = _assign(list(truth_part_labels), annotators, overlap, gold_rate, rng)
    items = list(truth_part_labels.values())
    row_parts = [items[task - 1] for task in rows["task_id"]]
    parts = [part for labels in row_parts for part in labels]
    truth = _label_codes([label for labels in row_parts for label in labels.values()], label_set)
    owner = np.repeat(np.arange(len(rows)), [len(labels) for labels in row_parts])
    given = np.asarray(label_set, dtype=object)[_noisy_codes(truth, accuracy[owner], len(label_set), rng)]
    part_labels: list[dict[str, str]] = [{} for _ in range(len(rows))]
    for row, part, label in zip(owner, parts, given, strict=True):
        part_labels[row][part] = label
    rows["part_labels"] = part_labels
    return rows


def annotate_transcript(text: str, accuracy: float, rng: np.random.Generator) -> str:
    """`text` with each letter or digit substituted or deleted at rate 1 − accuracy, so 1 − CER ≈ accuracy.

    Punctuation and spaces are left alone: they are not counted as characters.
    """
    errors = rng.random(len(text)) >= accuracy
    typed = []
    for char, error in zip(text, errors, strict=True):
        if not error or unicodedata.category(char)[0] not in "LN":
            typed.append(char)
        elif rng.random() < 0.5:  # substituted; else deleted
            others = _SUBSTITUTES.replace(char, "")
            typed.append(others[rng.integers(len(others))])
    return "".join(typed)


def annotate_transcripts(
    truth_transcripts: Mapping[str, str],
    annotators: Sequence[Annotator],
    overlap: int,
    rng: np.random.Generator,
    gold_rate: float = GOLD_RATE,
) -> pd.DataFrame:
    """Transcription rows (column `transcript`); a spammer's transcript is mangled throughout."""
    rows, accuracy = _assign(list(truth_transcripts), annotators, overlap, gold_rate, rng)
    texts = list(truth_transcripts.values())
    rows["transcript"] = [
        annotate_transcript(texts[task - 1], 0.0 if np.isnan(skill) else skill, rng)
        for task, skill in zip(rows["task_id"], accuracy, strict=True)
    ]
    return rows


def _rectangle(x: float, y: float, width: float, height: float) -> dict:
    """Plain floats rounded like the clients' truth, as an export would carry them."""
    return {
        "x": round(float(x), 4),
        "y": round(float(y), 4),
        "width": round(float(width), 4),
        "height": round(float(height), 4),
    }


def _jittered(box: dict, rng: np.random.Generator) -> dict:
    """The box as a hand draws it: each coordinate off by a few percent of the box's size."""
    dx, dy, dw, dh = rng.normal(0.0, BOX_JITTER, 4)
    x = min(max(box["x"] + dx * box["width"], 0.0), 100.0)
    y = min(max(box["y"] + dy * box["height"], 0.0), 100.0)
    width = min(box["width"] * (1 + dw), 100.0 - x)
    height = min(box["height"] * (1 + dh), 100.0 - y)
    return _rectangle(x, y, width, height)


def annotate_boxes(
    boxes: Sequence[dict], accuracy: float, rng: np.random.Generator, label_set: Sequence[str]
) -> list[dict]:
    """Each true box drawn (jittered) with probability `accuracy`, else missed or drawn with a wrong label.

    Box F1 against the truth is then expected_box_f1(accuracy).
    """
    drawn = []
    for box in boxes:
        if rng.random() < accuracy:
            drawn.append({**_jittered(box, rng), "label": box["label"]})
        elif rng.random() < 0.5 and len(label_set) > 1:
            wrong = [label for label in label_set if label != box["label"]]
            drawn.append({**_jittered(box, rng), "label": wrong[rng.integers(len(wrong))]})
    return drawn


def _random_boxes(label_set: Sequence[str], rng: np.random.Generator) -> list[dict]:
    """What a spammer draws: one to three boxes anywhere, with any label."""
    drawn = []
    for _ in range(rng.integers(1, 4)):
        width, height = rng.uniform(10.0, 40.0, 2)
        x, y = rng.uniform(0.0, 100.0 - width), rng.uniform(0.0, 100.0 - height)
        drawn.append({**_rectangle(x, y, width, height), "label": label_set[rng.integers(len(label_set))]})
    return drawn


def annotate_images(
    truth_boxes: Mapping[str, Sequence[dict]],
    label_set: Sequence[str],
    annotators: Sequence[Annotator],
    overlap: int,
    rng: np.random.Generator,
    gold_rate: float = GOLD_RATE,
) -> pd.DataFrame:
    """Detection rows (column `boxes`, Label Studio percent units); gold rows carry the true boxes."""
    rows, accuracy = _assign(list(truth_boxes), annotators, overlap, gold_rate, rng)
    images = list(truth_boxes.values())
    drawn = []
    for task, skill, gold in zip(rows["task_id"], accuracy, rows["ground_truth"], strict=True):
        if gold:
            drawn.append([dict(box) for box in images[task - 1]])
        elif np.isnan(skill):
            drawn.append(_random_boxes(label_set, rng))
        else:
            drawn.append(annotate_boxes(images[task - 1], skill, rng, label_set))
    rows["boxes"] = drawn
    return rows


def annotate_delivery(
    delivery: SimulatedDelivery,
    annotators: Sequence[Annotator],
    overlap: int,
    rng: np.random.Generator,
    gold_rate: float = GOLD_RATE,
) -> pd.DataFrame:
    """The crew's annotations of a whole delivery, as its modality's task asks."""
    kind = simulated(delivery.modality, delivery.manifest["task"])
    return kind.annotate(delivery.truth, delivery.manifest["label_set"], annotators, overlap, rng, gold_rate)
