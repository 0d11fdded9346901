"""Speech accuracy: 1 − CER against the reference transcript, in characters, over the whole batch.

Chinese text is normalised before comparing, since a transcriber's choice of "，" or "," or a
space is not a hearing error: NFKC folds full-width forms to half width (unicodedata), then
punctuation (Unicode categories P*) and whitespace are removed. CER is the batch's total edit
distance (rapidfuzz Levenshtein) divided by its total reference characters, so an utterance
weighs by its length instead of every utterance weighing the same.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from assets.quality.annotation_rows import (
    Sums,
    annotator_rows,
    batch_score,
    gold_references,
    rows_with_reference,
)


class _DroppedCharacters(dict):
    """str.translate table deleting punctuation and whitespace, filled in as characters are met.

    Deciding for all 1.1 million code points up front costs every worker a second.
    """

    def __missing__(self, code: int) -> int | None:
        char = chr(code)
        self[code] = None if unicodedata.category(char).startswith("P") or char.isspace() else code
        return self[code]


_DROPPED = _DroppedCharacters()


# a batch's measures (consensus, 1 − CER, scorecards) normalise the same transcripts several times
@lru_cache(maxsize=1 << 16)
def normalise_transcript(text: str) -> str:
    """The characters that count: NFKC-folded, without punctuation or whitespace."""
    return unicodedata.normalize("NFKC", text).translate(_DROPPED)


def normalise_transcripts(texts: Iterable[str | None]) -> list[str]:
    """normalise_transcript over many; a missing transcript is an empty one."""
    if isinstance(texts, pd.Series):
        texts = texts.tolist()  # one conversion: iterating Arrow-backed strings converts each value
    return [normalise_transcript(text) if isinstance(text, str) else "" for text in texts]


def edit_distances(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Levenshtein distance of a[i] to b[i] for every i, computed in C.

    On one thread: a batch's few thousand pairs take less time than starting more, and Dask already
    runs a batch on every core.
    """
    if not len(a):
        return np.zeros(0, dtype=np.int64)
    return process.cpdist(a, b, scorer=Levenshtein.distance, workers=1).astype(np.int64)


def transcript_components(rows: pd.DataFrame, references: pd.Series) -> pd.DataFrame:
    """Per transcript whose task has a reference: its edits and the reference's characters."""
    scored, reference = rows_with_reference(rows, references)
    normalised = normalise_transcripts(reference)
    edits = edit_distances(normalise_transcripts(scored["transcript"]), normalised)
    ref_chars = np.fromiter(map(len, normalised), dtype=np.int64, count=len(normalised))
    return pd.DataFrame({"edits": edits, "ref_chars": ref_chars}, index=scored.index)


def transcript_score(sums: Sums) -> np.ndarray:
    return 1 - sums["edits"] / sums["ref_chars"]


def speech_accuracy(annotations: pd.DataFrame) -> float | None:
    """1 − CER of the transcripts on gold tasks; None when the batch has no gold task."""
    references = gold_references(annotations, "transcript")
    return batch_score(transcript_components(annotator_rows(annotations), references), transcript_score)
