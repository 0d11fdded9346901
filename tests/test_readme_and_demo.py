"""The README's two commands are what CI and a new engineer run: CI runs the test command verbatim,
and `annobase demo` works on embedded defaults and is idempotent."""

import os
import re
import subprocess
import sys
from pathlib import Path

from annobase.object_store import LocalObjectStore
from resources.catalog import Catalog

REPO = Path(__file__).resolve().parents[1]
EIGHT_INDUSTRIES = (
    "transport",
    "medical",
    "education",
    "culture_tourism",
    "manufacturing",
    "energy",
    "urban_governance",
    "emergency_management",
)


def readme_commands() -> list[str]:
    section = REPO.joinpath("README.md").read_text().split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_ci_runs_the_readme_test_command_verbatim():
    demo, tests = readme_commands()
    assert demo.endswith("annobase demo") and "pytest" in tests
    assert tests in REPO.joinpath(".ci/run").read_text().splitlines()


def run_demo(workdir: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANNOBASE_", "DAGSTER_"))}
    env["HOME"] = str(workdir.parent)  # the development signing key is kept under $HOME
    return subprocess.run(
        [str(Path(sys.executable).with_name("annobase")), "demo", "--workdir", str(workdir)],
        cwd=workdir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # nine clients' deliveries through every step, on two shared cores
    )


def test_demo_runs_the_flow_and_is_idempotent(tmp_path):
    workdir = tmp_path / ".annobase"
    first = run_demo(workdir)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # one run per client for its new deliveries: the demo's 15 deliveries come from 9 clients
    assert "client_uploads took in 15 new deliveries in 9 runs (0 failed)" in first.stdout
    catalog = Catalog(LocalObjectStore(str(workdir / "store"), "annobase"))
    deliveries = catalog.query("delivery_summary")
    statuses = dict(zip(deliveries.client_id + "/" + deliveries.delivery_id, deliveries.status, strict=True))
    assert statuses["xiehe-clinic/d-2026-11-21-003"] == "rejected"
    assert statuses["jinneng-mine-safety/d-2026-11-20-003"] == "partially_accepted"
    assert sum(status == "accepted" for status in statuses.values()) == 13
    # the summary shows every industry of the Datong plan, each with a client of its own
    intake = catalog.query("intake_by_industry")
    assert intake.set_index("industry").deliveries.to_dict() == {
        **dict.fromkeys(EIGHT_INDUSTRIES, 1),
        "energy": 3,
        "cultural_heritage": 2,  # culture and tourism's heritage data, under the key its client uses
        "medical": 2,
        "education": 2,
        "(unreadable manifest)": 1,  # the clinic's malformed manifest names no industry readably
    }
    # urban governance's PII rule: its citizens' names and phone numbers never reach an annotator
    hotline = catalog.read_partition("clean_items", "datong-12345-hotline/d-2026-11-23-001")
    assert hotline.pii_masked.gt(0).any() and hotline.text.str.contains("[姓名]", regex=False).any()
    assert not hotline.text.str.contains(r"1[3-9][0-9]{9}").any()
    # the careless crew's batch is blocked and listed for rework; every other delivery is returned
    rework = catalog.query("rework_batches")
    assert set(rework.client_id + "/" + rework.delivery_id) == {"datong-schools/d-2026-11-22-002"}
    deliverable = catalog.query("deliverable_deliveries")
    returned = set(deliverable.client_id + "/" + deliverable.delivery_id)
    assert returned == set(statuses) - {"datong-schools/d-2026-11-22-002", "xiehe-clinic/d-2026-11-21-003"}
    for delivery in returned:
        assert (workdir / "store" / "annobase" / "deliveries" / delivery / "labels.parquet").exists()
    assert (workdir / "dagster_home" / "dagster.yaml").exists()
    # releases of the industries with publishable, gated data, each verified
    published = {line.split()[1] for line in first.stdout.splitlines() if line.startswith("published ")}
    # every industry with publishable gated data, not medical: the clinic's deliveries are private
    assert published == {
        f"datasets/{industry}/v0001"
        for industry in [*EIGHT_INDUSTRIES, "cultural_heritage"]
        if industry != "medical"
    }
    for release in published:
        assert f"verify {release}: OK" in first.stdout
    assert "ledger verify: OK" in first.stdout  # every client's provenance chain holds

    second = run_demo(workdir)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "uploaded 0 new deliveries" in second.stdout
    assert "client_uploads took in 0 new deliveries in 0 runs" in second.stdout
    assert "annotators finished 0 batches" in second.stdout
    assert "annotation_exports requested 0 QA runs" in second.stdout
    assert "returned 0 deliveries" in second.stdout
    assert "published " not in second.stdout and "nothing changed since v0001" in second.stdout
