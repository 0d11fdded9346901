"""Workload `pii`: how much personal data masking finds, and what else it masks, on the simulator's
PII corpus (`simulator/pii_corpus.py`), with the patterns alone and with jieba's name tags.

- recall: personal values of the written forms (every form but `unmarked_name`) wholly masked;
- unmarked names: names no word marks, wholly masked (the segmenter's part, reported apart);
- false-mask rate: cases in which something that is not personal data was masked (a negative text
  touched, or a character outside a case's personal values).

Variants: **project** is `mask_pii` as the cleaning asset runs it by default (patterns);
**segmenter** adds jieba's person-name tags (`[cleaning] name_segmenter`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

from benchmarks.harness import Outcome, Result, measure

NAME = "pii"
TARGET = "recall ≥ 99.5 % on the written forms; false-mask rate ≤ 0.5 %"
FULL_SIZE = 1_600
SIZE_UNIT = "cases"
RECALL_TARGET = 0.995
FALSE_MASK_TARGET = 0.005
UNMARKED = "unmarked_name"


class Score(NamedTuple):
    cases: int
    values: int
    masked: int
    unmarked: int
    unmarked_masked: int
    false_masked_cases: int
    missed: list[tuple[str, str]]  # (form, value) not wholly masked
    false_masks: list[tuple[str, str]]  # (form, text) with something else masked

    @property
    def recall(self) -> float:
        return self.masked / self.values if self.values else 1.0

    @property
    def unmarked_recall(self) -> float:
        return self.unmarked_masked / self.unmarked if self.unmarked else 1.0

    @property
    def false_mask_rate(self) -> float:
        return self.false_masked_cases / self.cases if self.cases else 0.0


def corpus(size: int):
    """A corpus of about `size` cases: 25 written forms, a quarter as many negatives, a twelfth
    unmarked names (1,600 → 40 of each form, 400 negatives, 133 unmarked names)."""
    from simulator.pii_corpus import make_pii_corpus

    return make_pii_corpus("benchmark", per_form=max(1, size // 40), negatives=size // 4, unmarked=size // 12)


def score(cases, segmenter: bool = False) -> Score:
    """Each case masked by `mask_pii`; its findings compared with the spans the simulator put in."""
    from assets.cleaning.pii import mask_pii

    values = masked = unmarked = unmarked_masked = false_masked = 0
    missed, false_masks = [], []
    for case in cases:
        found = mask_pii(case.text, segmenter=segmenter).found
        covered = {i for finding in found for i in range(finding.start, finding.end)}
        personal = {i for span in case.pii for i in range(span.start, span.end)}
        for span in case.pii:
            whole = covered.issuperset(range(span.start, span.end))
            if case.form == UNMARKED:
                unmarked, unmarked_masked = unmarked + 1, unmarked_masked + whole
                continue
            values, masked = values + 1, masked + whole
            if not whole:
                missed.append((case.form, case.text[span.start : span.end]))
        if covered - personal:
            false_masked += 1
            false_masks.append((case.form, case.text))
    return Score(len(cases), values, masked, unmarked, unmarked_masked, false_masked, missed, false_masks)


def _answer(result: Score) -> str:
    return (
        f"recall {result.recall:.2%} ({result.masked}/{result.values}), unmarked names "
        f"{result.unmarked_recall:.1%} ({result.unmarked_masked}/{result.unmarked}), false-mask rate "
        f"{result.false_mask_rate:.2%} ({result.false_masked_cases}/{result.cases})"
    )


def masked_with(size: int, segmenter: bool) -> Outcome:
    cases = corpus(size)
    if segmenter:  # jieba's dictionary loads once per process: not part of the rate
        from assets.cleaning.pii import segmented_names

        segmented_names("预热")
    started = time.perf_counter()
    result = score(cases, segmenter)
    return Outcome(len(cases), _answer(result), seconds=time.perf_counter() - started)


def run(size: int, workers: int, workdir: Path, variants: set[str], **_) -> list[Result]:
    """Both variants at every size (no baseline or floor: the answer, not the speed, is the point;
    the speed shows what the segmenter costs)."""
    label = f"{size:,} cases"
    return [
        measure(NAME, "project", label, masked_with, size, False, workers=1, note="patterns"),
        measure(NAME, "segmenter", label, masked_with, size, True, workers=1, note="patterns + jieba `nr`"),
    ]


def verdict(results: list[Result]) -> tuple[bool, str]:
    """Judged on the largest corpus measured (the full one unless `--scale` says otherwise)."""
    projects = [r for r in results if r.variant == "project"]
    if not projects:
        return False, "not measured"
    largest = max(projects, key=lambda r: r.items)
    recall = float(largest.answer.split("recall ", 1)[1].split("%", 1)[0]) / 100
    false_rate = float(largest.answer.split("false-mask rate ", 1)[1].split("%", 1)[0]) / 100
    met = recall >= RECALL_TARGET and false_rate <= FALSE_MASK_TARGET
    return met, f"patterns: {largest.answer}"
