"""Workload `intake`: many client deliveries arriving at once, taken in by the production path.

Project: deliveries are uploaded to a real SeaweedFS; then the real `dagster-daemon` (with
`deploy/dagster.yaml` on PostgreSQL, sensors ticking every 5 s, one shared Dask LocalCluster)
finds them with the `client_uploads` sensor and runs the intake job (one run per client and tick
over a range of deliveries). Timed from the daemon's start until every delivery has its row in the
catalog; then checked that none is lost (every delivery in the catalog) and none doubled (one
`raw_items` materialization per delivery, each file once in `raw_items`).

Baseline: the script a data engineer writes first: one process, delivery after delivery, read the
manifest, download and hash each file, one Parquet table at the end. It has no quarantine, no
retries, no lineage: the price of those is the difference. Floor: the same reads and hashes, 32
requests at once: what reading and checking these bytes from this S3 server costs at least.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from benchmarks.harness import Outcome, Result, dask_client, measure

NAME = "intake"
TARGET = "1,000 deliveries × 20 items at once: all in the catalog in under 5 minutes, none lost or doubled"
FULL_SIZE = 20_000
SIZE_UNIT = "files"
ITEMS_PER_DELIVERY = 20
CLIENTS = ("jinneng-mine-safety", "yungang-grottoes", "xiehe-clinic", "datong-schools")
TICK_SECONDS = 5
REPO = Path(__file__).resolve().parents[1]
# the project variant stops waiting after this long and reports how far it got
DEADLINE_SECONDS = 6 * 60


def _upload_all(store, deliveries: int) -> None:
    from simulator import make_delivery, upload_delivery

    def upload(number: int) -> None:
        client = CLIENTS[number % len(CLIENTS)]
        upload_delivery(
            store, make_delivery(number, client, f"d-bench-{number:05d}", "text", ITEMS_PER_DELIVERY)
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(upload, range(deliveries)))


def _services():
    sys.path.insert(0, str(REPO / "tests"))
    from services import SeaweedFS, ensure_postgres

    return SeaweedFS, ensure_postgres


def project(deliveries: int, workers: int) -> Outcome:
    import dagster as dg

    from resources import CatalogResource, ObjectStoreResource

    seaweedfs_class, ensure_postgres = _services()
    home = Path(tempfile.mkdtemp(prefix="annobase-bench-intake-"))
    with ExitStack() as stack:
        seaweedfs = stack.enter_context(seaweedfs_class(bucket="annobase"))
        postgres = stack.enter_context(ensure_postgres())
        database = postgres.create_database()
        stack.callback(postgres.drop_database, database["db_name"])
        env = {
            "DAGSTER_HOME": str(home),
            "ANNOBASE_PG_USER": database["username"],
            "ANNOBASE_PG_PASSWORD": database["password"],
            "ANNOBASE_PG_HOST": database["hostname"],
            "ANNOBASE_PG_DB": database["db_name"],
            "ANNOBASE_PG_PORT": str(database["port"]),
            **seaweedfs.env(),
            "ANNOBASE_SENSOR_INTERVAL_SECONDS": str(TICK_SECONDS),
        }
        # before the cluster starts: its workers read the store with these credentials
        os.environ.update(env)
        dask = stack.enter_context(dask_client(workers))
        os.environ["ANNOBASE_DASK_ADDRESS"] = env["ANNOBASE_DASK_ADDRESS"] = dask.scheduler.address
        shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
        object_store = ObjectStoreResource(bucket=seaweedfs.bucket, endpoint_url=seaweedfs.endpoint_url)
        store = object_store.open()
        _upload_all(store, deliveries)
        catalog = CatalogResource(object_store=object_store)

        log = (home / "daemon.log").open("wb")
        started = time.monotonic()
        daemon = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            done = 0
            while time.monotonic() - started < DEADLINE_SECONDS:
                time.sleep(2)
                # a delivery counts once its deliveries row exists: intake writes it last
                done = sum(1 for _ in store.list("catalog/deliveries/"))
                if done >= deliveries:
                    break
            seconds = time.monotonic() - started
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:  # runs still busy on a loaded machine
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(60)
            # the daemon's code server runs in a session of its own and may outlive it; its command
            # line names this instance's home
            subprocess.run(["pkill", "-KILL", "-f", str(home)], check=False)
            log.close()
        with dg.DagsterInstance.get() as instance:
            runs = instance.get_runs(dg.RunsFilter(job_name="intake_deliveries"))
            materialized = [
                record.asset_materialization.partition
                for record in instance.fetch_materializations(
                    dg.AssetKey("raw_items"), limit=10 * deliveries
                ).records
            ]
        with catalog.open().connect(tables=["raw_items"]) as con:
            doubled = "SELECT count(*) - count(DISTINCT upload_key) FROM raw_items"
            doubled_files = con.execute(doubled).fetchone()[0]
    shutil.rmtree(home, ignore_errors=True)
    doubled = len(materialized) - len(set(materialized))
    answer = (
        f"{done}/{deliveries} deliveries in the catalog after {seconds:.0f} s; "
        f"{len(runs)} intake runs, {doubled} deliveries taken in twice; {doubled_files} files doubled"
    )
    return Outcome(done * ITEMS_PER_DELIVERY, answer, seconds=seconds)


def baseline(deliveries: int) -> Outcome:
    """The script a data engineer writes first: one request at a time."""
    return _read_and_hash_all(deliveries, threads=1)


def floor(deliveries: int) -> Outcome:
    """The least it takes to read and check the same bytes: 32 requests at once (the S3 client's
    connection pool), no bookkeeping."""
    return _read_and_hash_all(deliveries, threads=32)


def _read_and_hash_all(deliveries: int, threads: int) -> Outcome:
    """Upload to a fresh SeaweedFS, then time reading every manifest and every file it lists,
    checking each file's sha256, into one Parquet table; `threads` requests at once."""
    import boto3
    import pandas as pd
    from botocore.config import Config

    from resources import ObjectStoreResource

    seaweedfs_class, _ = _services()
    with seaweedfs_class(bucket="annobase") as seaweedfs:
        os.environ.update(seaweedfs.env())
        object_store = ObjectStoreResource(bucket=seaweedfs.bucket, endpoint_url=seaweedfs.endpoint_url)
        _upload_all(object_store.open(), deliveries)
        s3 = boto3.client(
            "s3", endpoint_url=seaweedfs.endpoint_url, config=Config(max_pool_connections=max(10, threads))
        )

        def read(key: str) -> bytes:
            return s3.get_object(Bucket=seaweedfs.bucket, Key=key)["Body"].read()

        def files_of(manifest_key: str) -> list[tuple[str, str]]:
            base = manifest_key.rsplit("/", 1)[0] + "/"
            items = json.loads(read(manifest_key))["items"]
            return [(base + path, sha256) for item in items for path, sha256 in _files(item)]

        def checked(file: tuple[str, str]) -> dict:
            return {"key": file[0], "ok": hashlib.sha256(read(file[0])).hexdigest() == file[1]}

        started = time.monotonic()
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=seaweedfs.bucket, Prefix="uploads/")
        manifests = [
            obj["Key"]
            for page in pages
            for obj in page.get("Contents", [])
            if obj["Key"].endswith("/manifest.json")
        ]
        with ThreadPoolExecutor(threads) as pool:
            files = [file for listed in pool.map(files_of, manifests) for file in listed]
            rows = list(pool.map(checked, files))
        pd.DataFrame(rows).to_parquet(Path(tempfile.mkdtemp()) / "raw_items.parquet")
        seconds = time.monotonic() - started
    verified = sum(row["ok"] for row in rows)
    return Outcome(
        len(rows), f"{len(manifests)}/{deliveries} deliveries, {verified} files verified", seconds=seconds
    )


