"""The outside world's side of each annotation type: how a client's items and their truth are made,
and how an annotator of known skill answers them (errors included), one module per type, namesake of
its module in `annotation_types`.

Each module declares `SIMULATED`, a `SimulatedType`; modules are imported on first look-up, so they
may build on the rest of the simulator.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from simulator.clients import MODALITY_TASKS

# (item_id, part -> file bytes, truth) for each item of a delivery
Item = tuple[str, dict[str, bytes], dict]


@dataclass(frozen=True)
class ItemOptions:
    """What a delivery's maker may vary: `disagreement_rate`, the share of multi-part items whose parts
    truly carry different labels; `image_format`, "png" or "jpg"."""

    disagreement_rate: float = 0.05
    image_format: str = "png"


@dataclass(frozen=True)
class SimulatedType:
    """- `items(item_seed, industry, label_set, n_items, options)`: a delivery's items, deterministic
      from `item_seed`.
    - `annotate(truth, label_set, annotators, overlap, rng, gold_rate)`: the crew's annotation rows
      of a whole delivery (`truth` keyed by item id), as the base reads them from an export.
    - `answer(parts, truth, label_set, accuracy, rng)`: one annotator's answer for one item (accuracy
      None: a spammer); `true_answer(parts, truth)`: the reviewer's, the truth itself.
    - `results(parts, answer)`: the answer as Label Studio 1.23.2 writes its result entries.
    """

    modality: str
    task: str
    items: Callable[[str, str, list[str], int, ItemOptions], Iterator[Item]]
    annotate: Callable[..., pd.DataFrame]
    answer: Callable[[Sequence[str], dict, Sequence[str], float | None, np.random.Generator], object]
    true_answer: Callable[[Sequence[str], dict], object]
    results: Callable[[Sequence[str], object], list[dict]]


def item_rng(item_seed: str, modality: str) -> random.Random:
    """The random stream a delivery's media items are drawn from."""
    return random.Random(f"annobase-sim/delivery/{item_seed}/{modality}")


def choose(label: str, label_set: Sequence[str], accuracy: float | None, rng: np.random.Generator) -> str:
    """A label as an annotator of `accuracy` picks it: right with that chance, else another; a spammer
    (None) picks any."""
    if accuracy is None:
        return label_set[rng.integers(len(label_set))]
    if rng.random() < accuracy:
        return label
    others = [other for other in label_set if other != label]
    return others[rng.integers(len(others))]


def truth_of(truth: Mapping[str, dict], key: str) -> dict[str, object]:
    """One truth field of every item."""
    return {item: item_truth[key] for item, item_truth in truth.items()}


@cache
def _declared() -> dict[tuple[str, str], SimulatedType]:
    found: dict[tuple[str, str], SimulatedType] = {}
    for module in pkgutil.iter_modules(__path__):
        declared = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SIMULATED", None)
        if isinstance(declared, SimulatedType):
            found[(declared.modality, declared.task)] = declared
    return found


def declared_pairs() -> frozenset[tuple[str, str]]:
    return frozenset(_declared())


def simulated(modality: str, task: str | None = None) -> SimulatedType:
    """The simulated side of a (modality, task) pair, task by default the one clients send with the
    modality; ValueError for a pair no module declares."""
    task = MODALITY_TASKS.get(modality) if task is None else task
    declared = _declared().get((modality, task))
    if declared is None:
        known = sorted(_declared())
        raise ValueError(f"no simulated annotation type for {modality!r} + {task!r}; known: {known}")
    return declared
