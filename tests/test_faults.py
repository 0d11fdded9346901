"""Faults injected mid-run on the real services (issue 14 §3): the S3 server killed and restarted during
intake and during publish, a Dask worker killed during cleaning and during QA, `dagster-daemon` killed
during a sensor tick, PostgreSQL crashed and restarted during a run.

Each scenario runs the same deliveries twice, once undisturbed and once with the fault, and compares
what they leave: the catalog (less run ids and clocks), the releases, the provenance ledger. A fault
may cost a retry; it may never lose an item, take one in twice, leave a LATEST on an unsigned
version, or strand a delivery. What each run measured is printed (`-s`) for RELIABILITY.md.

The injecting side always runs on the test's main thread: services die with the thread that
started them (PR_SET_PDEATHSIG), so a server restarted from a worker thread would die with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from conftest import annobase_resources
from flow_helpers import CREW, Base, operator_env, run_flow_for_delivery, run_qa
from services import SeaweedFS, start_postgres

from annobase import ledger
from annobase.cli import main
from assets.release.publishing import existing_versions
from resources import ObjectStoreResource
from simulator import make_delivery, upload_delivery
from simulator.annotation_tool import complete_batch

REPO = Path(__file__).resolve().parents[1]
DOWN_SECONDS = 3  # how long a crashed server stays down before it is restarted
VOLATILE = ("dagster_run_id", "qa_run_id", "run_id")  # differ between any two runs, by design


# --- the faults ---------------------------------------------------------------------------------


class Background:
    """`work` on a thread of its own, while the main thread injects the fault."""

    def __init__(self, work: Callable[[], object]):
        self.result: object = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work) -> None:
        try:
            self.result = work()
        except BaseException as error:  # re-raised on the main thread by join()
            self.error = error

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float = 600) -> object:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the run did not finish within {timeout:g} s"
        if self.error is not None:
            raise self.error
        return self.result


def wait_until(condition: Callable[[], object], what: str, timeout: float = 120, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def step_started(instance, step_key: str) -> bool:
    """Whether a run of `instance` has started the step (op) `step_key`."""
    return any(
        event.step_key == step_key
        for run in instance.get_runs()
        for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
    )


def step_retries(instance) -> int:
    """Steps Dagster started again after a failure (RetryPolicy), over every run of the instance."""
    return sum(
        len(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_RESTARTED))
        for run in instance.get_runs()
    )


def crash_and_restart(server, down_seconds: float = DOWN_SECONDS) -> float:
    """Kill the server, keep it down, start it again on its port and data; the restart's seconds."""
    server.crash()
    time.sleep(down_seconds)
    return server.restart()


class KillWorkerOnTask:
    """A Dask worker plugin: the first worker to start a task whose key begins with `prefix` SIGKILLs
    itself (its nanny starts a new one). `marker` makes it happen once across all workers."""

    name = "annobase-fault-kill-worker"

    def __init__(self, prefix: str, marker: str):
        self.prefix = prefix
        self.marker = marker

    def setup(self, worker) -> None:
        pass

    def teardown(self, worker) -> None:
        pass

    def transition(self, key, start, finish, **kwargs) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if finish != "executing" or not str(name).startswith(self.prefix):
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


class worker_killed_on:  # noqa: N801 (used as a `with` statement)
    """Registers KillWorkerOnTask on the cluster for the block; `killed` says whether it fired."""

    def __init__(self, dask_cluster, prefix: str, tmp_path: Path):
        self.cluster = dask_cluster
        self.plugin = KillWorkerOnTask(prefix, str(tmp_path / f"killed-{uuid.uuid4().hex}"))

    def __enter__(self):
        from distributed import Client
        from distributed.diagnostics.plugin import WorkerPlugin

        # a WorkerPlugin subclass would tie the test module to distributed's import at collection
        plugin = type("KillWorker", (KillWorkerOnTask, WorkerPlugin), {})(
            self.plugin.prefix, self.plugin.marker
        )
        self.client = Client(self.cluster)
        self.pids_before = set(self.client.run(os.getpid).values())
        self.client.register_plugin(plugin, name=KillWorkerOnTask.name)
        return self

    def __exit__(self, *exc_info) -> None:
        self.client.unregister_worker_plugin(KillWorkerOnTask.name)

        # the nanny brings the killed worker back: the cluster is whole again for the next test
        def whole() -> set[int] | None:
            pids = set(self.client.run(os.getpid).values())
            if len(pids) == len(self.pids_before) and (pids != self.pids_before or not self.killed):
                return pids
            return None

        self.pids_after = wait_until(whole, "the killed worker's replacement", timeout=180, every=1)
        self.client.close()

    @property
    def killed(self) -> bool:
        return Path(self.plugin.marker).exists()


