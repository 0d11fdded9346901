"""Production path end to end: the real `dagster-daemon` with `deploy/dagster.yaml` on PostgreSQL runs the
`client_uploads` sensor against SeaweedFS, queues and launches intake runs in their own processes, on a
shared Dask cluster. Proves exactly-once per (manifest, ETag) through Dagster's own run-key handling."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from resources import CatalogResource
from simulator import all_bad_deliveries, make_delivery, upload_bad_delivery, upload_delivery

REPO = Path(__file__).resolve().parents[1]
TICK_SECONDS = 3


@pytest.fixture
def daemon_env(postgres, seaweedfs, s3_store, dask_cluster, tmp_path, monkeypatch):
    """The environment an operator would give the daemon; the test process opens the same instance."""
    from assets.release.signing import generate_key_pem

    database = postgres.create_database()
    signing_key = tmp_path / "release-key.pem"
    signing_key.write_bytes(generate_key_pem())
    env = {
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "ANNOBASE_PG_USER": database["username"],
        "ANNOBASE_PG_PASSWORD": database["password"],
        "ANNOBASE_PG_HOST": database["hostname"],
        "ANNOBASE_PG_DB": database["db_name"],
        "ANNOBASE_PG_PORT": str(database["port"]),
        **seaweedfs.env(),
        "ANNOBASE_BUCKET": s3_store.bucket,
        "ANNOBASE_DASK_ADDRESS": dask_cluster.scheduler_address,
        "ANNOBASE_SENSOR_INTERVAL_SECONDS": str(TICK_SECONDS),
        "ANNOBASE_SIGNING_KEY": str(signing_key),
    }
    Path(env["DAGSTER_HOME"]).mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    postgres.drop_database(database["db_name"])


@pytest.fixture
def daemon(daemon_env, tmp_path):
    log = (tmp_path / "daemon.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
        cwd=REPO,
        env={**os.environ, **daemon_env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield tmp_path / "daemon.log"
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


def wait_for_runs(instance, count: int, log: Path, timeout: float = 300) -> list:
    """Until `count` intake runs have finished; fails with the daemon's log if they do not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(dg.RunsFilter(job_name="intake_deliveries"))
        if len(runs) >= count and all(run.is_finished for run in runs):
            return runs
        time.sleep(1)
    raise AssertionError(f"{count} finished runs expected; daemon log:\n{log.read_text()[-4000:]}")


def materialized_partitions(instance) -> list[str]:
    """Every delivery `raw_items` was materialised for, once per materialisation."""
    records = instance.fetch_materializations(dg.AssetKey("raw_items"), limit=1000).records
    return sorted(record.asset_materialization.partition for record in records)


def test_the_daemon_takes_in_each_manifest_version_exactly_once(request, daemon_env, s3_store):
    store = s3_store.open()
    good = [make_delivery(n, "jinneng-mine-safety", f"d-e2e-{n:03d}", "text", 5) for n in range(1, 5)]
    bad = next(b for b in all_bad_deliveries(seed=3, n_items=3) if b.expected_reason == "sha256_mismatch")
    for delivery in good:
        upload_delivery(store, delivery)
    upload_bad_delivery(store, bad)
    partitions = sorted(
        [f"jinneng-mine-safety/d-e2e-{n:03d}" for n in range(1, 5)] + [f"{bad.client_id}/{bad.delivery_id}"]
    )
    daemon = request.getfixturevalue("daemon")  # started once every delivery is up: one tick sees them all

    with dg.DagsterInstance.get() as instance:
        wait_for(lambda: materialized_partitions(instance) == partitions, "every delivery taken in", daemon)
        runs = wait_for_runs(instance, 1, daemon)
        assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
        # a tick's new deliveries of a client share a run
        assert len(runs) == len({partition.split("/")[0] for partition in partitions})
        catalog = CatalogResource(object_store=s3_store).open()
        statuses = catalog.query("delivery_summary").set_index("delivery_id").status.to_dict()
        assert statuses == {
            **{f"d-e2e-{n:03d}": "accepted" for n in range(1, 5)},
            bad.delivery_id: "partially_accepted",
        }

        upload_delivery(store, good[0])  # identical bytes again: same ETag, same run key
        time.sleep(TICK_SECONDS * 4)
        assert materialized_partitions(instance) == partitions

        changed = make_delivery(9, "jinneng-mine-safety", "d-e2e-001", "text", 6)
        upload_delivery(store, changed)
        runs = wait_for_runs(instance, len(runs) + 1, daemon)
        newest = runs[0]
        assert newest.tags["dagster/partition"] == "jinneng-mine-safety/d-e2e-001"
        assert newest.tags["dagster/run_key"].startswith("jinneng-mine-safety/d-e2e-001@")
        assert newest.status == dg.DagsterRunStatus.SUCCESS
        assert materialized_partitions(instance) == sorted([*partitions, "jinneng-mine-safety/d-e2e-001"])
        rows = catalog.read_partition("raw_items", "jinneng-mine-safety/d-e2e-001")
        assert len(rows) == 6 and set(rows.dagster_run_id) == {newest.run_id}


