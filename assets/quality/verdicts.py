"""Whether a batch's recorded verdict still counts: it must be on the export the store holds now.

`batch_gate_status` (sql/catalog_views.sql) already holds a verdict to the export version and tasks
version its QA results were measured on. A newer export may have landed since (a rework, an annotator
correcting an answer) whose QA run has not finished: the old verdict judged data that is no longer the
batch's answer, so deliveries and releases wait for the new one. And what they deliver (the consensus)
must be the very data the verdict judged: rows agreed from another export are never mixed in.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from annobase.keys import export_key
from annobase.object_store import ObjectStore

HEAD_THREADS = 16


def on_current_exports(store: ObjectStore, gates: pd.DataFrame) -> pd.DataFrame:
    """`gates` (batch_id, passed, export_etag) with `passed` False where the store now holds another
    export than the one judged, and a `waiting_for` column saying why a batch does not count."""
    gates = gates.copy()
    batch_ids = gates.batch_id.tolist()
    with ThreadPoolExecutor(HEAD_THREADS) as pool:
        heads = list(pool.map(lambda batch_id: store.head(export_key(batch_id)), batch_ids))
    current = pd.Series([head.etag if head else None for head in heads], index=gates.index, dtype=object)
    stale = gates.passed.eq(True) & current.ne(gates.export_etag)
    gates["waiting_for"] = None
    gates.loc[gates.passed.isna(), "waiting_for"] = "a first verdict"
    gates.loc[gates.passed.eq(False), "waiting_for"] = "a passed verdict on its current export and tasks"
    gates.loc[stale, "waiting_for"] = "the verdict on its newer export"
    gates.loc[stale, "passed"] = False
    return gates


def judged_consensus(consensus: pd.DataFrame, gates: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The consensus rows agreed from the export each batch's verdict judged, and the batches whose
    rows were agreed from another (a QA run replaced them after the verdict was read)."""
    judged = dict(zip(gates.batch_id, gates.export_etag, strict=True))
    matches = consensus.export_etag.eq(consensus.batch_id.map(judged))
    mismatched = sorted(set(consensus.batch_id[~matches]))
    return consensus[matches], mismatched


def verdicts_digest(gates: pd.DataFrame) -> str:
    """What a delivery is returned under: its batches and the export each passed verdict judged."""
    pairs = sorted(zip(gates.batch_id, gates.export_etag, strict=True))
    return hashlib.sha256("\n".join(f"{batch}@{etag}" for batch, etag in pairs).encode()).hexdigest()[:16]
