"""Near-duplicate texts across a client's whole history, not only within one delivery.

An edited re-send in next month's delivery would otherwise be annotated and paid for again. Every
kept text leaves its MinHash LSH buckets in the catalog table `text_lsh` (one row per text, one
64-bit bucket per band, the band mixed in so that one equality join finds every shared band) and a
sketch of its signature (the low byte of each MinHash value); a new delivery's texts are joined
against the client's earlier rows in DuckDB, candidates whose sketches agree too little are left out
(templated notes share bands by the hundred thousand), and the rest are confirmed on the exact
shingle sets of both texts (the earlier text read from its delivery's `clean_items` partition), as
within a delivery. The index grows by one row per kept text (about 260 bytes) and is kept
incrementally: each delivery writes its own partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from annobase.keys import DeliveryRef
from assets.cleaning.near_duplicates import (
    _ESTIMATE_MARGIN,
    Duplicate,
    _jaccard,
    _lsh_bands,
    minhash_signatures,
    shingle_hashes,
)
from resources.catalog import Catalog, CatalogSnapshot

# candidate pairs whose sketches are compared at once (128 bytes each, twice)
PAIRS_PER_CHUNK = 200_000
# fixed odd 64-bit multipliers of the band hash, one per MinHash value of a band: the buckets are
# stored, so they must never change
_ROW_MULTIPLIERS = np.random.default_rng(0xA11B05E).integers(1, 2**63, size=1024, dtype=np.uint64)
_ROW_MULTIPLIERS |= np.uint64(1)
_BAND_MULTIPLIER = np.uint64(0xFF51AFD7ED558CCD)


class TextIndex(NamedTuple):
    """Per text: its bucket in each LSH band, and a sketch of its MinHash signature (one byte per
    value: two texts' sketches agree on a share of bytes of J + (1 - J) / 256). None for a text
    without shingles."""

    buckets: list[list[int] | None]
    sketches: list[bytes | None]


def text_index(texts: Sequence[str], threshold: float, k: int = 3, num_perm: int = 128, seed: int = 1):
    """The `TextIndex` of `texts` (datasketch's bands and rows for `threshold`)."""
    hashes, bounds = shingle_hashes(list(texts), k)
    signatures = minhash_signatures(hashes, bounds, num_perm, seed)
    bands, rows = _lsh_bands(threshold, num_perm)
    wide = signatures.astype(np.uint64)
    buckets = np.empty((len(texts), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic modulo 2^64 is the point
        for band in range(bands):
            values = wide[:, band * rows : (band + 1) * rows]
            mixed = (values * _ROW_MULTIPLIERS[:rows]).sum(axis=1, dtype=np.uint64)
            buckets[:, band] = mixed ^ (np.uint64(band + 1) * _BAND_MULTIPLIER)
    sketches = (signatures & 0xFF).astype(np.uint8)
    filled = (np.diff(bounds) > 0).tolist()
    stored = buckets.view(np.int64).tolist()  # the same 64 bits, as the signed numbers Parquet keeps
    return TextIndex(
        [row if has else None for row, has in zip(stored, filled, strict=True)],
        [sketch.tobytes() if has else None for sketch, has in zip(sketches, filled, strict=True)],
    )


def index_rows(ref: DeliveryRef, item_keys: Sequence[str], index: TextIndex) -> list[dict]:
    """The delivery's `text_lsh` partition: one row per kept text that has shingles."""
    return [
        {"client_id": ref.client_id, "delivery_id": ref.delivery_id, "item_key": key, "buckets": row,
         "sketch": sketch}
        for key, row, sketch in zip(item_keys, index.buckets, index.sketches, strict=True)
        if row is not None
    ]  # fmt: skip


def history_duplicates(
    ref: DeliveryRef,
    writer: Catalog,
    earlier: CatalogSnapshot,
    items: pd.DataFrame,
    index: TextIndex,
    threshold: float,
    k: int = 3,
) -> list[Duplicate]:
    """Texts of `items` (item_key, text) with shingle Jaccard >= `threshold` to a kept text of one of
    the client's earlier deliveries (delivery id order, as for exact duplicates); each points at its
    most similar earlier text (the smallest item key of equally similar ones)."""
    keys = items.item_key.tolist()
    filled = [idx for idx, row in enumerate(index.buckets) if row is not None]
    if not filled:
        return []
    buckets = np.array([index.buckets[idx] for idx in filled], dtype=np.int64)
    incoming = pd.DataFrame(
        {"idx": np.repeat(np.array(filled, dtype=np.int64), buckets.shape[1]), "bucket": buckets.ravel()}
    )
    params = {"client_id": ref.client_id, "delivery_id": ref.delivery_id}
    pairs = earlier.query_with("client_text_lsh_candidates", {"incoming_buckets": incoming}, **params)
    if pairs.empty:
        return []
    rows = earlier.query_with("text_lsh_rows", {"wanted_rows": pairs[["rid"]].drop_duplicates()})
    # the sketches' agreement estimates each pair's similarity: only likely pairs are checked exactly
    width = len(rows.sketch.iloc[0])
    theirs = np.frombuffer(b"".join(rows.sketch.tolist()), np.uint8).reshape(-1, width)
    mine = np.frombuffer(b"".join(sketch or bytes(width) for sketch in index.sketches), np.uint8)
    mine = mine.reshape(-1, width)
    position = np.searchsorted(rows.rid.to_numpy(), pairs.rid.to_numpy())
    new = pairs.idx.to_numpy()
    agreeing = np.empty(len(pairs))
    for start in range(0, len(pairs), PAIRS_PER_CHUNK):  # bounded memory at a million candidates
        chunk = slice(start, start + PAIRS_PER_CHUNK)
        agreeing[chunk] = (mine[new[chunk]] == theirs[position[chunk]]).mean(axis=1)
    likely = agreeing >= threshold - _ESTIMATE_MARGIN
    earlier_keys, earlier_deliveries = rows.item_key.tolist(), rows.delivery_id.tolist()
    candidates = pd.DataFrame(
        {
            "item_key": [keys[i] for i in new[likely]],
            "earlier_key": [earlier_keys[p] for p in position[likely]],
            "earlier_delivery": [earlier_deliveries[p] for p in position[likely]],
        }
    )
    if candidates.empty:
        return []
    earlier_texts = {}
    for delivery_id in sorted(set(candidates.earlier_delivery.tolist())):
        kept = writer.read_partition("clean_items", DeliveryRef(ref.client_id, delivery_id).partition_key)
        earlier_texts.update(zip(kept.item_key.tolist(), kept.text.tolist(), strict=True))
    texts = dict(zip(items.item_key, items.text, strict=True))
    likely_pairs = list(zip(candidates.item_key.tolist(), candidates.earlier_key.tolist(), strict=True))
    involved = sorted({key for pair in likely_pairs for key in pair})
    hashes, bounds = shingle_hashes([texts.get(key) or earlier_texts.get(key) or "" for key in involved], k)
    shingles = {key: np.unique(hashes[bounds[i] : bounds[i + 1]]) for i, key in enumerate(involved)}
    best: dict[str, tuple[float, str]] = {}
    for item_key, other in likely_pairs:
        if len(shingles[other]) and len(shingles[item_key]):
            scored = (-_jaccard(shingles[item_key], shingles[other]), other)
            best[item_key] = min(best.get(item_key, scored), scored)
    return [
        Duplicate(item_key, other, "near_text", -score)
        for item_key, (score, other) in sorted(best.items())
        if -score >= threshold
    ]
