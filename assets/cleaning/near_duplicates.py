"""Finding duplicates before annotation, so no annotator is paid twice for the same content.

Three kinds, each reported as `Duplicate(item_key, duplicate_of, kind, similarity)` for the item to
drop, pointing at the item that is kept (always the earlier one in the batch, or one already in the
catalog):

- exact: the same file content (sha256), within a batch and against the client's catalog;
- near_text: texts whose character-shingle sets have Jaccard similarity >= a threshold, found with
  MinHash LSH (datasketch) and confirmed on the shingle sets themselves;
- near_image: images whose perceptual hashes (pHash) differ in at most a few bits, which survives
  re-encoding, resizing and mild colour changes; the hashes can be computed apart from the comparison.

Functions take plain sequences and are module-level, so Dask can run them on a partition at a time.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import cache
from typing import NamedTuple

import imagehash
import numpy as np
from datasketch import MinHash, MinHashLSH
from PIL import Image

# datasketch's default permutation scheme: MurmurHash3 pre-mix, then a * h + b mod 2^32 per permutation
_SCHEME = "affine32"
# odd 64-bit multiplier of the polynomial shingle hash (the golden-ratio constant)
_SHINGLE_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
# LSH candidates are confirmed on the shingle sets, so a false positive costs only a check while a
# false negative is a duplicate paid for twice: weighing misses 19:1 finds 95% of pairs at exactly
# the threshold and 99% at 0.05 above it (datasketch's default 1:1 weights: 40% and 69%)
LSH_WEIGHTS = (0.05, 0.95)
# candidates whose MinHash estimate is this far below the threshold skip the exact check: 20 to 150
# times fewer checks on the simulated corpora; at 128 permutations the estimate's standard deviation
# near a 0.8 threshold is 0.035, so under 0.3% of pairs at the threshold are lost
_ESTIMATE_MARGIN = 0.1
# shingles permuted at once: a (num_perm x shingles) array of 4 MB, the fastest size measured
_SHINGLES_PER_CHUNK = 8192


class Duplicate(NamedTuple):
    item_key: str  # the item to drop
    duplicate_of: str  # the item it duplicates, which is kept
    kind: str  # exact, near_text, near_image
    similarity: float  # 1.0 for exact; shingle Jaccard for text; 1 - differing bits / hash bits for images


def exact_duplicates(
    rows: Iterable[tuple[str, str]], known: Mapping[str, str] | None = None
) -> list[Duplicate]:
    """Items whose file content was seen before, in this batch or in the catalog.

    `rows` are `(item_key, sha256)` per file in arrival order (an item with several files has several
    rows); `known` maps the sha256 of files already in the client's catalog to their item_key. The
    first occurrence is kept; an item is reported once, on its first duplicated file.
    """
    known = known or {}
    first_seen: dict[str, str] = {}
    reported: set[str] = set()
    duplicates = []
    for item_key, sha256 in rows:
        original = known.get(sha256) or first_seen.setdefault(sha256, item_key)
        if original != item_key and item_key not in reported:
            reported.add(item_key)
            duplicates.append(Duplicate(item_key, original, "exact", 1.0))
    return duplicates


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix of datasketch's affine32 scheme."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def shingle_hashes(texts: list[str], k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every k-character shingle of every text, computed for the whole batch at once.

    Returns the hashes of all texts concatenated and `bounds`, where text i's shingles are
    `hashes[bounds[i]:bounds[i + 1]]`. A text shorter than k characters has no shingles.
    """
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    counts = np.maximum(lengths - (k - 1), 0)
    bounds = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    if not bounds[-1]:
        return np.zeros(0, dtype=np.uint32), bounds
    # code points of all texts end to end; windows spanning two texts are dropped below
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    windows = len(codes) - k + 1
    rolling = np.zeros(windows, dtype=np.uint64)
    for offset in range(k):
        rolling = rolling * _SHINGLE_MULTIPLIER + codes[offset : offset + windows]
    text_starts = np.cumsum(lengths) - lengths
    starts = np.arange(bounds[-1]) + np.repeat(text_starts - bounds[:-1], counts)
    # fold to 32 bits: the xor of each hash's two halves (symmetric, so byte order does not matter)
    halves = rolling[starts].view(np.uint32)
    return halves[0::2] ^ halves[1::2], bounds


