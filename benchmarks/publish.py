"""Workload `publish`: cutting one release of 100,000 items (~1 GB of files) into the local store.

Publishing is I/O: every upload is read, hashed and written into the industry's pool
(`datasets/{industry}/objects/`: a first release finds nothing there), then the Parquet, Croissant
card, quality report, manifest, signature and LATEST are written. The floor is what the shell does
with the same bytes on the same disk: `sha256sum` over the files (on `workers` processes) and
`cp -r`. The issue wants publishing within 1.5× of it.

The input is one industry's release as `gather_release` hands it to `write_release`: a row per
item, the uploads to copy in (with the sha256 intake recorded), the cleaned texts, the batches'
quality. Items are text (~2 KB), image (~14 KB) and speech (~12 KB), 10 KB on average; the bytes
are random (hashing and copying do not care what they say), drawn deterministically with numpy.
The answer is the number of files, their bytes and a digest of their sorted sha256 digests, so
agreeing answers mean every variant hashed the same bytes; once per run the project's manifest is
also compared file by file with `sha256sum`'s output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from annobase.object_store import LocalObjectStore

# Imported here, not in `project`: in production the code location has them loaded long before a
# publish, and the fresh process of each variant imports this module before its clock starts.
from annobase.settings import load_settings
from assets.release.industry_datasets import release_documents
from assets.release.object_pool import is_pool_path
from assets.release.publishing import (
    DATA_FILE,
    FILES_PER_TASK,
    content_fingerprint,
    existing_versions,
    latest_manifest,
    write_release,
)
from assets.release.signing import generate_key_pem, load_signing_key
from benchmarks.harness import Outcome, Result, dask_client, fastest_round, measure, worker_peak_mib

NAME = "publish"
TARGET = "one release of 100,000 items (~1 GB of files) within 1.5× of `sha256sum` + `cp`"
FULL_SIZE = 100_000
SIZE_UNIT = "items"

INDUSTRY = "energy"
BUCKET = "annobase"
CLIENTS = ("datong-coal", "jinneng-mine-safety", "shanxi-grid", "taiyuan-power")
DELIVERY_SIZE = 1_000
BATCH_SIZE = 50
# modality -> (part, extension, mean file bytes, share of items); the mean over items is ~10 KB
MODALITIES = {
    "text": ("text", ".txt", 2_000, 0.30),
    "image": ("image", ".png", 14_000, 0.45),
    "speech": ("audio", ".wav", 12_000, 0.25),
}
LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz     ", dtype=np.uint8)
RELEASED_AT = datetime(2026, 12, 1, tzinfo=UTC)


def prepare(size: int, workdir: Path) -> Path:
    """The store with `size` items' uploads, and the release's tables as Parquet; made once per size."""
    folder = workdir / f"publish-{size}"
    if (folder / "_complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(size)
    shares = [spec[3] for spec in MODALITIES.values()]
    modalities = rng.choice(list(MODALITIES), size=size, p=shares)
    rows, uploads = [], []
    uploads_root = folder / "store" / BUCKET
    for n, modality in enumerate(modalities):
        part, extension, mean, _ = MODALITIES[modality]
        client = CLIENTS[n // DELIVERY_SIZE % len(CLIENTS)]
        delivery, item_id = f"d-{n // DELIVERY_SIZE:04d}", f"i-{n:07d}"
        length = int(rng.integers(mean // 2, mean * 3 // 2))
        data = (
            LETTERS[rng.integers(0, len(LETTERS), length)].tobytes() if part == "text" else rng.bytes(length)
        )
        upload_key = f"uploads/{client}/{delivery}/{item_id}{extension}"
        path = uploads_root / upload_key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        item_key = f"{client}/{delivery}/{item_id}"
        if part != "text":
            uploads.append((item_key, part, upload_key, hashlib.sha256(data).hexdigest(), len(data)))
        rows.append(
            item_row(item_key, client, delivery, item_id, modality, data.decode() if part == "text" else None)
        )
    items = pd.DataFrame(rows)
    items["batch_id"] = (
        "b-"
        + items.delivery_id
        + "-"
        + items.modality
        + "-"
        + (items.groupby(["delivery_id", "modality"]).cumcount() // BATCH_SIZE).astype(str)
    )
    items.to_parquet(folder / "items.parquet", index=False)
    pd.DataFrame(uploads, columns=["item_key", "part", "upload_key", "sha256", "bytes"]).to_parquet(
        folder / "uploads.parquet", index=False
    )
    batch_quality(items).to_parquet(folder / "batches.parquet", index=False)
    (folder / "signing_key.pem").write_bytes(generate_key_pem())
    (folder / "_complete").touch()
    return folder


def item_row(
    item_key: str, client: str, delivery: str, item_id: str, modality: str, text: str | None
) -> dict:
    """One released item as `gather_release` builds it: ids, consensus answer, agreement, upload time."""
    return {
        "item_key": item_key,
        "client_id": client,
        "delivery_id": delivery,
        "item_id": item_id,
        "modality": modality,
        "text": text,
        "label": "hazard" if modality == "text" else None,
        "transcript": "巷道顶板有裂缝" if modality == "speech" else None,
        "boxes_json": json.dumps([{"x": 10, "y": 10, "width": 20, "height": 20, "label": "crack"}])
        if modality == "image"
        else None,
        "label_image": None,
        "label_text": None,
        "label_audio": None,
        "agreement": 1.0,
        "annotations": 3,
        "gate_passed": True,
        "uploaded_at": RELEASED_AT - timedelta(days=3),
    }


def batch_quality(items: pd.DataFrame) -> pd.DataFrame:
    """The batches' quality as `industry_batch_quality` returns it: each measured on its own task."""
    batches = items.groupby("batch_id", as_index=False).agg(modality=("modality", "first"))
    measure_of = {"text": "text_accuracy", "speech": "speech_accuracy", "image": "image_box_f1"}
    for modality, column in measure_of.items():
        batches[column] = np.where(batches.modality == modality, 0.97, np.nan)
    return batches.assign(
        cross_modal_consistency=np.nan,
        krippendorff_alpha=0.8,
        gold_annotations=15,
        annotations=150,
        qa_run_id="qa-run-1",
    )


