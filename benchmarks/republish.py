"""Workload `republish`: the next version of a 100,000-item release, adding 1,000 items and changing
100 labels, into the local store.

A version names its media and texts in the industry's content-addressed pool, so the second version
reads, hashes and pools only the 1,000 new items' files; it still writes every document whole (the
Parquet, Croissant card and manifest list every item and file). The floor is that much done the
shortest way: `sha256sum` and `cp` of the new items' uploads on `workers` processes, then the
Parquet of every row written with pyarrow and a manifest and a card listing every file dumped as
JSON. The issue wants the second version within 3× of it, and the store to grow by the new files
only: the project's answer is the objects the pool gained (their content addresses and bytes), the
floor's the new uploads' `sha256sum`, so agreeing answers mean exactly those files were added.

Beside it: the first version (100,000 items into an empty pool) and the second version's content
released the way every version was before the pool, each file copied again (into an empty pool,
which reads, hashes and writes every file), with its floor (`sha256sum` + `cp -r` of every upload).
The input is `publish`'s (benchmarks/publish.py) at 101,000 items: the first 100,000 are version 1.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pandas as pd

from annobase.object_store import LocalObjectStore
from assets.release.object_pool import pool_sha256
from assets.release.publishing import dataset_prefix
from assets.release.signing import load_signing_key
from benchmarks import publish
from benchmarks.harness import Outcome, Result, dask_client, fastest_round, measure, worker_peak_mib

NAME = "republish"
TARGET = (
    "the version after a 100,000-item release, adding 1,000 items and changing 100 labels, within 3× of "
    "copying and hashing the 1,000 new items' files plus writing the documents; the store grows by those "
    "files only"
)
FULL_SIZE = 100_000
SIZE_UNIT = "items"
ADDED_SHARE = 100  # one item added per 100 released
CHANGED_SHARE = 1_000  # one label changed per 1,000 released
DATASET = dataset_prefix(publish.INDUSTRY)


def prepare(size: int, workdir: Path) -> Path:
    return publish.prepare(size + size // ADDED_SHARE, workdir)


def version(folder: str, size: int, number: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, uploads) of version 1, the first `size` items, or of version 2, every item, with one
    answer in CHANGED_SHARE of version 1's changed: a text's label, a transcript, an image's boxes."""
    items = pd.read_parquet(f"{folder}/items.parquet")
    uploads = pd.read_parquet(f"{folder}/uploads.parquet")
    if number == 1:
        first = items.iloc[:size]
        return first, uploads[uploads.item_key.isin(first.item_key)]
    changed = items.index[:size:CHANGED_SHARE]
    for modality, column, answer in (
        ("text", "label", "normal"),
        ("speech", "transcript", "巷道顶板无裂缝"),
        ("image", "boxes_json", json.dumps([{"x": 5, "y": 5, "width": 9, "height": 9, "label": "normal"}])),
    ):
        rows = changed[items.loc[changed, "modality"] == modality]
        items.loc[rows, column] = answer
    return items, uploads


def _store(folder: str) -> LocalObjectStore:
    return LocalObjectStore(f"{folder}/store", publish.BUCKET)


def _pool(store: LocalObjectStore) -> dict[str, int]:
    return {obj.key: obj.size for obj in store.list(DATASET + "objects/")}


def project(folder: str, workers: int, size: int, number: int) -> Outcome:
    """Version 1 or 2 as `industry_datasets` cuts it, timed from a running cluster; the answer is the
    objects the pool gained (listed before and after, outside the clock)."""
    store = _store(folder)
    before = _pool(store)
    with dask_client(workers) as client:
        started = time.perf_counter()
        items, uploads = version(folder, size, number)
        batches = pd.read_parquet(f"{folder}/batches.parquet")
        files = publish.release(
            store, items, uploads, batches, load_signing_key(f"{folder}/signing_key.pem"), client
        )
        seconds = time.perf_counter() - started
        peak = worker_peak_mib(client)
    added = {key: size for key, size in _pool(store).items() if key not in before}
    if files.pooled != len(added):
        raise AssertionError(f"{files.pooled} objects pooled by the release, {len(added)} listed")
    content = [pool_sha256("../" + key[len(DATASET) :]) for key in added]
    return Outcome(len(items), publish._answer(content, sum(added.values())), peak, seconds)


