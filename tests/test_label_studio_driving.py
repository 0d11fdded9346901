"""annobase driving Label Studio, the parts that need no server (the live loop is in
tests/test_label_studio_server.py, marked long): when a project counts as finished, its title, the
files-only mode without a server, and a blocked batch as a verdict on a succeeded run that the run-retry
daemon leaves alone, on the production instance configuration."""

import json
from pathlib import Path

import dagster as dg
import pytest
from flow_helpers import run_flow_for_delivery, run_qa

from annobase.label_studio import TITLE_CHARS, project_title, unfinished_tasks
from assets.annotation.label_studio_export import parse_export
from assets.annotation.label_studio_projects import label_studio_projects
from quality_checks.qa_gate import VERDICT_TAG
from resources import CatalogResource, LabelStudioResource, ObjectStoreResource
from sensors.label_studio_exports import label_studio_exports
from simulator import make_delivery, upload_delivery
from simulator.annotation_tool import complete_batch
from simulator.annotators import default_crew

FIXTURES = Path(__file__).resolve().parents[2] / "shared/fixtures/label-studio"
CREW = default_crew(seed=4)
BAD_CREW = [member for member in CREW if member.accuracy is None or member.accuracy < 0.9]


def plan_for(export: list[dict], annotators: int, review: list[str] | None = None) -> dict:
    tasks = [
        {"item_key": "{client_id}/{delivery_id}/{item_id}".format(**task["data"]), "annotators": annotators}
        for task in export
    ]
    return {"tasks": tasks, "review_item_keys": review or []}


def test_a_project_is_finished_when_every_task_has_its_answers_and_every_review_its_ground_truth():
    """On Label Studio's own export: t00000 has two answers, t00001 one answer and a ground truth."""
    export = json.loads((FIXTURES / "text.export.json").read_text())
    assert unfinished_tasks(export, plan_for(export, 1)) == []
    assert unfinished_tasks(export, plan_for(export, 2)) == ["demo-client/d-001/t00001: 1/2 answers"]
    reviewed = plan_for(export, 1, review=["demo-client/d-001/t00000", "demo-client/d-001/t00001"])
    assert unfinished_tasks(export, reviewed) == ["demo-client/d-001/t00000: not reviewed"]
    export[1]["annotations"][1]["was_cancelled"] = True  # a skipped task is not answered
    assert unfinished_tasks(export, plan_for(export, 1)) == ["demo-client/d-001/t00001: 0/1 answers"]


def test_annotators_are_known_by_the_email_an_expanded_export_gives():
    """An export snapshot with `completed_by` expanded names the user; ids alone leave it empty."""
    export = json.loads((FIXTURES / "text.export.json").read_text())
    plain = parse_export(json.dumps(export).encode(), "b-001", "text", ["hazard", "normal"])
    assert {row.annotator_email for row in plain.annotations} == {None}
    for task in export:
        for annotation in task["annotations"]:
            user = annotation["completed_by"]
            annotation["completed_by"] = {"id": user, "email": f"user{user}@annobase.test", "first_name": ""}
    named = parse_export(json.dumps(export).encode(), "b-001", "text", ["hazard", "normal"])
    assert {(row.annotator, row.annotator_email) for row in named.annotations} == {(1, "user1@annobase.test")}


def test_a_project_title_names_client_delivery_and_batch_within_label_studios_limit():
    longest = "c" * 64, "d" * 64, "c" * 16 + "-" + "d" * 16 + "-" + "x" * 20 + "-b12345"
    assert len(project_title(*longest)) <= TITLE_CHARS
    assert project_title("jinneng-mine-safety", "d-001", "jinneng-mine-saf-d-001-abc-b003") == (
        "jinneng-mine-safety / d-001 / b003"
    )


def test_without_label_studio_batches_stay_files_and_the_sensor_skips(tmp_path):
    store = ObjectStoreResource(local_root=str(tmp_path / "store"))
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("deliveries", ["c/d"])
        result = dg.materialize(
            [label_studio_projects],
            instance=instance,
            partition_key="c/d",
            resources={
                "object_store": store,
                "catalog": CatalogResource(object_store=store),
                "label_studio": LabelStudioResource(),
            },
        )
        [materialization] = result.asset_materializations_for_node("label_studio_projects")
        assert materialization.metadata["label_studio"].value.startswith("not configured")
        context = dg.build_sensor_context(
            instance=instance, resources={"object_store": store, "label_studio": LabelStudioResource()}
        )
        assert "not configured" in label_studio_exports(context).skip_message
    assert not list(store.open().list(""))


@pytest.fixture
def flow(s3_store, dask_cluster, postgres_instance):
    from conftest import annobase_resources

    return s3_store.open(), annobase_resources(s3_store, dask_cluster), postgres_instance


def test_a_blocked_batch_is_a_verdict_that_run_retries_never_touch(flow):
    """With `deploy/dagster.yaml` (run retries on, two of them), the retry daemon's own rule retries a QA
    run that broke, and never the run that blocked a careless crew's batch: that run succeeded, with the
    gate's check failed and the run tagged `annobase/verdict=blocked`."""
    from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry

    store, resources, instance = flow
    delivery = make_delivery(41, "yungang-grottoes", "d-verdict", "text", 20, disagreement_rate=0.0)
    upload_delivery(store, delivery)
    assert run_flow_for_delivery(instance, resources, "yungang-grottoes/d-verdict").success
    [batch_id] = (
        CatalogResource(object_store=resources["object_store"])
        .open()
        .query("delivery_batches", client_id="yungang-grottoes", delivery_id="d-verdict")
        .batch_id
    )

    broken = run_qa(instance, resources, batch_id)  # no export yet: something broke
    assert not broken.success
    assert should_retry(instance.get_run_by_id(broken.run_id), instance)

    truth = {f"yungang-grottoes/d-verdict/{item}": value for item, value in delivery.truth.items()}
    complete_batch(store, batch_id, truth, BAD_CREW, seed=3)
    blocked = run_qa(instance, resources, batch_id)
    gate = next(e for e in blocked.get_asset_check_evaluations() if e.check_name == "qa_gate")
    assert blocked.success and not gate.passed
    run = instance.get_run_by_id(blocked.run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags[VERDICT_TAG] == "blocked"
    assert not should_retry(run, instance)