def minhash_signatures(
    hashes: np.ndarray, bounds: np.ndarray, num_perm: int = 128, seed: int = 1
) -> np.ndarray:
    """The MinHash hash values of each text, one row per text, for all texts at once.

    Equal to datasketch's `MinHash(num_perm, seed, hashfunc=...).update_batch(shingles)` for each
    text (the tests check it), but hashing and permuting every shingle of the batch in numpy instead
    of one Python call per shingle. A text without shingles keeps the empty MinHash's values.
    """
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=_SCHEME).permutations
    signatures = np.full((len(bounds) - 1, num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    mixed = _fmix32(hashes)
    filled = np.flatnonzero(np.diff(bounds))
    first = 0
    while first < len(filled):
        # whole texts per chunk, at least one
        limit = bounds[filled[first]] + _SHINGLES_PER_CHUNK
        last = max(first + 1, int(np.searchsorted(bounds[filled + 1], limit, side="right")))
        texts = filled[first:last]
        start = bounds[texts[0]]
        # permutation-major, so each text's shingles are contiguous for the min: ten times faster
        permuted = np.multiply.outer(a, mixed[start : bounds[texts[-1] + 1]])
        permuted += b[:, None]
        signatures[texts] = np.minimum.reduceat(permuted, bounds[texts] - start, axis=1).T
        first = last
    return signatures


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)


def _shared_buckets(signatures: np.ndarray, bands: int, rows: int) -> list[list[int]]:
    """Per row, the LSH buckets it shares with another row: one number per (band, equal band slice).

    LSH pairs two texts when some band of `rows` hash values is equal in both. Bucketing every band
    of the whole batch in numpy (one sort per band) leaves Python only the lookups of the sequential
    "is it a duplicate of a text kept so far" decision; datasketch's `MinHashLSH.insert`/`query`
    per text, which hash every band again, were 75% of the time on the simulated medical notes.
    """
    buckets = np.full((len(signatures), bands), -1, dtype=np.int64)
    offset = 0
    for band in range(bands):
        values = np.ascontiguousarray(signatures[:, band * rows : (band + 1) * rows])
        keys = values.view(np.dtype((np.void, values.itemsize * rows))).ravel()
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        buckets[:, band] = np.where(counts[inverse] > 1, inverse + offset, -1)
        offset += len(counts)
    return [[bucket for bucket in row if bucket >= 0] for row in buckets.tolist()]


@cache
def _lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's (bands, rows) for the threshold and weights: found by numerical integration
    (tens of milliseconds), so once per process rather than once per delivery."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=LSH_WEIGHTS)
    return lsh.b, lsh.r


def near_text_duplicates(
    items: Iterable[tuple[str, str]],
    threshold: float = 0.8,
    k: int = 3,
    num_perm: int = 128,
    seed: int = 1,
) -> list[Duplicate]:
    """Texts with character k-shingle Jaccard >= `threshold` to an earlier text of the batch.

    `items` are `(item_key, text)`. LSH proposes candidates among the texts kept so far; each is
    confirmed on the exact shingle sets, which removes LSH's false positives and gives the reported
    similarity. A dropped text points at its most similar kept text (the earliest of equally similar
    ones), never at another dropped one. Texts shorter than k characters are left to exact
    deduplication.
    """
    items = list(items)
    hashes, bounds = shingle_hashes([text for _, text in items], k)
    signatures = minhash_signatures(hashes, bounds, num_perm, seed)
    shingle_sets: dict[int, np.ndarray] = {}

    def shingle_set(i: int) -> np.ndarray:
        if i not in shingle_sets:
            shingle_sets[i] = np.unique(hashes[bounds[i] : bounds[i + 1]])
        return shingle_sets[i]

    filled = np.flatnonzero(np.diff(bounds))
    min_agreeing = (threshold - _ESTIMATE_MARGIN) * num_perm  # equal hash values of a likely pair
    kept_in_bucket: dict[int, list[int]] = defaultdict(list)
    duplicates = []
    shared = _shared_buckets(signatures[filled], *_lsh_bands(threshold, num_perm))
    for i, buckets in zip(filled.tolist(), shared, strict=True):
        if not buckets:
            continue  # shares no band with any text: LSH can pair it with none
        candidates = set().union(*(kept_in_bucket.get(bucket, ()) for bucket in buckets))
        scored = []
        if candidates:
            candidates = np.fromiter(candidates, np.int64, len(candidates))
            agreeing = np.count_nonzero(signatures[candidates] == signatures[i], axis=1)
            likely = candidates[agreeing >= min_agreeing].tolist()
            # (similarity, -index): the most similar candidate, then the earliest
            scored = [(_jaccard(shingle_set(i), shingle_set(j)), -j) for j in likely]
        if scored and (best := max(scored))[0] >= threshold:
            duplicates.append(Duplicate(items[i][0], items[-best[1]][0], "near_text", best[0]))
        else:
            for bucket in buckets:
                kept_in_bucket[bucket].append(i)
    return duplicates


def image_phash(data: bytes, hash_size: int = 8) -> bytes:
    """The perceptual hash of encoded image bytes: hash_size² bits packed into bytes (8 by default)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.packbits(imagehash.phash(image, hash_size=hash_size).hash).tobytes()


def near_hash_duplicates(items: Iterable[tuple[str, bytes]], max_distance: int = 6) -> list[Duplicate]:
    """Images whose pHash is within `max_distance` bits of an earlier image's.

    `items` are `(item_key, image_phash(...))`, so the hashes can be computed where the files are read
    (on the Dask workers) and only 8 bytes per image travel. A dropped image points at the closest
    kept image (the earliest of equally close ones); each image is compared with all kept ones in one
    numpy step. Similarity is 1 - differing bits / bits of the packed hash.
    """
    keys, hashes = [], []
    for item_key, image_hash in items:
        keys.append(item_key)
        hashes.append(image_hash)
    if not keys:
        return []
    packed = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(keys), -1)
    bits = packed.shape[1] * 8
    kept = np.empty_like(packed)  # hashes of the images kept so far, in the first len(kept_keys) rows
    kept_keys: list[str] = []
    duplicates = []
    for item_key, image_hash in zip(keys, packed, strict=True):
        distances = np.bitwise_count(kept[: len(kept_keys)] ^ image_hash).sum(axis=1)
        closest = int(np.argmin(distances)) if kept_keys else None
        if closest is not None and distances[closest] <= max_distance:
            similarity = 1 - int(distances[closest]) / bits
            duplicates.append(Duplicate(item_key, kept_keys[closest], "near_image", similarity))
            continue
        kept[len(kept_keys)] = image_hash
        kept_keys.append(item_key)
    return duplicates


def near_image_duplicates(
    items: Iterable[tuple[str, bytes]], max_distance: int = 6, hash_size: int = 8
) -> list[Duplicate]:
    """As `near_hash_duplicates`, for `(item_key, encoded image bytes)`: hashes them first."""
    return near_hash_duplicates(((key, image_phash(data, hash_size)) for key, data in items), max_distance)
