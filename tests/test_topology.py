"""The production shape on one machine: the code location in its own code server, `dagster-webserver`
and `dagster-daemon` as separate processes on PostgreSQL (`deploy/dagster.yaml`), an external Dask
scheduler with workers started by `dask worker --preload assets.worker_kernels`, and SeaweedFS. A
delivery goes from upload to a verified release, and the code server is restarted mid-way, as a code
deploy does. Long (several minutes): `pytest -m long tests/test_topology.py`."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from services import free_port

from resources import CatalogResource
from simulator import make_delivery, upload_delivery

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TICK_SECONDS = 3

pytestmark = pytest.mark.long


class Processes:
    """Long-running processes of the deployment, each in its own session (killed as a group)."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs, self.running = env, logs, {}

    def start(self, name: str, *command: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, name: str) -> None:
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def alive(self, name: str) -> bool:
        return self.running[name].poll() is None

    def tail(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}"
            for log in sorted(self.logs.glob("*.log"))
        )


@contextmanager
def deployment(postgres, seaweedfs, s3_store, tmp_path, monkeypatch):
    from assets.release.signing import generate_key_pem

    database = postgres.create_database()
    key = tmp_path / "release-key.pem"
    key.write_bytes(generate_key_pem())
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    ports = {name: free_port(avoid_grpc_twin=False) for name in ("code", "web", "dask")}
    workspace = tmp_path / "workspace.yaml"
    # deploy/workspace.grpc.yaml with this machine's host and port
    workspace.write_text(
        (REPO / "deploy" / "workspace.grpc.yaml")
        .read_text()
        .replace("host: code-server", "host: 127.0.0.1")
        .replace("port: 4000", f"port: {ports['code']}")
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ANNOBASE_PG_USER": database["username"],
        "ANNOBASE_PG_PASSWORD": database["password"],
        "ANNOBASE_PG_HOST": database["hostname"],
        "ANNOBASE_PG_DB": database["db_name"],
        "ANNOBASE_PG_PORT": str(database["port"]),
        **seaweedfs.env(),
        "ANNOBASE_BUCKET": s3_store.bucket,
        "ANNOBASE_DASK_ADDRESS": f"tcp://127.0.0.1:{ports['dask']}",
        "ANNOBASE_SENSOR_INTERVAL_SECONDS": str(TICK_SECONDS),
        "ANNOBASE_SIGNING_KEY": str(key),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = Processes(env, logs)
    try:
        address = env["ANNOBASE_DASK_ADDRESS"]
        processes.start(
            "dask-scheduler", *f"dask scheduler --port {ports['dask']} --dashboard-address :0".split()
        )
        worker = f"dask worker {address} --nworkers 2 --nthreads 1 --memory-limit 2GiB"
        worker += " --preload assets.worker_kernels"
        processes.start("dask-worker", *worker.split())
        code_server = (
            f"dagster code-server start --host 127.0.0.1 --port {ports['code']} "
            "--module-name orchestration.definitions --location-name annobase"
        ).split()
        processes.start("code-server", *code_server)
        wait_until(lambda: code_server_answers(ports["code"]), "the code server", processes)
        processes.start(
            "webserver", *f"dagster-webserver --host 127.0.0.1 --port {ports['web']} -w {workspace}".split()
        )
        processes.start("daemon", "dagster-daemon", "run", "--workspace", str(workspace))
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{ports['web']}/server_info"), "the webserver", processes
        )
        for key_name in [key for key in env if key == "DAGSTER_HOME" or key.startswith("ANNOBASE_PG_")]:
            monkeypatch.setenv(key_name, env[key_name])  # the test reads the same instance
        yield processes, ports, code_server, env
    finally:
        for name in list(processes.running):
            processes.stop(name)
        postgres.drop_database(database["db_name"])


def code_server_answers(port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        DagsterGrpcClient(port=port, host="127.0.0.1").ping("")
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(condition, what: str, processes: Processes, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}\n{processes.tail()}")


def finished(instance, job_name: str, count: int):
    runs = instance.get_runs(dg.RunsFilter(job_name=job_name))
    return runs if len(runs) >= count and all(run.is_finished for run in runs) else None


def test_a_delivery_reaches_a_verified_release_through_the_production_shape(
    postgres, seaweedfs, s3_store, tmp_path, monkeypatch
):
    from dagster_graphql import DagsterGraphQLClient

    from simulator.annotation_tool import complete_batch
    from simulator.annotators import Annotator

    store = s3_store.open()
    catalog = CatalogResource(object_store=s3_store).open()
    with deployment(postgres, seaweedfs, s3_store, tmp_path, monkeypatch) as (
        processes,
        ports,
        code_server,
        env,
    ):
        delivery = make_delivery(41, "jinneng-mine-safety", "d-topo-001", "text", 12)
        upload_delivery(store, delivery)
        truth = {f"jinneng-mine-safety/d-topo-001/{item}": value for item, value in delivery.truth.items()}
        with dg.DagsterInstance.get() as instance:
            [intake] = wait_until(lambda: finished(instance, "intake_deliveries", 1), "intake", processes)
            assert intake.status == dg.DagsterRunStatus.SUCCESS

            # a code deploy: the code server goes away and comes back; webserver and daemon keep running
            processes.stop("code-server")
            processes.start("code-server", *code_server)
            wait_until(lambda: code_server_answers(ports["code"]), "the restarted code server", processes)
            assert processes.alive("webserver") and processes.alive("daemon")

            batches = catalog.query(
                "delivery_batches", client_id="jinneng-mine-safety", delivery_id="d-topo-001"
            )
            crew = [Annotator(2, 1.0, 20.0), Annotator(3, 1.0, 25.0), Annotator(4, 1.0, 30.0)]
            for batch_id in batches.batch_id:
                complete_batch(store, batch_id, truth, crew, seed=5)
            qa = wait_until(lambda: finished(instance, "annotation_qa", len(batches)), "QA runs", processes)
            assert {run.status for run in qa} == {dg.DagsterRunStatus.SUCCESS}
            [returned] = wait_until(
                lambda: finished(instance, "return_client_delivery", 1), "the client delivery", processes
            )
            assert returned.status == dg.DagsterRunStatus.SUCCESS

            # an operator publishes from the webserver (its GraphQL API, as the UI's Launch button does)
            client = DagsterGraphQLClient("127.0.0.1", port_number=ports["web"])
            run_id = client.submit_job_execution(
                "publish_industry_datasets", tags={"dagster/partition": "energy"}
            )
            wait_until(lambda: instance.get_run_by_id(run_id).is_finished, "the release", processes)
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
            # every run was launched by the daemon's run coordinator through the code server, in a
            # process of its own, and the Dask work ran on the external workers
            assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())

    assert store.get("datasets/energy/LATEST") == b"v0001"
    verify = [str(BIN / "annobase"), "verify", "datasets/energy/v0001"]
    verified = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0 and verified.stdout.startswith("OK:"), verified.stdout + verified.stderr