def floor(folder: str, workers: int, size: int, out: str) -> Outcome:
    """`sha256sum` and `cp` of the new items' uploads on `workers` processes, then the documents: the
    Parquet of every row (pyarrow), a manifest and a card listing every file with its sha256 (JSON)."""
    items, uploads = version(folder, size, 2)
    source = Path(folder) / "store" / publish.BUCKET
    extension = {modality: spec[1] for modality, spec in publish.MODALITIES.items()}
    new = [
        f"uploads/{key}{extension[m]}"
        for key, m in zip(items.item_key[size:], items.modality[size:], strict=True)
    ]
    listing = Path(out).with_suffix(".list")
    listing.write_bytes(b"\0".join(name.encode() for name in new))
    hashes = Path(out).with_suffix(".sha256")
    Path(out).mkdir(parents=True)
    subprocess.run(
        f"xargs -0 -P {workers} -n 500 sha256sum < {listing} > {hashes}"
        f" && xargs -0 -P {workers} -n 500 cp --parents -t {out} < {listing}",
        shell=True,
        check=True,
        cwd=source,
    )
    new_hashes = dict(publish._sha256sum_lines(hashes))

    texts = {
        key: text.encode()
        for key, text in zip(items.item_key, items.text, strict=True)
        if isinstance(text, str)
    }
    files = [
        {"path": key, "sha256": sha256, "bytes": size}
        for key, sha256, size in zip(uploads.upload_key, uploads.sha256, uploads.bytes, strict=True)
    ] + [
        {"path": key, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for key, data in texts.items()
    ]
    items.to_parquet(f"{out}/items.parquet", index=False)
    Path(out, "MANIFEST.json").write_text(json.dumps({"files": files}, separators=(",", ":")))
    card = [{"@type": "cr:FileObject", "contentUrl": f["path"], "sha256": f["sha256"]} for f in files]
    Path(out, "croissant.json").write_text(json.dumps({"distribution": card}, separators=(",", ":")))
    total = sum((source / name).stat().st_size for name in new)
    return Outcome(len(items), publish._answer(list(new_hashes.values()), total))


def full_copy(folder: str, workers: int, size: int) -> Outcome:
    """Version 2's content as a version that copies every file: released into an empty pool."""
    return project(folder, workers, size, 2)


def run(size: int, workers: int, workdir: Path, variants: set[str], rounds: int) -> list[Result]:
    """Each round: version 1 into an empty pool, version 2 on top of it, the floor of version 2; then
    version 2 alone into an empty pool (every file copied) and its floor. Each variant's fastest round
    kept, as in `publish`: this disk's slow spells only add time."""
    folder = prepare(size, workdir)
    datasets = folder / "store" / publish.BUCKET / "datasets"
    floor_out = workdir / f"republish-{size}-floor"
    labels = {
        "v1": f"{size:,} items (version 1)",
        "v2": f"+{size // ADDED_SHARE:,} items, {len(range(0, size, CHANGED_SHARE)):,} answers changed "
        "(version 2)",
        "full": f"{size + size // ADDED_SHARE:,} items, every file copied",
    }
    measured: dict[tuple[str, str], list[Result]] = {}

    def keep(label: str, variant: str, result: Result) -> None:
        measured.setdefault((label, variant), []).append(result)

    for _ in range(rounds):
        if "project" in variants:
            publish._set_aside(datasets, workdir)
            keep(
                "v1",
                "project",
                measure(
                    NAME, "project", labels["v1"], project, str(folder), workers, size, 1, workers=workers
                ),
            )
            keep(
                "v2",
                "project",
                measure(
                    NAME, "project", labels["v2"], project, str(folder), workers, size, 2, workers=workers
                ),
            )
        if "floor" in variants:
            publish._set_aside(floor_out, workdir)
            keep(
                "v2",
                "floor",
                measure(
                    NAME,
                    "floor",
                    labels["v2"],
                    floor,
                    str(folder),
                    workers,
                    size,
                    str(floor_out),
                    workers=workers,
                ),
            )
        if "project" in variants:
            publish._set_aside(datasets, workdir)
            keep(
                "full",
                "project",
                measure(
                    NAME, "project", labels["full"], full_copy, str(folder), workers, size, workers=workers
                ),
            )
        if "floor" in variants:
            publish._set_aside(floor_out, workdir)
            keep(
                "full",
                "floor",
                measure(
                    NAME,
                    "floor",
                    labels["full"],
                    publish.floor,
                    str(folder),
                    workers,
                    str(floor_out),
                    workers=workers,
                ),
            )
    publish._set_aside(floor_out, workdir)
    for suffix in (".sha256", ".list"):
        floor_out.with_suffix(suffix).unlink(missing_ok=True)
    return [fastest_round(results) for results in measured.values()]


def cleanup(workdir: Path) -> None:
    publish.cleanup(workdir)


def verdict(results: list[Result]) -> tuple[bool, str]:
    def result(label_end: str, variant: str) -> Result | None:
        return next(
            (
                r
                for r in results
                if r.size.endswith(label_end) and r.variant == variant and r.items >= FULL_SIZE
            ),
            None,
        )

    second, its_floor = result("(version 2)", "project"), result("(version 2)", "floor")
    first, copied = result("(version 1)", "project"), result("every file copied", "project")
    if second is None or its_floor is None:
        return False, "not measured at full size"
    ratio = second.seconds / its_floor.seconds
    grew = second.answer == its_floor.answer
    figure = (
        f"version 2 {second.seconds:.1f} s, {ratio:.2f}× the floor's {its_floor.seconds:.1f} s; the pool "
        f"grew by {second.answer.split(' files')[0]} files, "
        f"{'exactly the new items' if grew else 'NOT only the new items: ' + second.answer}"
    )
    if first and copied:
        figure += f"; version 1 {first.seconds:.1f} s, version 2 copying every file {copied.seconds:.1f} s"
    return ratio <= 3 and grew, figure
