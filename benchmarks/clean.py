"""Workload `clean`: exact duplicates, near-duplicate texts and PII masking over a million texts.

The answer every variant must give, as `clean_items` defines it:
- exact: a text whose sha256 equals an earlier item's (item order, across the client's deliveries)
  is dropped;
- near: among a delivery's remaining texts, one whose 3-shingle Jaccard to an earlier kept text is
  ≥ 0.8 is dropped (near-duplicates are looked for within a delivery, as the asset does);
- masked: texts in which personal data was found and masked.

The near-duplicate search is approximate (MinHash LSH): the baseline, hashing shingles datasketch's
way, misses a slightly different few pairs near the threshold than the project's and the floor's
numpy MinHash (1 % more found at 20,000 texts), so its near count may differ by that much.

The input is simulated medical notes (the industry with the most personal data) in deliveries of
10,000, with known duplicate rates: 2 % exact copies of earlier items, 3 % near copies (one to
three characters changed).
"""

from __future__ import annotations

import hashlib
import random
import shutil
import time
from pathlib import Path

import pandas as pd

from benchmarks.harness import Outcome, Result, dask_client, measure, worker_counts, worker_peak_mib

NAME = "clean"
TARGET = "≥ 20,000 items/s; within 2× of the floor"
FULL_SIZE = 1_000_000
SIZE_UNIT = "texts"
DELIVERY_SIZE = 10_000
ROWS_PER_FILE = 50_000  # about 25 MB of Parquet, 100 MB in memory once masked and hashed
assert ROWS_PER_FILE % DELIVERY_SIZE == 0, "a delivery must not straddle two files (partitions)"
EXACT_RATE, NEAR_RATE = 0.02, 0.03
THRESHOLD = 0.8
BASELINE_CAP = 20_000  # the row-wise script does ~250 texts/s; more would take minutes
BASELINE_HASHING = (
    "near: datasketch's own MinHash hashing, whose LSH index misses a different few of the pairs "
    "at the threshold"
)


