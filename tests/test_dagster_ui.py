"""What the Dagster UI shows: a real dagster-webserver loads workspace.yaml and its GraphQL API is asked.

Unit tests call the definitions directly; these tests catch what only the served code location reveals
(a load error, an asset in the wrong group, a check or sensor that went missing). Extend the constants below
whenever an asset, check, sensor, schedule or job is added.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

EXPECTED_ASSETS = {
    "client_uploads": {"group": "intake", "kinds": {"s3"}, "partitioned": False},  # external
    "annotation_tool_exports": {"group": "annotation", "kinds": {"labelstudio", "s3"}, "partitioned": False},
    "raw_items": {"group": "intake", "kinds": {"s3", "dask", "duckdb"}, "partitioned": True},
    "clean_items": {"group": "cleaning", "kinds": {"s3", "dask", "duckdb"}, "partitioned": True},
    "annotation_batches": {"group": "annotation", "kinds": {"s3", "duckdb"}, "partitioned": True},
    "label_studio_projects": {"group": "annotation", "kinds": {"labelstudio", "s3"}, "partitioned": True},
    "batch_annotations": {"group": "annotation", "kinds": {"s3", "duckdb"}, "partitioned": True},
    "qa_results": {"group": "quality", "kinds": {"dask", "duckdb"}, "partitioned": True},
    "annotator_scorecards": {"group": "quality", "kinds": {"duckdb"}, "partitioned": False},
    "client_deliveries": {"group": "delivery", "kinds": {"s3", "duckdb"}, "partitioned": True},
    "industry_datasets": {
        "group": "release",
        "kinds": {"dask", "s3", "duckdb", "parquet"},
        "partitioned": True,
    },
}
# asset -> {check name -> blocking}
EXPECTED_CHECKS = {
    "raw_items": {"delivery_accepted": False, "raw_items_catalog_rows_valid": True},
    "batch_annotations": {"export_read": False},
    "qa_results": {"qa_gate": False, "qa_tables_valid": True},  # a verdict is not a failed run
    "client_deliveries": {"delivery_returned": False},
    "industry_datasets": {"release_current": False},
}
EXPECTED_SENSORS = {  # name -> status without any stored state
    "client_uploads": "RUNNING",
    "annotation_exports": "RUNNING",
    "delivery_completion": "RUNNING",
    "reconciliation": "RUNNING",
    "label_studio_exports": "RUNNING",
}
EXPECTED_SCHEDULES = {  # name -> (cron, timezone)
    "hourly_scorecards": ("0 * * * *", "Asia/Shanghai"),
    "nightly_publish": ("0 2 * * *", "Asia/Shanghai"),
}
EXPECTED_JOBS = {
    "intake_deliveries",
    "annotation_qa",
    "return_client_delivery",
    "refresh_annotator_scorecards",
}

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
LOCATION = "annobase"
STARTUP_TIMEOUT_S = 90

WORKSPACE_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on PythonError { message }
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
          ... on RepositoryLocation {
            repositories {
              assetNodes {
                assetKey { path }
                groupName
                kinds
                isPartitioned
                hasAssetChecks
                assetChecksOrError {
                  __typename
                  ... on AssetChecks { checks { name blocking } }
                }
              }
              sensors { name sensorState { status } }
              schedules { name cronSchedule executionTimezone }
              jobs { name }
            }
          }
        }
      }
    }
  }
}
"""


def _dagster_env(home: Path) -> dict[str, str]:
    """A fresh SQLite instance per run, so nothing from a developer's DAGSTER_HOME leaks in."""
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {**os.environ, "DAGSTER_HOME": str(home)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kill_group(proc: subprocess.Popen) -> None:
    """The webserver spawns a gRPC code server; killing the whole group leaves no orphan behind."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def webserver_url(tmp_path_factory):
    """One webserver for the module; it is up once /server_info answers."""
    home = tmp_path_factory.mktemp("dagster_home")
    stderr_path = home / "webserver.stderr"
    port = _free_port()
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(BIN_DIR / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=_dagster_env(home),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = stderr_path.read_text(errors="replace")[-4000:]
                pytest.fail(f"dagster-webserver not up (exit code {proc.poll()}):\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        _kill_group(proc)


@pytest.fixture(scope="module")
def repository(webserver_url):
    """The single repository of the annobase location, as the UI receives it."""
    response = requests.post(f"{webserver_url}/graphql", json={"query": WORKSPACE_QUERY}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    workspace = body["data"]["workspaceOrError"]
    assert workspace["__typename"] == "Workspace", workspace
    entries = {entry["name"]: entry for entry in workspace["locationEntries"]}
    assert set(entries) == {LOCATION}
    location = entries[LOCATION]["locationOrLoadError"]
    assert location is not None, f"location not loaded: {entries[LOCATION]['loadStatus']}"
    if location["__typename"] == "PythonError":
        pytest.fail(f"code location failed to load: {location['message']}\n{''.join(location['stack'])}")
    [repo] = location["repositories"]
    return repo


def test_asset_graph(repository):
    actual = {
        "/".join(node["assetKey"]["path"]): {
            "group": node["groupName"],
            "kinds": set(node["kinds"]),
            "partitioned": node["isPartitioned"],
        }
        for node in repository["assetNodes"]
    }
    assert actual == EXPECTED_ASSETS


def test_asset_checks(repository):
    actual = {}
    flagged = set()
    for node in repository["assetNodes"]:
        key = "/".join(node["assetKey"]["path"])
        checks = node["assetChecksOrError"]
        assert checks["__typename"] == "AssetChecks", (key, checks)
        if checks["checks"]:
            actual[key] = {check["name"]: check["blocking"] for check in checks["checks"]}
        if node["hasAssetChecks"]:
            flagged.add(key)
    assert actual == EXPECTED_CHECKS
    assert flagged == set(EXPECTED_CHECKS), "hasAssetChecks decides whether the UI shows the Checks tab"


def test_sensors(repository):
    actual = {sensor["name"]: sensor["sensorState"]["status"] for sensor in repository["sensors"]}
    assert actual == EXPECTED_SENSORS


def test_schedules(repository):
    actual = {
        schedule["name"]: (schedule["cronSchedule"], schedule["executionTimezone"])
        for schedule in repository["schedules"]
    }
    assert actual == EXPECTED_SCHEDULES


def test_jobs(repository):
    """Asset jobs named __ASSET_JOB* are Dagster's internals, not ours."""
    names = {job["name"] for job in repository["jobs"] if not job["name"].startswith("__ASSET_JOB")}
    assert names >= EXPECTED_JOBS


def test_definitions_validate(tmp_path):
    """The same check a deployment runs before it serves the code location."""
    result = subprocess.run(
        [str(BIN_DIR / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=_dagster_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Validation successful" in output