def _files(item: dict):
    for part in item["files"].values():
        yield part["path"], part["sha256"]


def run(size: int, workers: int, workdir: Path, variants: set[str]) -> list[Result]:
    deliveries = max(1, size // ITEMS_PER_DELIVERY)
    label = f"{deliveries:,} deliveries × {ITEMS_PER_DELIVERY} items"
    results = []
    if "project" in variants:
        results.append(measure(NAME, "project", label, project, deliveries, workers, workers=workers))
    if "floor" in variants:
        results.append(measure(NAME, "floor", label, floor, deliveries, note="32 requests at once"))
    if "baseline" in variants:
        note = "one request at a time; no quarantine, retries or lineage"
        results.append(measure(NAME, "baseline", label, baseline, deliveries, workers=1, note=note))
    return results


def verdict(results: list[Result]) -> tuple[bool, str]:
    full = [
        r for r in results if r.variant == "project" and FULL_SIZE // ITEMS_PER_DELIVERY <= _deliveries(r)
    ]
    if not full:
        return False, "not measured at full size"
    best = full[-1]
    complete = best.items >= FULL_SIZE and " 0 deliveries taken in twice; 0 files doubled" in best.answer
    floors = [r for r in results if r.variant == "floor" and r.size == best.size]
    beside = (
        f"; reading and checking the same files alone (floor): {floors[0].seconds:.0f} s" if floors else ""
    )
    return complete and best.seconds < 300, best.answer + beside


def _deliveries(result: Result) -> int:
    return int(result.size.split(" ")[0].replace(",", ""))
