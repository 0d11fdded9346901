"""The base's annotation types: one module per (modality, task), the only place that names one.

Each module of this package declares `TYPE`, an `AnnotationType`: its Label Studio control, how an
export's result becomes an answer (and an answer results, for gold and pre-labels), its consensus,
its measure against gold, the gate's metric and threshold key, and its release columns with their
Croissant descriptions. The gate, QA, the quality report, deliveries and releases look a type up here
and never dispatch on its name. A new type is a new module plus its `[modalities]` entry, its
`[thresholds]` key and its part's file kinds in the configuration; the simulator's side of a type (the
outside world producing items, truth and annotator errors) is its namesake under `simulator/types/`.

Modules are imported on first look-up, so the quality code the types are built from can itself look
types up without an import cycle.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import pandas as pd

from annobase.settings import Modality, load_settings
from annotation_types.controls import Control, ControlKind


@dataclass(frozen=True)
class Measure:
    """A type's score of annotator rows against a reference (gold or consensus).

    `column`: the answer compared; `unit`: the columns a reference is keyed by; `components(rows,
    references)` per row, summed and turned into a score by `score`; `split`: rows made from
    annotation rows first (one per part for per-part labels), None when annotations are scored as
    they are.
    """

    column: str
    unit: Sequence[str]
    components: Callable[[pd.DataFrame, pd.Series], pd.DataFrame]
    score: Callable
    split: Callable[[pd.DataFrame], pd.DataFrame] | None = None


@dataclass(frozen=True)
class AnnotationType:
    """Everything the base knows about one annotation type (see the package docstring).

    - `control`, `kind`: the Label Studio control's name (CONTRACT.md section 3) and kind; with
      `per_part`, one control per part named `{control}_{part}`, and the answer is part -> value.
    - `answer_field`: the parsed row's field holding the answer; `catalog_column` the catalog column
      that stores it (`catalog_json`: as JSON text).
    - `consensus(annotations, label_set)`: one row per unit with the agreed answer, `annotations`
      and `agreement`.
    - `measure`: the score against gold (and against consensus in the scorecards).
    - `accuracy_metric`: the QA column of the batch's measure on gold; `gate_metric`: the QA column
      the gate holds to `[thresholds]` under the same name; `more_scores(work, agreed, on_gold)`:
      the type's further QA columns (named in `more_metrics`).
    - `release_answer`: the single-part release column with the consensus answer (`release_json`:
      JSON text); per-part types release `label_{part}` and `label`. `release_fields`: Croissant
      descriptions of those columns (a `{part}` in a name stands for each of the modality's parts).
    - `prelabels`: whether a label model learned from earlier batches pre-labels its tasks.
    - `fixture`: the name of its real Label Studio files in `shared/fixtures/label-studio/`.
    """

    modality: str
    task: str
    control: str
    kind: ControlKind
    answer_field: str
    catalog_column: str
    consensus: Callable[[pd.DataFrame, Sequence[str] | None], pd.DataFrame]
    measure: Measure
    accuracy_metric: str
    gate_metric: str
    release_fields: dict[str, str]
    fixture: str
    per_part: bool = False
    catalog_json: bool = False
    release_answer: str | None = None
    release_json: bool = False
    more_metrics: tuple[str, ...] = ()
    more_scores: Callable[..., dict] | None = None
    prelabels: bool = False

    @property
    def spec(self) -> Modality:
        """The configuration's parts for this type's modality."""
        return modality_spec(self.modality)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The QA score columns this type fills, each a share in [0, 1]."""
        return tuple(dict.fromkeys((self.accuracy_metric, self.gate_metric, *self.more_metrics)))

    def controls(self, parts: Sequence[str]) -> list[Control]:
        """The controls an item with these parts is labelled through, in the order of `parts`."""
        if self.per_part:
            return [Control(f"{self.control}_{part}", part, self.kind.type) for part in parts]
        (part,) = parts
        return [Control(self.control, part, self.kind.type)]

    def results(self, parts: Sequence[str], answer, **media) -> list[dict]:
        """The answer as Label Studio result entries (`media`: e.g. original_width for images)."""
        asked = self.controls(parts)
        if self.per_part:
            return [entry for c in asked for entry in self.kind.results(c, answer[c.to_name], **media)]
        return self.kind.results(asked[0], answer, **media)

    def answer(self, found: dict[Control, list]) -> dict:
        """The parsed row's answer field from each asked control's read values; ValueError naming the
        control whose count of results does not fit."""

        def value(control: Control):
            values = found[control]
            if self.kind.many:
                return values
            if len(values) != 1:
                raise ValueError(f"{len(values)} results for {control.name}, not one")
            return values[0]

        if self.per_part:
            return {self.answer_field: {control.to_name: value(control) for control in found}}
        (control,) = found
        return {self.answer_field: value(control)}


def modality_spec(modality: str) -> Modality:
    """The modality's settings; ValueError for a modality the configuration does not know."""
    spec = load_settings().modalities.get(modality)
    if spec is None:
        raise ValueError(f"modality {modality!r} is not one of {sorted(load_settings().modalities)}")
    return spec


@cache
def _declared() -> dict[tuple[str, str], AnnotationType]:
    """Every `TYPE` declared by a module of this package, by (modality, task)."""
    found: dict[tuple[str, str], AnnotationType] = {}
    for module in pkgutil.iter_modules(__path__):
        declared = getattr(importlib.import_module(f"{__name__}.{module.name}"), "TYPE", None)
        if isinstance(declared, AnnotationType):
            key = (declared.modality, declared.task)
            if key in found:
                raise ValueError(f"annotation type {key} is declared twice")
            found[key] = declared
    return found


def annotation_type(modality: str, task: str | None = None) -> AnnotationType:
    """The type of a configured modality (with its configured task unless `task` is given).

    ValueError for a modality the configuration does not know or a pair no module declares."""
    task = modality_spec(modality).task if task is None else task
    declared = _declared().get((modality, task))
    if declared is None:
        raise ValueError(f"no annotation type for modality {modality!r} and task {task!r}")
    return declared


def configured_types() -> list[AnnotationType]:
    """The configured modalities' types, in the configuration's order."""
    return [annotation_type(name) for name in load_settings().modalities]


def labelled_tasks() -> frozenset[str]:
    """The tasks whose control asks for labels from the manifest's `label_set`."""
    return frozenset(kind.task for kind in configured_types() if kind.kind.labelled)


def score_columns() -> tuple[str, ...]:
    """The QA score columns of every configured type, each once, in the configuration's order."""
    return tuple(dict.fromkeys(metric for kind in configured_types() for metric in kind.metrics))


def accuracy_columns() -> tuple[str, ...]:
    """The measures on gold of the configured types, each once."""
    return tuple(dict.fromkeys(kind.accuracy_metric for kind in configured_types()))


def single_answer_columns() -> tuple[str, ...]:
    """The release columns holding a single-part type's consensus answer, each once."""
    return tuple(dict.fromkeys(kind.release_answer for kind in configured_types() if kind.release_answer))


def release_field_descriptions() -> dict[str, str]:
    """Croissant descriptions of the answer columns of every configured type; a column two types
    share (text's and multimodal's `label`) gets both sentences."""
    descriptions: dict[str, str] = {}
    for kind in configured_types():
        for name, text in kind.release_fields.items():
            for part in kind.spec.parts if "{part}" in name else [None]:
                column, said = name.replace("{part}", str(part)), text.replace("{part}", str(part))
                known = descriptions.get(column)
                descriptions[column] = said if known in (None, said) else f"{known} {said}"
    return descriptions
