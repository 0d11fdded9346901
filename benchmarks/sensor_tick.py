"""Workload `sensor_tick`: one tick of the `client_uploads` sensor over 100,000 existing upload keys.

The sensor must notice every new delivery (its `manifest.json`) without listing the whole bucket
each tick, and a tick must stay cheap as the bucket grows. Against a throwaway SeaweedFS S3 server,
`size` objects are uploaded as clients do (deliveries of 99 item files and a manifest, under
`uploads/{client}/{delivery}/`), the sensor's cursor is brought up to date, and 100 new objects
land: five new deliveries of 20 objects, two sorting after the bucket's last key (a new delivery of
the last client, a new client `zzz-…`) and three before it (new deliveries of the first and a
middle client, a new client `aaa-…`), which a single high-water key cannot find: the sensor keeps
one per client.

Timed is the tick right after that upload, each variant in a fresh process:
- project: the `client_uploads` sensor evaluated as the daemon does (`build_sensor_context`), run
  requests and all; then further ticks until the sweep has found every new delivery;
- baseline: list the whole prefix with boto3's paginator and diff against the keys known before;
- floor: one `list_objects_v2` with `StartAfter` the last key seen, what S3 offers at best (it
  cannot see the three deliveries sorting before that key).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg

# Imported here: the daemon's code server has them loaded before any tick, and each variant's
# fresh process imports this module before its clock starts.
from benchmarks.harness import Outcome, Result, measure
from resources import CatalogResource, ObjectStoreResource
from sensors.client_uploads import client_uploads
from sensors.upload_listing import FAST_KEYS_PER_TICK, SWEEP_KEYS_PER_TICK, ListingCursor
from tests.services import SeaweedFS

NAME = "sensor_tick"
TARGET = "a tick over 100,000 existing keys with 100 new under 2 s, finding every new delivery"
FULL_SIZE = 100_000
SIZE_UNIT = "keys"

BUCKET = "annobase"
PREFIX = "uploads/"
CLIENTS = (
    "beijing-radiology",
    "datong-schools",
    "dunhuang-academy",
    "hebei-grid",
    "jinneng-mine-safety",
    "longmen-grottoes",
    "shanxi-coal",
    "taiyuan-hospital",
    "yungang-grottoes",
    "zhongyuan-power",
)
FILES_PER_DELIVERY = 100  # 99 item files and the manifest
NEW_FILES_PER_DELIVERY = 20
INTERVAL_SECONDS = 30  # the sensor's minimum_interval_seconds unless ANNOBASE_SENSOR_INTERVAL_SECONDS says
PUT_THREADS = 16


def _delivery_keys(client: str, delivery: str, files: int) -> list[str]:
    prefix = f"{PREFIX}{client}/{delivery}/"
    return [f"{prefix}items/i-{n:06d}.png" for n in range(1, files)] + [prefix + "manifest.json"]


def existing_keys(size: int) -> list[str]:
    """`size` keys: deliveries spread evenly over the clients, numbered per client."""
    deliveries = size // FILES_PER_DELIVERY
    keys = []
    for n in range(deliveries):
        client = CLIENTS[n % len(CLIENTS)]
        keys += _delivery_keys(client, f"d-2026-{n // len(CLIENTS) + 1:04d}", FILES_PER_DELIVERY)
    return keys


def new_deliveries(size: int) -> list[tuple[str, str]]:
    """Five new deliveries: two sorting after the high-water key, three before it."""
    following = f"d-2026-{size // FILES_PER_DELIVERY // len(CLIENTS) + 1:04d}"
    return [
        ("aaa-newcomer", "d-2026-0001"),
        (CLIENTS[0], following),
        (CLIENTS[len(CLIENTS) // 2], following),
        (CLIENTS[-1], following),
        ("zzz-latecomer", "d-2026-0001"),
    ]


class _SeaweedFS(SeaweedFS):
    """The tests' server, remembering its ports: the existing keys go in through the filer."""

    def _ports(self) -> dict[str, int]:
        self.ports = super()._ports()
        return self.ports