def project(folder: str, workers: int) -> Outcome:
    """What `industry_datasets` does once `gather_release` has returned: fingerprint, next version,
    then `write_release` with the asset's documents (Croissant card and quality report), copying on
    `workers` Dask workers. Timed from a running cluster, like clean and qa."""
    with dask_client(workers) as client:
        started = time.perf_counter()
        outcome = _release(folder, client)
        outcome.seconds = time.perf_counter() - started
        outcome.worker_peak_mib = worker_peak_mib(client)
    return outcome


def _release(folder: str, client) -> Outcome:
    store = LocalObjectStore(f"{folder}/store", BUCKET)
    items = pd.read_parquet(f"{folder}/items.parquet")
    uploads = pd.read_parquet(f"{folder}/uploads.parquet")
    batches = pd.read_parquet(f"{folder}/batches.parquet")
    files = release(store, items, uploads, batches, load_signing_key(f"{folder}/signing_key.pem"), client)
    media = {path: entry for path, entry in files.written.items() if is_pool_path(path)}
    return Outcome(len(items), _answer([sha for sha, _ in media.values()], sum(n for _, n in media.values())))


def release(store, items: pd.DataFrame, uploads: pd.DataFrame, batches: pd.DataFrame, key, client):
    """What `industry_datasets` does once `gather_release` has returned: fingerprint, the manifest
    LATEST names, next version, then `write_release` with the asset's documents."""
    texts = {
        key: text
        for key, text in zip(items.item_key.tolist(), items.text.tolist(), strict=True)
        if isinstance(text, str)
    }
    file_hashes = dict(zip(uploads.upload_key, uploads.sha256, strict=True))
    file_hashes.update({key: hashlib.sha256(text.encode()).hexdigest() for key, text in texts.items()})
    fingerprint = content_fingerprint(items, file_hashes)
    previous = latest_manifest(store, INDUSTRY)
    version = existing_versions(store, INDUSTRY).next_version()
    batches = batches[batches.batch_id.isin(items.batch_id)]
    documents = release_documents(INDUSTRY, version, batches, load_settings(), RELEASED_AT)

    lineage = {
        "deliveries": [
            {"client_id": c, "delivery_id": d}
            for c, d in items[["client_id", "delivery_id"]].drop_duplicates().values
        ],
        "batches": batches[["batch_id", "qa_run_id"]].to_dict("records"),
        "quality_runs": ["qa-run-1"],
        "dagster_run_id": "benchmark",
        "content_fingerprint": fingerprint,
        "previous_version": previous["version"] if previous else None,
    }
    return write_release(
        store,
        INDUSTRY,
        version,
        items,
        uploads,
        texts,
        documents,
        lineage,
        key,
        RELEASED_AT,
        code_version="benchmark",
        dask_client=client,
        previous=previous,
    )


def baseline(folder: str, out: str) -> Outcome:
    """The script a data engineer writes first: each file read, hashed and copied, one by one."""
    source = Path(folder) / "store" / BUCKET / "uploads"
    entries = []
    for directory, _, names in sorted(os.walk(source)):
        for name in sorted(names):
            path = Path(directory) / name
            data = path.read_bytes()
            target = Path(out) / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            entries.append(
                {
                    "path": str(path.relative_to(source)),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                }
            )
    (Path(out) / "MANIFEST.json").write_text(json.dumps({"files": entries}, indent=1))
    return Outcome(len(entries), _answer([e["sha256"] for e in entries], sum(e["bytes"] for e in entries)))


