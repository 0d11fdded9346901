"""The operator's view after `annobase demo`: what the Dagster UI shows, read in a real browser.

The demo's own instance is served by dagster-webserver and driven with Playwright on Debian's chromium
(the package index serves Playwright, not its browser downloads: `.ci/run` installs the Debian package).
The pages are read as a person reads them: the lineage from the clients' uploads to the releases, a
blocked batch's failed expectation with its observed value and threshold, a rejected delivery's reason.
Screenshots are kept under `tests/artefacts/` (ignored by git). A daemon started over the same
instance afterwards must request nothing the demo already ran.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests
from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from test_dagster_ui import STARTUP_TIMEOUT_S, _free_port, _kill_group
from test_readme_and_demo import run_demo

REPO = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
ARTEFACTS = Path(__file__).resolve().parent / "artefacts" / "operator_view"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# what the demo does to its deliveries (annobase/demo.py)
REJECTED = "xiehe-clinic/d-2026-11-21-003"  # malformed manifest
BLOCKED_DELIVERY = "datong-schools/d-2026-11-22-002"  # its batches went to the careless crew
UNRELEASED_INDUSTRY = "medical"  # the clinic's data is private
FLOW = [
    ("client_uploads", "raw_items"),
    ("raw_items", "clean_items"),
    ("clean_items", "annotation_batches"),
    ("clean_items", "industry_datasets"),
    ("annotation_batches", "annotation_tool_exports"),
    ("annotation_batches", "label_studio_projects"),
    ("label_studio_projects", "annotation_tool_exports"),
    ("annotation_tool_exports", "batch_annotations"),
    ("batch_annotations", "qa_results"),
    ("qa_results", "annotator_scorecards"),
    ("qa_results", "client_deliveries"),
    ("qa_results", "industry_datasets"),
]
JOBS = {
    "intake_deliveries": ("sensor", "client_uploads"),
    "annotation_qa": ("sensor", "annotation_exports"),
    "return_client_delivery": ("sensor", "delivery_completion"),
    "refresh_annotator_scorecards": ("schedule", "hourly_scorecards"),
    "publish_industry_datasets": ("schedule", "nightly_publish"),
}
SENSORS = ("client_uploads", "annotation_exports", "delivery_completion", "reconciliation")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, str]:
    """The demo, run once: the environment that opens its store and instance."""
    workdir = tmp_path_factory.mktemp("operator_view") / ".annobase"
    finished = run_demo(workdir)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANNOBASE_", "DAGSTER_"))}
    return {
        **env,
        "HOME": str(workdir.parent),
        "DAGSTER_HOME": str(workdir / "dagster_home"),
        "ANNOBASE_LOCAL_STORE": str(workdir / "store"),
    }


@pytest.fixture(scope="module")
def instance(demo):
    with dg.DagsterInstance.from_config(demo["DAGSTER_HOME"]) as instance:
        yield instance


def test_the_demo_files_its_runs_under_their_jobs_and_automation(instance):
    """As the daemon would launch them: the UI's job, sensor and schedule pages list runs by these tags."""
    runs = instance.get_runs()
    assert {run.job_name for run in runs} == set(JOBS)
    for run in runs:
        kind, name = JOBS[run.job_name]
        assert run.tags[".dagster/repository"] == "__repository__@annobase", run.tags
        assert run.tags[f"dagster/{kind}_name"] == name


CHECK_QUERY = """
query ($asset: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $asset, checkName: $check, partition: $partition, limit: 1) {
    evaluation {
      success severity description partition
      metadataEntries { label ... on TableMetadataEntry { table { records } } }
    }
  }
}
"""


def latest_check(webserver: str, asset: str, check: str, partition: str) -> dict:
    """The latest evaluation of `check` on one partition of `asset`, as the UI receives it."""
    variables = {"asset": {"path": [asset]}, "check": check, "partition": partition}
    response = requests.post(
        f"{webserver}/graphql", json={"query": CHECK_QUERY, "variables": variables}, timeout=60
    )
    response.raise_for_status()
    executions = response.json()["data"]["assetCheckExecutions"]
    assert executions and executions[0]["evaluation"], f"no {check} on {asset} {partition}"
    return executions[0]["evaluation"]