def _preload(server: _SeaweedFS, keys: list[str]) -> None:
    """PUT each key through the filer's HTTP API, into the bucket's directory: the same objects S3
    lists, at twice the rate of signed S3 PUTs and a sixth of the client's CPU."""
    connections = threading.local()

    def put(key: str) -> None:
        if not hasattr(connections, "filer"):
            connections.filer = http.client.HTTPConnection("127.0.0.1", server.ports["filer"])
        connections.filer.request("PUT", f"/buckets/{BUCKET}/{key}", body=_body(key))
        response = connections.filer.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"filer PUT {key}: HTTP {response.status}")

    with ThreadPoolExecutor(PUT_THREADS) as pool:
        list(pool.map(put, keys))


def _upload(server: SeaweedFS, keys: list[str]) -> None:
    """PUT each key through S3, as clients upload."""
    client = server.client()
    with ThreadPoolExecutor(PUT_THREADS) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=BUCKET, Key=key, Body=_body(key)), keys))


def _body(key: str) -> bytes:
    return b'{"items": 99}' if key.endswith("manifest.json") else key.encode() * 4


def _tick(store: ObjectStoreResource, cursor: str | None) -> tuple[float, dg.SensorResult]:
    """One evaluation of the sensor as the daemon runs it, and its wall time."""
    with dg.DagsterInstance.ephemeral() as instance:
        resources = {"object_store": store, "catalog": CatalogResource(object_store=store)}
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            started = time.perf_counter()
            result = client_uploads(context)
            return time.perf_counter() - started, result


def catch_up(env: dict, endpoint: str, state: str, last_key: str) -> Outcome:
    """Ticks from no cursor until the fast path has reached the last existing key; saves the cursor."""
    os.environ.update(env)
    store = ObjectStoreResource(bucket=BUCKET, endpoint_url=endpoint)
    cursor, seconds = None, []
    while cursor is None or max(ListingCursor.parse(cursor).high_water.values(), default="") < last_key:
        took, result = _tick(store, cursor)
        seconds.append(took)
        cursor = result.cursor
    Path(state, "cursor.json").write_text(cursor)
    return Outcome(
        len(seconds), f"{len(seconds)} ticks, first {seconds[0]:.2f} s, slowest {max(seconds):.2f} s"
    )


def project(env: dict, endpoint: str, state: str, keys: int) -> Outcome:
    """The tick right after the upload; saves its cursor and the deliveries it requested."""
    os.environ.update(env)
    store = ObjectStoreResource(bucket=BUCKET, endpoint_url=endpoint)
    _, result = _tick(store, Path(state, "cursor.json").read_text())
    found = sorted({request.partition_key for request in result.run_requests})
    Path(state, "cursor.json").write_text(result.cursor)
    Path(state, "found.json").write_text(json.dumps(found))
    return Outcome(keys, f"{len(found)} deliveries requested")


def project_until_found(env: dict, endpoint: str, state: str, wanted: list[str]) -> Outcome:
    """Further ticks until every wanted delivery has been requested; how many, and the slowest."""
    os.environ.update(env)
    store = ObjectStoreResource(bucket=BUCKET, endpoint_url=endpoint)
    cursor = Path(state, "cursor.json").read_text()
    missing = set(wanted) - set(json.loads(Path(state, "found.json").read_text()))
    seconds = []
    while missing:
        took, result = _tick(store, cursor)
        seconds.append(took)
        cursor = result.cursor
        missing -= {request.partition_key for request in result.run_requests}
    return Outcome(len(seconds), f"{max(seconds, default=0):.2f}")


