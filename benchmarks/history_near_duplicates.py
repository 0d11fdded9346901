"""`python -m benchmarks.history_near_duplicates`: a delivery's near-duplicate texts searched across the
client's whole history, against today's search within the delivery alone.

A client with `--history` texts already cleaned (kept texts and their LSH index in the catalog, in
deliveries of 10,000, on the local store) sends a delivery of 10,000 texts, 1 % of them lightly edited
copies of random earlier texts. Timed per delivery, as `clean_items` does it:
- within: today's search inside the delivery (`near_text_duplicates`);
- across history: the same, plus the delivery's LSH buckets, loading the client's index (once per run
  and client), the join in DuckDB and the confirmation on the candidates' shingle sets.
Target (issue 17): across history within 2× of within, at a history of 1,000,000 texts, with every
planted copy found. Prints a table; `--out` appends it to a Markdown file.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from annobase.keys import DeliveryRef
from annobase.object_store import LocalObjectStore
from assets.cleaning.near_duplicates import near_text_duplicates
from assets.cleaning.text_history import history_duplicates, index_rows, text_index
from resources.catalog import Catalog

CLIENT = "bench-clinic"
DELIVERY_SIZE = 10_000
COPY_RATE = 0.01
THRESHOLD = 0.8
KEPT_TEXT = {
    "client_id": CLIENT, "industry": "medical", "modality": "text", "task": "classification",
    "license": "private", "pii_masked": 0, "status": "kept", "dagster_run_id": "benchmark",
}  # fmt: skip


def _texts(seed: str, n: int) -> list[str]:
    from simulator.text_corpus import iter_text_items

    return [item.text for item in iter_text_items(seed, "medical", n)]


def _edited(text: str, rng: random.Random) -> str:
    commas = [at for at, char in enumerate(text) if char == "，"] or [len(text) - 1]
    at = rng.choice(commas)
    return text[:at] + "。" + text[at + 1 :]


def build_history(catalog: Catalog, history: int) -> list[str]:
    """The client's cleaned history: `clean_items` and `text_lsh` per delivery of 10,000 texts."""
    now = datetime.now(UTC)
    texts = _texts("history", history)
    for number, start in enumerate(range(0, history, DELIVERY_SIZE)):
        ref = DeliveryRef(CLIENT, f"d-{number:06d}")
        chunk = texts[start : start + DELIVERY_SIZE]
        keys = [f"{ref.partition_key}/i-{k:06d}" for k in range(len(chunk))]
        rows = [
            {
                **KEPT_TEXT, "item_key": key, "delivery_id": ref.delivery_id, "item_id": key[-8:],
                "text": text, "cleaned_at": now,
            }
            for key, text in zip(keys, chunk, strict=True)
        ]  # fmt: skip
        catalog.write_partition("clean_items", ref.partition_key, rows)
        catalog.write_partition(
            "text_lsh", ref.partition_key, index_rows(ref, keys, text_index(chunk, THRESHOLD))
        )
    return texts


def new_delivery(history_texts: list[str]) -> tuple[pd.DataFrame, set[str]]:
    rng = random.Random("benchmark/history/new")
    texts = _texts("new-delivery", DELIVERY_SIZE)
    planted = set()
    for index in rng.sample(range(DELIVERY_SIZE), int(DELIVERY_SIZE * COPY_RATE)):
        texts[index] = _edited(history_texts[rng.randrange(len(history_texts))], rng)
        planted.add(f"{CLIENT}/d-999999/i-{index:06d}")
    keys = [f"{CLIENT}/d-999999/i-{k:06d}" for k in range(DELIVERY_SIZE)]
    return pd.DataFrame({"item_key": keys, "text": texts}), planted


def measure(catalog: Catalog, delivery: pd.DataFrame) -> dict:
    ref = DeliveryRef(CLIENT, "d-999999")
    pairs = list(zip(delivery.item_key, delivery.text, strict=True))
    started = time.perf_counter()
    within = near_text_duplicates(pairs, THRESHOLD)
    within_seconds = time.perf_counter() - started

    started = time.perf_counter()
    near_text_duplicates(pairs, THRESHOLD)
    dropped = {duplicate.item_key for duplicate in within}
    rest = delivery[~delivery.item_key.isin(dropped)]
    index = text_index(rest.text.tolist(), THRESHOLD)
    loaded_at = time.perf_counter()
    with catalog.client_snapshot(CLIENT, ["client_text_lsh_candidates"]) as earlier:
        load_seconds = time.perf_counter() - loaded_at
        found = history_duplicates(ref, catalog, earlier, rest, index, THRESHOLD)
    return {
        "within": within_seconds,
        "across": time.perf_counter() - started,
        "load": load_seconds,
        "found": {duplicate.item_key for duplicate in found},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.history_near_duplicates", description=__doc__)
    parser.add_argument("--history", type=int, default=1_000_000, help="texts already in the history")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="annobase-history-") as root:
        catalog = Catalog(LocalObjectStore(root, "annobase"))
        started = time.perf_counter()
        history_texts = build_history(catalog, args.history)
        build_seconds = time.perf_counter() - started
        delivery, planted = new_delivery(history_texts)
        runs = [measure(catalog, delivery) for _ in range(args.rounds)]
    best = min(runs, key=lambda run: run["across"])
    within = min(run["within"] for run in runs)
    recall = len(best["found"] & planted) / len(planted)
    table = "\n".join(
        [
            f"History near-duplicates, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: a delivery of "
            f"{DELIVERY_SIZE:,} texts against {args.history:,} ({len(planted)} edited copies planted), "
            f"best of {args.rounds}",
            "",
            "| search | seconds per delivery | of which loading the index | copies found | × within |",
            "|---|---|---|---|---|",
            f"| within the delivery (today) | {within:.2f} | – | 0 of {len(planted)} | 1.00 |",
            f"| across the client's history | {best['across']:.2f} | {best['load']:.2f} | "
            f"{len(best['found'] & planted)} of {len(planted)} ({recall:.1%}), "
            f"{len(best['found'] - planted)} others | {best['across'] / within:.2f} |",
            "",
            f"Building the history (clean_items and text_lsh of {args.history // DELIVERY_SIZE} deliveries, "
            f"local store): {build_seconds:.0f} s. Target: across ≤ 2× within, every copy found.",
        ]
    )
    print(table)
    if args.out:
        with args.out.open("a") as out:
            out.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