def blocked_batch(instance) -> str:
    [batch] = [
        key
        for key in instance.get_dynamic_partitions("batches")
        if key.startswith(BLOCKED_DELIVERY.replace("/", "-"))
    ]
    return batch


def test_every_verdict_is_a_check_on_its_partition(webserver, instance):
    """A rejected delivery, a blocked batch, an industry that released nothing and a delivery not returned
    each fail a check on their own partition, with the reason in one line."""
    rejected = latest_check(webserver, "raw_items", "delivery_accepted", REJECTED)
    assert not rejected["success"] and rejected["description"].startswith("rejected: malformed_json")
    batch = blocked_batch(instance)
    gate = latest_check(webserver, "qa_results", "qa_gate", batch)
    assert not gate["success"] and gate["description"].startswith("blocked: ")
    [failed] = [entry for entry in gate["metadataEntries"] if entry["label"] == "failed_expectations"]
    assert failed["table"]["records"], gate
    unreleased = latest_check(webserver, "industry_datasets", "release_current", UNRELEASED_INDUSTRY)
    assert not unreleased["success"] and unreleased["severity"] == "WARN"
    assert unreleased["description"].startswith("nothing released: ")
    unreturned = latest_check(webserver, "client_deliveries", "delivery_returned", BLOCKED_DELIVERY)
    assert not unreturned["success"] and batch in unreturned["description"]
    returned = latest_check(
        webserver, "client_deliveries", "delivery_returned", "yungang-grottoes/d-2026-11-20-001"
    )
    assert returned["success"]


def test_a_delivery_held_back_is_a_warning_on_its_partition_reported_once():
    """What `delivery_completion` returns when it does not return a delivery: the reason it skips,
    also as a failed `delivery_returned` on the delivery's partition (the daemon records both), once:
    Dagster keeps one run-less result per check and partition and refuses a second one."""
    from annobase.keys import DeliveryRef
    from sensors.delivery_completion import with_its_check

    ref = DeliveryRef("datong-schools", "d-001")
    waiting = dg.SkipReason(f"{ref.partition_key} waits: datong-schools-d-001-x-b001 for a first verdict")
    with dg.DagsterInstance.ephemeral() as instance:
        result = with_its_check(instance, ref, waiting)
        assert result.skip_reason.skip_message == waiting.skip_message
        [evaluation] = result.asset_events
        assert (evaluation.asset_key, evaluation.check_name, evaluation.partition) == (
            dg.AssetKey("client_deliveries"),
            "delivery_returned",
            ref.partition_key,
        )
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
        assert (
            evaluation.description == "not returned: waits: datong-schools-d-001-x-b001 for a first verdict"
        )
        instance.report_runless_asset_event(evaluation)
        assert with_its_check(instance, ref, waiting) is waiting  # already shown: not reported twice
        request = dg.RunRequest(partition_key=ref.partition_key, run_key="k")
        assert with_its_check(instance, ref, request) is request