def baseline(server_args: dict, state: str, keys: int) -> Outcome:
    """List the whole prefix and diff it against every key known before: new manifests' deliveries."""
    client = _client(server_args)
    known = set(Path(state, "known_keys.txt").read_text().splitlines())
    new = [
        entry["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
        for entry in page.get("Contents", ())
        if entry["Key"] not in known
    ]
    return Outcome(keys, f"{len(_deliveries(new))} deliveries found")


def floor(server_args: dict, high_water_key: str, keys: int) -> Outcome:
    """One `list_objects_v2` after the high-water key: the least a tick can ask of S3."""
    client = _client(server_args)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX, StartAfter=high_water_key)
    return Outcome(
        keys, f"{len(_deliveries([entry['Key'] for entry in listed.get('Contents', ())]))} deliveries found"
    )


def _client(server_args: dict):
    import boto3

    return boto3.client("s3", **server_args)


def _deliveries(keys: list[str]) -> set[str]:
    return {key[len(PREFIX) :].rsplit("/", 1)[0] for key in keys if key.endswith("/manifest.json")}


def run(size: int, workers: int, workdir: Path, variants: set[str]) -> list[Result]:
    state = workdir / f"sensor_tick-{size}"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    label = f"{size:,} keys + 100 new"
    with _SeaweedFS(bucket=BUCKET) as server:
        env = server.env()
        server_args = {
            "endpoint_url": server.endpoint_url,
            "aws_access_key_id": server.access_key,
            "aws_secret_access_key": server.secret_key,
            "region_name": server.region,
        }
        keys = existing_keys(size)
        started = time.perf_counter()
        _preload(server, keys)
        loaded = time.perf_counter() - started
        keys.sort(key=str.encode)
        (state / "known_keys.txt").write_text("\n".join(keys))
        caught_up = measure(NAME, "project", label, catch_up, env, server.endpoint_url, str(state), keys[-1])
        high_water = max(ListingCursor.parse((state / "cursor.json").read_text()).high_water.values())

        news = new_deliveries(size)
        _upload(server, [key for c, d in news for key in _delivery_keys(c, d, NEW_FILES_PER_DELIVERY)])
        wanted = sorted(f"{client}/{delivery}" for client, delivery in news)
        after = sum(f"{PREFIX}{w}/" > high_water for w in wanted)
        total = size + len(news) * NEW_FILES_PER_DELIVERY

        results = []
        if "project" in variants:
            tick = measure(NAME, "project", label, project, env, server.endpoint_url, str(state), total)
            found = set(json.loads((state / "found.json").read_text())) & set(wanted)
            more = measure(
                NAME, "project", label, project_until_found, env, server.endpoint_url, str(state), wanted
            )
            tick.answer = f"{len(found)} of {len(wanted)} new deliveries"
            ticks = 1 + more.items
            tick.note = (
                f"all {len(wanted)} found after {ticks} ticks (≈ {ticks * INTERVAL_SECONDS} s at the "
                f"{INTERVAL_SECONDS} s interval; later ticks ≤ {more.answer} s): the fast path lists "
                f"≤ {FAST_KEYS_PER_TICK:,} keys a tick after each client's high-water key, the sweep "
                f"{SWEEP_KEYS_PER_TICK:,}; "
                f"catching up from no cursor: {caught_up.answer}; {size:,} keys put in {loaded:.0f} s"
            )
            results.append(tick)
        if "baseline" in variants:
            result = measure(NAME, "baseline", label, baseline, server_args, str(state), total)
            result.note = "lists every key each tick; keeps every key in its state"
            results.append(result)
        if "floor" in variants:
            result = measure(NAME, "floor", label, floor, server_args, high_water, total)
            result.note = f"sees only the {after} deliveries sorting after the high-water key"
            results.append(result)
    return results


def verdict(results: list[Result]) -> tuple[bool, str]:
    full = [r for r in results if r.variant == "project" and r.items >= FULL_SIZE]
    if not full:
        return False, "not measured at full size"
    tick = full[0]
    found, wanted = (int(n) for n in tick.answer.split()[:3:2])
    return (
        tick.seconds < 2 and found == wanted,
        f"the tick after the upload took {tick.seconds:.2f} s and found {tick.answer}; "
        + tick.note.partition(":")[0],
    )