def prepare(size: int, workdir: Path) -> Path:
    """Parquet files of `size` texts with item_key, delivery_id and text; made once per size."""
    from simulator.text_corpus import iter_text_items

    folder = workdir / f"clean-{size}"
    if (folder / "_complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"benchmark/clean/{size}")
    texts = [item.text for item in iter_text_items("benchmark", "medical", size)]
    for i in range(1, size):
        draw = rng.random()
        if draw < EXACT_RATE:
            texts[i] = texts[rng.randrange(i)]
        elif draw < EXACT_RATE + NEAR_RATE:
            texts[i] = _near_copy(texts[rng.randrange(i)], rng)
    frame = pd.DataFrame(
        {
            "item_key": [f"i-{k:07d}" for k in range(size)],
            "delivery_id": [f"d-{k // DELIVERY_SIZE:04d}" for k in range(size)],
            "text": texts,
        }
    )
    for number, start in enumerate(range(0, size, ROWS_PER_FILE)):
        frame.iloc[start : start + ROWS_PER_FILE].to_parquet(
            folder / f"part-{number:04d}.parquet", index=False
        )
    (folder / "_complete").touch()
    return folder


def _near_copy(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        chars[rng.randrange(len(chars))] = rng.choice("的了是在有和一")
    return "".join(chars)


def _masked_and_hashed(part: pd.DataFrame) -> pd.DataFrame:
    """Per partition: each text's sha256 (of the client's bytes) and its masked form."""
    from assets.cleaning.pii import mask_texts

    texts = part.text.tolist()
    masked = mask_texts(texts)
    return part.assign(
        sha256=[hashlib.sha256(text.encode()).hexdigest() for text in texts],
        text=masked,
        pii_masked=[new != old for new, old in zip(masked, texts, strict=True)],
    )


def _near_in_delivery(delivery: pd.DataFrame) -> pd.Series:
    """Per delivery: which of its not-exact-duplicate texts are near-duplicates of earlier ones."""
    from assets.cleaning.near_duplicates import near_text_duplicates

    delivery = delivery.sort_values("item_key")
    candidates = delivery[~delivery.exact]
    dropped = {
        d.item_key
        for d in near_text_duplicates(
            zip(candidates.item_key.tolist(), candidates.text.tolist(), strict=True), THRESHOLD
        )
    }
    return delivery.item_key.isin(dropped)


def _flag_near(part: pd.DataFrame) -> pd.DataFrame:
    part = part.reset_index(drop=True)
    flags = [_near_in_delivery(group) for _, group in part.groupby("delivery_id", sort=False)]
    near = pd.concat(flags) if flags else pd.Series(dtype=bool)
    return part.assign(near=near.reindex(part.index, fill_value=False))


def project(folder: str, workers: int, out: str) -> Outcome:
    """The project's kernels on Dask: partitions streamed from Parquet (whole deliveries each), keys
    shuffled by hash for exact duplicates, near duplicates searched per delivery where the texts
    lie; the cleaned table is written back as Parquet, never collected into one process.

    Timed from a running cluster, as deployments share a long-lived one (resources/dask_cluster.py),
    like the qa workload, whose workers preloaded the kernels as they started."""
    import dask.dataframe as dd

    with dask_client(workers) as client:
        started = time.perf_counter()
        texts = dd.read_parquet(folder)
        hashed = texts.map_partitions(
            _masked_and_hashed, meta={**texts.dtypes.to_dict(), "sha256": str, "pii_masked": bool}
        )
        # exact duplicates are decided on (sha256, item_key) alone, so only those columns are
        # shuffled by hash; the few duplicates' keys are then broadcast to the texts, which never
        # move: each file holds whole deliveries, as the catalog keeps a file per delivery
        keys = hashed[["sha256", "item_key"]]
        firsts = keys.groupby("sha256").item_key.min(split_out=hashed.npartitions).rename("first_key")
        exact = keys.merge(firsts.to_frame(), left_on="sha256", right_index=True)
        exact = exact[exact.item_key != exact.first_key][["item_key"]].assign(exact=True)
        flagged = hashed.merge(exact, on="item_key", how="left", broadcast=True)
        flagged = flagged.assign(exact=flagged.exact.fillna(False).astype(bool))
        cleaned = flagged.map_partitions(_flag_near, meta={**flagged.dtypes.to_dict(), "near": bool})
        cleaned.to_parquet(out, write_index=False)
        counts = dd.read_parquet(out, columns=["exact", "near", "pii_masked"]).sum().compute()
        rows = len(dd.read_parquet(out, columns=["item_key"]))
        seconds = time.perf_counter() - started
        peak = worker_peak_mib(client)
    return Outcome(rows, _answer(counts.exact, counts.near, counts.pii_masked), peak, seconds)


def floor(folder: str) -> Outcome:
    """The same answer with the tightest kernels in one process: DuckDB hashes and finds the first
    of each content, one compiled regex masks, vectorised numpy MinHash per delivery."""
    import duckdb

    from assets.cleaning.near_duplicates import near_text_duplicates
    from assets.cleaning.pii import mask_texts

    frame = duckdb.sql(
        f"""
        SELECT item_key, delivery_id, text,
               item_key <> min(item_key) OVER (PARTITION BY sha256(text)) AS exact
        FROM read_parquet('{folder}/*.parquet') ORDER BY item_key
        """
    ).df()
    masked = mask_texts(frame.text.tolist())
    pii = sum(new != old for new, old in zip(masked, frame.text, strict=True))
    frame["text"] = masked
    near = 0
    for _, delivery in frame[~frame.exact].groupby("delivery_id", sort=False):
        pairs = zip(delivery.item_key.tolist(), delivery.text.tolist(), strict=True)
        near += len(near_text_duplicates(pairs, THRESHOLD))
    return Outcome(len(frame), _answer(frame.exact.sum(), near, pii))


def baseline(folder: str, limit: int) -> Outcome:
    """What a data engineer writes first: pandas, row-wise apply, datasketch MinHash per text."""
    from datasketch import MinHash, MinHashLSH

    # the index weighted as the project weighs it, so the baseline looks for the same duplicates
    from assets.cleaning.near_duplicates import LSH_WEIGHTS
    from assets.cleaning.pii import mask_pii

    frame = pd.read_parquet(folder).head(limit)
    frame["sha256"] = frame.text.apply(lambda text: hashlib.sha256(text.encode()).hexdigest())
    frame["exact"] = frame.duplicated("sha256")
    masked = frame.text.apply(mask_pii)
    frame["text"] = masked.apply(lambda result: result.text)
    frame["pii_masked"] = masked.apply(lambda result: bool(result.found))
    near = 0
    for _, delivery in frame[~frame.exact].groupby("delivery_id", sort=False):
        lsh = MinHashLSH(threshold=THRESHOLD, num_perm=128, weights=LSH_WEIGHTS)
        shingle_sets = {}
        for row in delivery.itertuples():
            shingles = {row.text[i : i + 3] for i in range(len(row.text) - 2)}
            minhash = MinHash(num_perm=128)
            for shingle in shingles:
                minhash.update(shingle.encode())
            best = max(
                (
                    len(shingles & shingle_sets[other]) / len(shingles | shingle_sets[other])
                    for other in lsh.query(minhash)
                ),
                default=0,
            )
            if best >= THRESHOLD:
                near += 1
            else:
                lsh.insert(row.item_key, minhash)
                shingle_sets[row.item_key] = shingles
    return Outcome(len(frame), _answer(frame.exact.sum(), near, frame.pii_masked.sum()))


def _answer(exact, near, masked) -> str:
    return f"exact {int(exact)}, near {int(near)}, masked {int(masked)}"


def run(
    size: int, workers: int, workdir: Path, variants: set[str], one_worker_too: bool = False
) -> list[Result]:
    """One round each: at full size the project takes about a minute, long enough that the
    machine's drift over a few minutes matters less than it does for qa's seconds."""
    folder = prepare(size, workdir)
    label = f"{size:,} texts"
    results = []
    if "project" in variants:
        for count in worker_counts(workers, one_worker_too):
            out = workdir / f"clean-{size}-out-{count}"
            shutil.rmtree(out, ignore_errors=True)
            arguments = (str(folder), count, str(out))
            results.append(measure(NAME, "project", label, project, *arguments, workers=count))
    if "floor" in variants:
        results.append(measure(NAME, "floor", label, floor, str(folder), workers=1))
    if "baseline" in variants:
        limit = min(size, BASELINE_CAP)
        note = "; ".join(filter(None, [f"first {limit:,} texts" if limit < size else "", BASELINE_HASHING]))
        results.append(measure(NAME, "baseline", label, baseline, str(folder), limit, workers=1, note=note))
    return results


def verdict(results: list[Result]) -> tuple[bool, str]:
    full = [r for r in results if r.items >= FULL_SIZE]
    project_runs = [r for r in full if r.variant == "project"]
    floors = [r for r in full if r.variant == "floor"]
    if not project_runs or not floors:
        return False, "not measured at full size"
    best = max(project_runs, key=lambda r: r.workers or 0)
    ratio = best.seconds / floors[0].seconds
    return (
        best.rate >= 20_000 and ratio <= 2,
        f"{best.rate:,.0f} texts/s on {best.workers} workers; {ratio:.2f}× the floor's time",
    )