# --- what a run leaves --------------------------------------------------------------------------


def catalog_tables(store) -> dict[str, pd.DataFrame]:
    """Every catalog table, made `stable`."""
    import io

    files: dict[str, list[pd.DataFrame]] = {}
    for obj in store.list("catalog/"):
        table = obj.key.split("/")[1]
        files.setdefault(table, []).append(pd.read_parquet(io.BytesIO(store.get(obj.key))))
    return {table: stable(pd.concat(parts, ignore_index=True)) for table, parts in sorted(files.items())}


def stable(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows less what differs between any two runs (run ids, clocks), as text, sorted."""
    drop = [
        c
        for c in frame.columns
        if c in VOLATILE or pd.api.types.is_datetime64_any_dtype(frame[c]) or c.endswith("_at")
    ]
    frame = frame.drop(columns=drop).map(lambda v: v.hex() if isinstance(v, bytes) else str(v))
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def assert_same_catalog(disturbed, undisturbed) -> None:
    got, want = catalog_tables(disturbed), catalog_tables(undisturbed)
    assert sorted(got) == sorted(want)
    for table in want:
        pd.testing.assert_frame_equal(got[table], want[table], obj=f"catalog table {table}")


def ledger_kinds(store) -> Counter:
    """How many entries of each kind the ledger holds, every chain verified first."""
    kinds = Counter()
    for client_id in ledger.clients(store):
        chain = ledger.verify_chain(store, client_id)
        assert chain.ok, chain.problem
        kinds.update(entry.kind for entry in chain.entries)
    return kinds


def quarantined(store) -> list[str]:
    return [obj.key for obj in store.list("quarantine/")]


def report(scenario: str, **measured) -> None:
    print(f"\nFAULT {scenario}: " + ", ".join(f"{k}={v}" for k, v in measured.items()))


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def faulty_s3(seaweedfs):
    """A SeaweedFS of the test's own, to crash: the identity of the session's server, which the
    Dask workers hold in their environment."""
    with SeaweedFS(
        bucket="faults", access_key=seaweedfs.access_key, secret_key=seaweedfs.secret_key
    ) as server:
        yield server


def fresh_bucket(server) -> ObjectStoreResource:
    bucket = f"f-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=bucket)
    return ObjectStoreResource(bucket=bucket, endpoint_url=server.endpoint_url)


def upload(store, seed: int, client_id: str, delivery_id: str, n_items: int, modality: str = "text") -> dict:
    delivery = make_delivery(seed, client_id, delivery_id, modality, n_items, disagreement_rate=0.0)
    upload_delivery(store, delivery)
    return {f"{client_id}/{delivery_id}/{k}": v for k, v in delivery.truth.items()}


# --- S3 ---------------------------------------------------------------------------------------------


def test_s3_killed_during_intake_loses_and_doubles_nothing(faulty_s3, s3_store, dask_cluster, instance):
    """Quick: SeaweedFS SIGKILLed as intake starts, down 3 s, restarted on its port and data."""
    disturbed_store = fresh_bucket(faulty_s3)
    partition = "jinneng-mine-safety/d-fault-s3-001"
    for resource in (disturbed_store, s3_store):
        upload(resource.open(), 41, *partition.split("/"), 40)

    with dg.DagsterInstance.ephemeral() as calm:
        assert run_flow_for_delivery(calm, annobase_resources(s3_store, dask_cluster), partition).success

    resources = annobase_resources(disturbed_store, dask_cluster)
    run = Background(lambda: run_flow_for_delivery(instance, resources, partition))
    wait_until(lambda: step_started(instance, "raw_items"), "intake to start")
    assert run.running, "the fault must hit the run, not follow it"
    restart_seconds = crash_and_restart(faulty_s3)
    assert run.join().success

    disturbed, undisturbed = disturbed_store.open(), s3_store.open()
    assert_same_catalog(disturbed, undisturbed)
    assert ledger_kinds(disturbed) == ledger_kinds(undisturbed)
    assert quarantined(disturbed) == quarantined(undisturbed) == []
    items = catalog_tables(disturbed)["raw_items"]
    assert len(items) == len(set(items.item_key)) == 40
    report(
        "s3-killed-during-intake",
        down_s=DOWN_SECONDS,
        restart_s=round(restart_seconds, 1),
        step_retries=step_retries(instance),
        items=len(items),
    )


def published(store, industry: str) -> tuple[str, list[int], list[int]]:
    versions = existing_versions(store, industry)
    return store.get(f"datasets/{industry}/LATEST").decode(), versions.published, versions.incomplete


def latest_is_signed(store, industry: str) -> bool:
    """LATEST is absent or names a version whose signature exists: never a half-published one."""
    if store.head(f"datasets/{industry}/LATEST") is None:
        return True
    version = store.get(f"datasets/{industry}/LATEST").decode().strip()
    return int(version[1:]) in existing_versions(store, industry).published


@pytest.mark.long
@pytest.mark.parametrize("down_seconds", [DOWN_SECONDS, 75], ids=["restart", "past-client-retries"])
def test_s3_killed_during_publish_leaves_no_half_release(
    down_seconds, faulty_s3, s3_store, dask_cluster, signing, tmp_path, monkeypatch
):
    """SeaweedFS SIGKILLed once the release's first file is written, before it is signed; down 3 s
    (boto3's retries ride it out), or 75 s (past them: the step is run again, `store_outage`)."""
    stores = {"disturbed": fresh_bucket(faulty_s3), "undisturbed": s3_store}
    bases = {}
    for name, resource in stores.items():
        instance = dg.DagsterInstance.ephemeral()
        resources = {**annobase_resources(resource, dask_cluster), "signing_key": signing}
        bases[name] = Base(resource, resources, instance)
        bases[name].deliver_and_annotate(52, "shanxi-coal-grid", "d-fault-pub-001", "text", 60)
    calm, base = bases["undisturbed"], bases["disturbed"]
    calm.publish("energy")

    run = Background(lambda: base.publish("energy"))
    wait_until(
        lambda: next(iter(base.store.list("datasets/energy/v0001/")), None), "the release's first file"
    )
    written_when_killed = len(list(base.store.list("datasets/energy/v0001/")))
    signed_when_killed = base.store.head("datasets/energy/v0001/MANIFEST.json.sig") is not None
    assert run.running, "the fault must hit the run, not follow it"
    restart_seconds = crash_and_restart(faulty_s3, down_seconds)
    latest_signed_after_restart = latest_is_signed(base.store, "energy")
    metadata = run.join()

    assert latest_signed_after_restart and latest_is_signed(base.store, "energy")
    if down_seconds > 60:  # past boto3's retries: only the step's own retry can have saved the run
        assert step_retries(base.instance) >= 1

    assert metadata["released"] and metadata["version"] == "v0001"
    assert published(base.store, "energy") == ("v0001", [1], []) == published(calm.store, "energy")
    pd.testing.assert_frame_equal(
        stable(base.release_items("datasets/energy/v0001")),
        stable(calm.release_items("datasets/energy/v0001")),
    )
    # the same files; the same bytes, but for the documents that carry the time of the release
    files = {
        name: sorted(
            (f["path"], f["sha256"] if f["path"].startswith("data/files/") else None)
            for f in json.loads(b.store.get("datasets/energy/v0001/MANIFEST.json"))["files"]
        )
        for name, b in bases.items()
    }
    assert files["disturbed"] == files["undisturbed"]
    assert_same_catalog(base.store, calm.store)
    operator_env(monkeypatch, base.resources, signing)
    assert main(["verify", "datasets/energy/v0001"]) == 0
    assert main(["ledger", "verify"]) == 0
    report(
        "s3-killed-during-publish",
        down_s=down_seconds,
        files_written_when_killed=written_when_killed,
        signed_when_killed=signed_when_killed,
        restart_s=round(restart_seconds, 1),
        step_retries=step_retries(base.instance),
        release_files=len(files["disturbed"]),
    )


# --- Dask ---------------------------------------------------------------------------------------------


def test_a_dask_worker_killed_during_cleaning_costs_nothing(
    s3_store, seaweedfs, dask_cluster, instance, tmp_path
):
    """Quick: the worker that starts the first cleaning task SIGKILLs itself; the scheduler gives the
    task to the other worker, the nanny restarts the dead one."""
    calm_store = fresh_bucket(seaweedfs)
    partition = "xiehe-clinic/d-fault-dask-001"
    for resource in (s3_store, calm_store):
        upload(resource.open(), 43, *partition.split("/"), 30)
    with dg.DagsterInstance.ephemeral() as calm:
        assert run_flow_for_delivery(calm, annobase_resources(calm_store, dask_cluster), partition).success

    with worker_killed_on(dask_cluster, "read_item_content", tmp_path) as fault:
        assert run_flow_for_delivery(instance, annobase_resources(s3_store, dask_cluster), partition).success
    assert fault.killed and len(fault.pids_after - fault.pids_before) == 1

    assert_same_catalog(s3_store.open(), calm_store.open())
    assert ledger_kinds(s3_store.open()) == ledger_kinds(calm_store.open())
    report("dask-worker-killed-during-cleaning", workers_replaced=1, step_retries=step_retries(instance))


@pytest.mark.long
def test_a_dask_worker_killed_during_qa_costs_nothing(s3_store, seaweedfs, dask_cluster, signing, tmp_path):
    stores = {"disturbed": s3_store, "undisturbed": fresh_bucket(seaweedfs)}
    bases = {}
    for name, resource in stores.items():
        resources = {**annobase_resources(resource, dask_cluster), "signing_key": signing}
        bases[name] = base = Base(resource, resources, dg.DagsterInstance.ephemeral())
        truth = upload(base.store, 44, "yungang-grottoes", "d-fault-qa-001", 24)
        assert run_flow_for_delivery(base.instance, resources, "yungang-grottoes/d-fault-qa-001").success
        batch_ids = base.catalog.query(
            "delivery_batches", client_id="yungang-grottoes", delivery_id="d-fault-qa-001"
        ).batch_id
        for batch_id in batch_ids:
            complete_batch(base.store, batch_id, truth, CREW, seed=3)
        if name == "undisturbed":
            assert all(run_qa(base.instance, resources, b).success for b in batch_ids)
            continue
        with worker_killed_on(dask_cluster, "measure_batch", tmp_path) as fault:
            assert all(run_qa(base.instance, resources, b).success for b in batch_ids)
        assert fault.killed
    assert_same_catalog(bases["disturbed"].store, bases["undisturbed"].store)
    gates = catalog_tables(bases["disturbed"].store)["gate_results"]
    assert set(gates.passed) == {"True"}
    report(
        "dask-worker-killed-during-qa",
        batches=len(gates),
        workers_replaced=len(fault.pids_after - fault.pids_before),
        step_retries=step_retries(bases["disturbed"].instance),
    )


# --- PostgreSQL -------------------------------------------------------------------------------------


@pytest.fixture
def own_postgres():
    """A throwaway cluster of the test's own: crashing the machine's shared server is not ours to do."""
    server = start_postgres()
    yield server
    server.stop()


def postgres_instance_on(server, tmp_path: Path, monkeypatch) -> dg.DagsterInstance:
    import shutil

    database = server.create_database()
    for variable, value in {
        "ANNOBASE_PG_USER": database["username"],
        "ANNOBASE_PG_PASSWORD": database["password"],
        "ANNOBASE_PG_HOST": database["hostname"],
        "ANNOBASE_PG_DB": database["db_name"],
        "ANNOBASE_PG_PORT": str(database["port"]),
    }.items():
        monkeypatch.setenv(variable, value)
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


@pytest.mark.long
def test_postgres_crashed_during_a_run_loses_and_doubles_nothing(
    own_postgres, s3_store, seaweedfs, dask_cluster, tmp_path, monkeypatch
):
    """PostgreSQL (the instance's run, event and partition storage) stopped `immediate` as intake
    starts, down 3 s, restarted on its port and data dir (it replays its WAL)."""
    calm_store = fresh_bucket(seaweedfs)
    partition = "xiehe-clinic/d-fault-pg-001"
    for resource in (s3_store, calm_store):
        upload(resource.open(), 45, *partition.split("/"), 30)
    with dg.DagsterInstance.ephemeral() as calm:
        assert run_flow_for_delivery(calm, annobase_resources(calm_store, dask_cluster), partition).success

    with postgres_instance_on(own_postgres, tmp_path, monkeypatch) as instance:
        resources = annobase_resources(s3_store, dask_cluster)
        run = Background(lambda: run_flow_for_delivery(instance, resources, partition))
        wait_until(lambda: step_started(instance, "raw_items"), "intake to start", every=0.02)
        assert run.running, "the fault must hit the run, not follow it"
        restart_seconds = crash_and_restart(own_postgres)
        result = run.join()
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored.status == dg.DagsterRunStatus.SUCCESS
        materialized = instance.fetch_materializations(dg.AssetKey("raw_items"), limit=10).records
        assert [record.asset_materialization.partition for record in materialized] == [partition]
        retries = step_retries(instance)

    assert_same_catalog(s3_store.open(), calm_store.open())
    assert ledger_kinds(s3_store.open()) == ledger_kinds(calm_store.open())
    report("postgres-crashed-during-a-run", restart_s=round(restart_seconds, 1), step_retries=retries)


# --- dagster-daemon --------------------------------------------------------------------------------


def start_daemon(env: dict, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def sensor_tick_started(postgres_server, db_name: str, sensor: str) -> bool:
    """Whether the newest tick of `sensor` is under way right now (read from the instance's tables)."""
    conn = postgres_server.connect(db_name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('job_ticks') IS NOT NULL")
            if not cur.fetchone()[0]:
                return False
            cur.execute(
                "SELECT status FROM job_ticks WHERE tick_body::jsonb ->> 'job_name' = %s "
                "ORDER BY id DESC LIMIT 1",
                (sensor,),
            )
            row = cur.fetchone()
    finally:
        conn.close()
    return row is not None and row[0] == "STARTED"


@pytest.mark.long
def test_the_daemon_killed_during_a_sensor_tick_takes_each_delivery_in_once(
    postgres, seaweedfs, s3_store, dask_cluster, tmp_path, monkeypatch
):
    """`dagster-daemon` (with its code server and any run it launched) SIGKILLed while a
    `client_uploads` tick is under way, then started again: every delivery taken in exactly once."""
    from test_end_to_end_daemon import TICK_SECONDS, materialized_partitions

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
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text(
        (REPO / "deploy" / "dagster.yaml")
        .read_text()
        # a run killed with the daemon is noticed within seconds, not the production minute
        .replace("poll_interval_seconds: 60", "poll_interval_seconds: 5")
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    store = s3_store.open()
    calm_store = fresh_bucket(seaweedfs)
    partitions = [
        f"{client}/d-fault-daemon-{n:03d}"
        for client in ("jinneng-mine-safety", "xiehe-clinic")
        for n in range(1, 7)
    ]
    for n, partition in enumerate(partitions):
        for resource in (s3_store, calm_store):
            upload(resource.open(), 60 + n, *partition.split("/"), 4)
    with dg.DagsterInstance.ephemeral() as calm:
        for partition in partitions:
            assert run_flow_for_delivery(
                calm, annobase_resources(calm_store, dask_cluster), partition
            ).success

    log = tmp_path / "daemon.log"
    daemon = start_daemon(env, log)
    try:
        wait_until(
            lambda: sensor_tick_started(postgres, database["db_name"], "client_uploads"),
            "a client_uploads tick under way",
            timeout=300,
            every=0.02,
        )
        kill_group(daemon)
        with dg.DagsterInstance.get() as instance:
            runs_at_kill = len(instance.get_runs())
            daemon = start_daemon(env, log)

            def all_taken_in():
                runs = instance.get_runs(dg.RunsFilter(job_name="intake_deliveries"))
                done = sorted(set(materialized_partitions(instance))) == sorted(partitions)
                return done and runs and all(run.is_finished for run in runs) and runs

            runs = wait_until(all_taken_in, "every delivery taken in", timeout=1200, every=2)
            taken_in = materialized_partitions(instance)
            failed = [run.run_id for run in runs if run.status != dg.DagsterRunStatus.SUCCESS]
    finally:
        kill_group(daemon, signal.SIGTERM)
        postgres.drop_database(database["db_name"])

    assert taken_in == sorted(partitions), log.read_text()[-4000:]
    assert_same_catalog(store, calm_store.open())
    assert ledger_kinds(store) == ledger_kinds(calm_store.open())
    report(
        "daemon-killed-during-a-sensor-tick",
        runs_when_killed=runs_at_kill,
        intake_runs=len(runs),
        runs_failed_then_retried=len(failed),
        deliveries_taken_in=len(set(taken_in)),
        taken_in_twice=len(taken_in) - len(set(taken_in)),
    )


def test_the_two_intake_sensors_never_ask_for_one_delivery_twice(s3_store, instance, monkeypatch):
    """What the daemon test above caught, both ways round. After a restart, `client_uploads` asked
    for a client's new deliveries in one range run, and the first `reconciliation` tick, finding them
    not yet in the catalog, asked for each again under its own run key; or `reconciliation` ticked
    first (and added the partitions), and `client_uploads` then asked for each under the very key
    `reconciliation` had used, which Dagster only skips within one sensor. Either way every
    delivery was taken in twice."""
    from resources import CatalogResource
    from sensors.client_uploads import client_uploads, intake_request
    from sensors.reconciliation import reconciliation

    monkeypatch.setenv("ANNOBASE_RECONCILE_GRACE_SECONDS", "0")  # the uploads count as settled at once
    store = s3_store.open()
    partitions = [f"datong-schools/d-fault-rec-{n:03d}" for n in (1, 2, 3)]
    etags = []
    for n, partition in enumerate(partitions):
        upload(store, 70 + n, *partition.split("/"), 2)
        etags.append(store.head(f"uploads/{partition}/manifest.json").etag)
    instance.add_dynamic_partitions("deliveries", partitions)

    def launched(request: dg.RunRequest, sensor: str) -> dg.DagsterRun:
        run = dg.DagsterRun(
            job_name="intake_deliveries",
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED,  # taking them in right now
            tags={**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": sensor},
        )
        instance.add_run(run)
        return run

    def requested(sensor) -> list[str]:
        resources = {"object_store": s3_store, "catalog": CatalogResource(object_store=s3_store)}
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            result = sensor(context)
        partitions = [
            r.partition_key or f"{r.tags['dagster/asset_partition_range_start']}.."
            for r in result.run_requests
        ]
        return sorted(partitions)

    in_range = launched(
        intake_request("datong-schools", list(zip(partitions[:2], etags[:2], strict=True))), "client_uploads"
    )
    # the client's intake run in flight is not lost: its outcome is awaited
    assert requested(reconciliation) == []
    instance.report_run_failed(in_range)
    assert requested(reconciliation) == partitions  # once it ended without them, they are

    launched(intake_request("datong-schools", [(partitions[2], etags[2])]), "reconciliation")
    # `client_uploads` from a fresh cursor: the third is in reconciliation's hands already
    assert requested(client_uploads) == partitions[:2]