def floor(folder: str, workers: int, out: str) -> Outcome:
    """`sha256sum` over every upload on `workers` processes, then `cp -r` of them, as the shell does it."""
    source = Path(folder) / "store" / BUCKET / "uploads"
    hashes = Path(out).with_suffix(".sha256")
    subprocess.run(
        f"find . -type f -print0 | xargs -0 -P {workers} -n 2000 sha256sum > {hashes}",
        shell=True,
        check=True,
        cwd=source,
    )
    subprocess.run(["cp", "-r", source, out], check=True)
    listed = dict(_sha256sum_lines(hashes))
    total = sum(os.stat(source / path).st_size for path in listed)
    return Outcome(len(listed), _answer(list(listed.values()), total))


def _sha256sum_lines(path: Path):
    """(relative path, sha256) from `sha256sum` output."""
    for line in path.read_text().splitlines():
        digest, name = line.split("  ", 1)
        yield name.removeprefix("./"), digest


def _answer(digests: list[str], total_bytes: int) -> str:
    combined = hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()
    return f"{len(digests):,} files, {total_bytes:,} bytes, digest {combined[:12]}"


def manifest_matches_sha256sum(folder: Path, hashes: Path) -> str:
    """Compare the sha256 the release manifest gives each item's file (the path its Parquet row names)
    with `sha256sum`'s of the item's upload."""
    release = folder / "store" / BUCKET / "datasets" / INDUSTRY
    version = (release / "LATEST").read_text().strip()
    manifest = json.loads((release / version / "MANIFEST.json").read_bytes())
    listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    rows = pd.read_parquet(release / version / DATA_FILE)
    extension = {modality: spec[1] for modality, spec in MODALITIES.items()}
    column = {modality: f"{spec[0]}_path" for modality, spec in MODALITIES.items()}
    uploads = dict(_sha256sum_lines(hashes))
    differing = 0
    for row in rows.itertuples(index=False):
        upload = f"{row.item_key}{extension[row.modality]}"
        differing += listed.get(getattr(row, column[row.modality])) != uploads.get(upload)
    if differing:
        return f"{differing:,} of {len(rows):,} manifest hashes differ from sha256sum's"
    return f"manifest hashes = sha256sum's for all {len(rows):,} files"


def _set_aside(path: Path, workdir: Path) -> None:
    """Move an earlier output out of the way. Deleting 100,000 files leaves this disk (ext4 with
    `discard`) slow at creating files for a while, which would be charged to the next variant, so
    outputs are deleted only by `cleanup`, after every variant of every size is measured."""
    if path.exists():
        trash = workdir / "publish-trash"
        trash.mkdir(exist_ok=True)
        path.rename(trash / f"{path.name}-{time.time_ns()}")


def cleanup(workdir: Path) -> None:
    shutil.rmtree(workdir / "publish-trash", ignore_errors=True)


def run(size: int, workers: int, workdir: Path, variants: set[str], rounds: int) -> list[Result]:
    """The project and the floor measured in turn, `rounds` times each, and each one's fastest round
    kept: how fast this disk creates files varies several-fold from minute to minute (FINDINGS.md),
    a slow spell only adds time, and alternating puts both variants through the same spells."""
    folder = prepare(size, workdir)
    label = f"{size:,} items"
    floor_out = workdir / f"publish-{size}-floor"
    by_variant: dict[str, list[Result]] = {"project": [], "floor": []}
    for _ in range(rounds):
        if "project" in variants:
            _set_aside(folder / "store" / BUCKET / "datasets", workdir)
            note = f"copies spread over the Dask workers, {FILES_PER_TASK:,} files per task"
            by_variant["project"].append(
                measure(NAME, "project", label, project, str(folder), workers, workers=workers, note=note)
            )
        if "floor" in variants:
            _set_aside(floor_out, workdir)
            by_variant["floor"].append(
                measure(NAME, "floor", label, floor, str(folder), workers, str(floor_out), workers=workers)
            )
    results = [fastest_round(measured) for measured in by_variant.values() if measured]
    if by_variant["project"] and by_variant["floor"]:
        results[0].note += "; " + manifest_matches_sha256sum(folder, floor_out.with_suffix(".sha256"))
    if "baseline" in variants:
        out = workdir / f"publish-{size}-baseline"
        _set_aside(out, workdir)
        results.append(measure(NAME, "baseline", label, baseline, str(folder), str(out), workers=1))
        _set_aside(out, workdir)
    _set_aside(floor_out, workdir)
    floor_out.with_suffix(".sha256").unlink(missing_ok=True)
    return results


def verdict(results: list[Result]) -> tuple[bool, str]:
    full = [r for r in results if r.items >= FULL_SIZE]
    projects = [r for r in full if r.variant == "project"]
    floors = [r for r in full if r.variant == "floor"]
    if not projects or not floors:
        return False, "not measured at full size"
    best = min(projects, key=lambda r: r.seconds)
    ratio = best.seconds / floors[0].seconds
    return (
        ratio <= 1.5,
        f"{best.seconds:.1f} s for {best.items:,} items; {ratio:.2f}× `sha256sum` + `cp` "
        f"({floors[0].seconds:.1f} s on {floors[0].workers} cores)",
    )