def finished_runs(instance, job_name: str) -> list:
    return [run for run in instance.get_runs(dg.RunsFilter(job_name=job_name)) if run.is_finished]


def wait_for(condition, what: str, log: Path, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}; daemon log:\n{log.read_text()[-4000:]}")


def test_the_whole_flow_runs_under_the_daemon_to_a_verified_release(daemon, daemon_env, s3_store):
    """uploads → client_uploads → intake → batches → simulated annotators → annotation_exports → QA and
    gate → delivery_completion → client delivery → release → `annobase verify` and `annobase trace`."""
    from simulator.annotation_tool import complete_batch
    from simulator.annotators import Annotator

    store = s3_store.open()
    catalog = CatalogResource(object_store=s3_store).open()
    delivery = make_delivery(31, "jinneng-mine-safety", "d-flow-001", "text", 12)
    upload_delivery(store, delivery)
    truth = {f"jinneng-mine-safety/d-flow-001/{item}": value for item, value in delivery.truth.items()}

    with dg.DagsterInstance.get() as instance:
        wait_for_runs(instance, 1, daemon)
        batches = catalog.query("delivery_batches", client_id="jinneng-mine-safety", delivery_id="d-flow-001")
        crew = [Annotator(2, 1.0, 20.0), Annotator(3, 1.0, 25.0), Annotator(4, 1.0, 30.0)]
        for batch_id in batches.batch_id:
            complete_batch(store, batch_id, truth, crew, seed=5)
        qa_runs = wait_for(
            lambda: (
                [r for r in instance.get_runs(dg.RunsFilter(job_name="annotation_qa")) if r.is_finished]
                if len(instance.get_runs(dg.RunsFilter(job_name="annotation_qa"))) == len(batches)
                else None
            ),
            "QA runs",
            daemon,
        )
        assert {run.status for run in qa_runs} == {dg.DagsterRunStatus.SUCCESS}
        returned = wait_for(
            lambda: finished_runs(instance, "return_client_delivery"), "the client delivery", daemon
        )
        assert returned[0].status == dg.DagsterRunStatus.SUCCESS
        assert store.head("deliveries/jinneng-mine-safety/d-flow-001/labels.parquet") is not None

        # an operator publishing by hand: the run is queued and the daemon launches it
        env = {**os.environ, **daemon_env}
        launched = subprocess.run(
            [
                str(Path(sys.executable).with_name("dagster")),
                "job",
                "launch",
                "-w",
                "workspace.yaml",
                "-j",
                "publish_industry_datasets",
                "--tags",
                '{"dagster/partition": "energy"}',
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
        published = wait_for(
            lambda: finished_runs(instance, "publish_industry_datasets"), "the release", daemon
        )
        assert published[0].status == dg.DagsterRunStatus.SUCCESS
    assert store.get("datasets/energy/LATEST") == b"v0001"

    annobase = str(Path(sys.executable).with_name("annobase"))
    verified = subprocess.run(
        [annobase, "verify", "datasets/energy/v0001"], env=env, capture_output=True, text=True, timeout=120
    )
    assert verified.returncode == 0 and verified.stdout.startswith("OK:"), verified.stderr
    item = delivery.manifest["items"][0]["item_id"]
    traced = subprocess.run(
        [annobase, "trace", f"jinneng-mine-safety/d-flow-001/{item}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert traced.returncode == 0 and "datasets/energy/v0001" in traced.stdout