def test_a_daemon_started_after_the_demo_requests_nothing_again(demo, instance, tmp_path):
    """Every sensor ticks over the demo's store and instance, and none asks for a run the demo ran."""
    runs_before = {run.run_id for run in instance.get_runs()}
    env = {
        **demo,
        "ANNOBASE_SENSOR_INTERVAL_SECONDS": "2",
        "ANNOBASE_RECONCILE_INTERVAL_SECONDS": "2",
        "ANNOBASE_RECONCILE_GRACE_SECONDS": "0",
        "PYTHONPATH": str(REPO),
    }
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            [str(BIN_DIR / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while len(evaluated := skipped_twice(sensor_ticks(instance))) < len(SENSORS):
            assert time.monotonic() < deadline, f"ticked: {evaluated}\n{log_path.read_text()[-4000:]}"
            time.sleep(2)
    finally:
        _kill_group(daemon)
    for name, ticks in sensor_ticks(instance).items():
        for tick in ticks:
            assert not tick.run_ids, (name, tick.run_keys)
            # a tick the daemon was stopped in is left STARTED; under heavy load a tick can find the code
            # server unreachable: neither decides anything
            assert tick.status in (TickStatus.SKIPPED, TickStatus.STARTED) or (
                tick.status == TickStatus.FAILURE and "DagsterUserCodeUnreachableError" in tick.error.message
            ), (name, tick.status, tick.error and tick.error.message[:2000])
    assert {run.run_id for run in instance.get_runs()} == runs_before


def skipped_twice(ticks_by_sensor: dict[str, list]) -> set[str]:
    """The sensors that evaluated at least twice and requested nothing."""
    return {
        name
        for name, ticks in ticks_by_sensor.items()
        if sum(tick.status == TickStatus.SKIPPED for tick in ticks) >= 2
    }


def sensor_ticks(instance) -> dict[str, list]:
    """Each sensor's ticks so far, by name (a sensor has state once the daemon ticked it)."""
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    return {
        state.instigator_name: instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=50)
        for state in states
        if state.instigator_name in SENSORS
    }


@pytest.fixture(scope="module")
def webserver(demo):
    """dagster-webserver over the demo's instance; up once /server_info answers."""
    port = _free_port()
    log_path = Path(demo["DAGSTER_HOME"]) / "webserver.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN_DIR / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env={**demo, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=log,
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
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dagster-webserver not up:\n{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)
        yield url
    finally:
        _kill_group(process)


def install_chromium() -> None:
    """Debian's chromium, installed when missing (Playwright's own browser download is not reachable);
    as root, or through sudo."""
    apt = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    if os.geteuid() != 0:
        apt = ["sudo", "-n", *apt]
    for command in (
        [*apt, "update", "-q"],
        [*apt, "install", "-y", "-q", "--no-install-recommends", "chromium"],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"Debian's chromium is missing and could not be installed: {done.stderr[-1000:]}")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        install_chromium()
    from playwright.sync_api import sync_playwright

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    yield page
    context.close()


def shoot(page, name: str) -> None:
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"))


def open_page(page, url: str, ready: str) -> None:
    """`url`, once `ready` shows (the UI loads its data after the page)."""
    page.add_init_script("window.localStorage.setItem('communityNux', '1')")  # no welcome dialog
    page.goto(url)
    page.get_by_text(ready).first.wait_for()


def test_the_lineage_starts_at_the_uploads_and_draws_every_edge(webserver, page):
    open_page(page, f"{webserver}/asset-groups", "Global asset lineage")
    page.locator("path[marker-end]").first.wait_for()  # the graph is drawn, its groups collapsed
    assets = {asset for edge in FLOW for asset in edge}
    page.keyboard.press("Alt+e")  # expand every group
    page.wait_for_function(f"() => ({GRAPH_SCRIPT})().nodes.length >= {len(assets)}")
    # the graph is laid out again as groups open and statuses arrive: read it once it holds still
    deadline = time.monotonic() + 60
    while (drawn := read_graph(page, assets)) != read_graph(page, assets) or drawn is None:
        assert time.monotonic() < deadline, page.evaluate(GRAPH_SCRIPT)
        page.wait_for_timeout(1000)
    shoot(page, "lineage")
    names, edges = drawn
    assert names == assets
    assert edges == set(FLOW)


def read_graph(page, assets: set[str]) -> tuple[set[str], set[tuple[str, str]]] | None:
    """The assets drawn and the (source, target) of every edge drawn, or None while an edge's ends do
    not sit on one node each."""
    drawn = page.evaluate(GRAPH_SCRIPT)
    names = {}
    for node in drawn["nodes"]:
        # a zoomed-out node shows its name cut in the middle ("annotatio…_exports")
        head, _, tail = node["label"].partition("…")
        [name] = [asset for asset in assets if asset.startswith(head) and asset.endswith(tail)]
        names[name] = node
    edges = set()
    for edge in drawn["edges"]:
        sources = [name for name, box in names.items() if leaves(box, edge["from"])]
        targets = [name for name, box in names.items() if enters(box, edge["to"])]
        if len(sources) != 1 or len(targets) != 1:
            return None
        edges.add((sources[0], targets[0]))
    return set(names), edges


# the asset nodes (name and box) and the edges (first and last point) of the lineage graph, in its
# own coordinates: an edge leaves a node's right side and ends at the next one's left, by its arrow
GRAPH_SCRIPT = """() => {
  const nodes = [...document.querySelectorAll('foreignObject')]
    .filter(o => o.querySelector('[class*=AssetNode_assetName]') && !o.classList.contains('group')
                 && o.querySelectorAll('[class*=AssetNode_assetName]').length === 1)
    .map(o => ({label: o.querySelector('[class*=AssetNode_assetName]').textContent,
                x: +o.getAttribute('x'), y: +o.getAttribute('y'),
                width: +o.getAttribute('width'), height: +o.getAttribute('height')}));
  const edges = [...document.querySelectorAll('path[marker-end]')].map(p => {
    const numbers = p.getAttribute('d').match(/-?[0-9.]+/g).map(Number);
    return {from: numbers.slice(0, 2), to: numbers.slice(-2)};
  });
  return {nodes, edges};
}"""
EDGE_SLACK = 20  # pixels between a node's side and its edge's end (the arrow head)


def leaves(box: dict, point: list[float]) -> bool:
    x, y = point
    return abs(x - (box["x"] + box["width"])) < EDGE_SLACK and box["y"] <= y <= box["y"] + box["height"]


def enters(box: dict, point: list[float]) -> bool:
    x, y = point
    return abs(x - box["x"]) < EDGE_SLACK and box["y"] <= y <= box["y"] + box["height"]


def open_check_partition(page, webserver: str, asset: str, check: str, partition: str) -> None:
    """A check's page, its partitions tab, one partition's latest evaluation: as a person clicks there."""
    open_page(page, f"{webserver}/assets/{asset}?view=checks&checkDetail={check}", "Latest execution")
    page.get_by_text("Partitions", exact=True).nth(1).click()  # the check's tab, not the asset's
    # a long key is cut in the middle on the page and whole in its tooltip
    page.locator(f'[data-tooltip="{partition}"], :text-is("{partition}")').first.click()
    page.get_by_text("Description", exact=True).wait_for()


def test_a_blocked_batch_explains_itself(webserver, instance, page):
    batch = blocked_batch(instance)
    open_check_partition(page, webserver, "qa_results", "qa_gate", batch)
    page.get_by_text("blocked: ").first.wait_for()
    shoot(page, "blocked_batch")
    text = page.inner_text("body")
    assert "Failed" in text
    line = next(line for line in text.splitlines() if line.startswith("blocked: "))
    # the failed expectation, the observed value and the threshold, on the page
    assert re.search(r"speech_accuracy (0\.\d{3}) against the threshold (0\.\d{3})", line), line
    observed, threshold = (float(v) for v in re.findall(r"0\.\d{3}", line)[:2])
    assert observed < threshold
    assert "expect_column_values_to_be_between" in text and "speech_accuracy" in text
    assert re.search(rf"threshold\s+{threshold:g}\b", text), "the threshold's own metadata row"
    assert re.search(rf"observed\s+{observed:g}\b", text), "the observed value's own metadata row"


def test_a_rejected_delivery_shows_its_reason(webserver, page):
    open_check_partition(page, webserver, "raw_items", "delivery_accepted", REJECTED)
    page.get_by_text("rejected: malformed_json").first.wait_for()
    shoot(page, "rejected_delivery")
    assert "Failed" in page.inner_text("body")
