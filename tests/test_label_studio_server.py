"""The annotation loop on a live Label Studio 1.23.2 (started by this module, SQLite, loopback): annobase
opens each batch as a project with its media reachable through Label Studio, simulated annotators answer
through Label Studio's API, the `label_studio_exports` sensor writes the finished project's own export,
and the export goes through `annotation_exports` to the gate. A careless crew's batch is blocked as a
verdict on a run that succeeded, which run retries never touch.
"""

import hashlib
import json

import dagster as dg
import httpx
import pytest
from flow_helpers import run_qa
from label_studio_server import ADMIN, LabelStudioServer

from annobase.keys import export_key
from annobase.label_studio import REVIEW_META
from assets.annotation.annotation_batches import annotation_batches
from assets.annotation.label_studio_projects import label_studio_projects, project_record_key
from assets.cleaning.clean_items import clean_items
from assets.intake.raw_items import raw_items
from quality_checks.qa_gate import VERDICT_TAG
from quality_checks.raw_items_checks import raw_items_catalog_rows_valid
from resources import CatalogResource, LabelStudioResource
from sensors.annotation_exports import annotation_exports
from sensors.label_studio_exports import label_studio_exports
from simulator import make_delivery, upload_delivery
from simulator.annotators import default_crew
from simulator.label_studio_crew import annotate_project

# Label Studio's first install and migration take 5-10 minutes on a fresh machine and the module 6-10
# more on two busy cores: a long run (`pytest -m long`); tests/test_label_studio_driving.py is the quick part
pytestmark = pytest.mark.long

CREW = default_crew(seed=4)
GOOD_CREW = [member for member in CREW if member.accuracy is not None and member.accuracy > 0.9]
BAD_CREW = [member for member in CREW if member not in GOOD_CREW]  # the careless one and the spammer


@pytest.fixture(scope="module")
def label_studio(seaweedfs):
    """One server for the module, started after SeaweedFS's credentials are in the environment it
    inherits, with the store's endpoint as its own `S3_ENDPOINT` (Label Studio presigns media URLs
    with them; an endpoint given per project may not be a loopback address)."""
    with LabelStudioServer(env={"S3_ENDPOINT": seaweedfs.endpoint_url}) as server:
        server.reviewer = server.add_user("reviewer@annobase.test")
        server.crew = {
            member: server.add_user(f"annotator-{member.annotator_id}@annobase.test") for member in CREW
        }
        yield server


@pytest.fixture
def flow(s3_store, dask_cluster, instance, label_studio, seaweedfs):
    from conftest import annobase_resources

    return {
        "store": s3_store.open(),
        "resources": {
            **annobase_resources(s3_store, dask_cluster),
            "label_studio": LabelStudioResource(
                url=label_studio.url,
                api_key=label_studio.token,
                media_region=seaweedfs.region,
            ),
        },
        "catalog": CatalogResource(object_store=s3_store).open(),
        "instance": instance,
        "ls": label_studio,
    }


def deliver(flow, seed: int, client_id: str, delivery_id: str, modality: str, n_items: int):
    """Upload, then the `intake_deliveries` job's assets, Label Studio projects included."""
    delivery = make_delivery(seed, client_id, delivery_id, modality, n_items, disagreement_rate=0.0)
    upload_delivery(flow["store"], delivery)
    partition = f"{client_id}/{delivery_id}"
    flow["instance"].add_dynamic_partitions("deliveries", [partition])
    result = dg.materialize(
        [raw_items, raw_items_catalog_rows_valid, clean_items, annotation_batches, label_studio_projects],
        instance=flow["instance"],
        partition_key=partition,
        resources=flow["resources"],
    )
    assert result.success
    batches = flow["catalog"].query("delivery_batches", client_id=client_id, delivery_id=delivery_id)
    return delivery, batches.batch_id.tolist()


def sensor_tick(flow, sensor, cursor=None):
    context = dg.build_sensor_context(
        instance=flow["instance"],
        cursor=cursor,
        resources={
            "object_store": flow["resources"]["object_store"],
            "label_studio": flow["resources"]["label_studio"],
        },
    )
    return sensor(context)


def export_tick(flow) -> str:
    """Every page of projects once, as consecutive ticks would; returns the last tick's summary."""
    cursor, summary = None, ""
    while True:
        result = sensor_tick(flow, label_studio_exports, cursor)
        summary += result.skip_reason.skip_message + "\n"
        if json.loads(result.cursor)["page"] == 1:
            return summary
        cursor = result.cursor


def project_of(flow, batch_id: str) -> int:
    return json.loads(flow["store"].get(project_record_key(batch_id)))["project_id"]


def work(flow, batch_id: str, crew, seed: int, **options) -> int:
    plan = json.loads(flow["store"].get(f"batches/{batch_id}/batch.json"))
    ls = flow["ls"]
    return annotate_project(
        ls.url,
        ls.headers,
        project_of(flow, batch_id),
        plan,
        flow["truth"],
        [(ls.crew[member], member) for member in crew],
        ls.reviewer,
        seed=seed,
        **options,
    )


def check_evaluation(result: dg.ExecuteInProcessResult, name: str):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


@pytest.mark.parametrize("modality", ["text", "image"])
def test_a_delivery_goes_from_upload_through_label_studio_to_a_passed_gate(flow, modality):
    client, delivery_id = "jinneng-mine-safety", f"d-ls-{modality}"
    delivery, batch_ids = deliver(flow, 31, client, delivery_id, modality, 24)
    flow["truth"] = {f"{client}/{delivery_id}/{item}": truth for item, truth in delivery.truth.items()}
    ls = flow["ls"]
    for batch_id in batch_ids:
        project_id = project_of(flow, batch_id)
        project = ls.api("GET", f"/api/projects/{project_id}").json()
        plan = json.loads(flow["store"].get(f"batches/{batch_id}/batch.json"))
        assert project["title"].startswith(f"{client[:20]} / {delivery_id} / b")
        assert project["label_config"] == flow["store"].get(f"batches/{batch_id}/config.xml").decode()
        tasks = ls.api("GET", "/api/tasks/", params={"project": project_id, "page_size": 1000}).json()[
            "tasks"
        ]
        asked = {t["item_key"]: t["annotators"] for t in plan["tasks"]}
        overlap = {
            f"{t['data']['client_id']}/{t['data']['delivery_id']}/{t['data']['item_id']}": t["overlap"]
            for t in tasks
        }
        assert overlap == asked  # each task asks Label Studio for as many annotators as the batch does
        review = set(plan.get("review_item_keys") or [])
        assert {
            key for key, task in zip(overlap, tasks, strict=True) if task["meta"] == REVIEW_META
        } == review

        if modality == "image":
            # the annotator's editor gets the image through Label Studio: the task's resolved URL,
            # then Label Studio's redirect to a presigned URL of the store
            task = ls.api("GET", f"/api/tasks/{tasks[0]['id']}").json()
            assert not task["data"]["image"].startswith("s3://")
            media = httpx.get(
                httpx.URL(ls.url).join(task["data"]["image"]), headers=ls.headers, follow_redirects=True
            )
            media.raise_for_status()
            item = next(i for i in delivery.manifest["items"] if i["item_id"] == task["data"]["item_id"])
            assert hashlib.sha256(media.content).hexdigest() == item["files"]["image"]["sha256"]

        # partly done: the sensor leaves the project alone; then the rest, the reviewer's answers too
        done = work(flow, batch_id, GOOD_CREW, seed=5, stop_after=3)
        assert "exports written for none" in export_tick(flow)
        assert flow["store"].head(export_key(batch_id)) is None
        work(flow, batch_id, GOOD_CREW, seed=5, skip=done)

    export_tick(flow)
    for batch_id in batch_ids:
        written = flow["store"].head(export_key(batch_id))
        assert written is not None
        export = json.loads(flow["store"].get(export_key(batch_id)))
        # Label Studio's own export, annotators as users with their e-mail
        emails = {a["completed_by"]["email"] for task in export for a in task["annotations"]}
        crew = {f"annotator-{member.annotator_id}@annobase.test" for member in GOOD_CREW}
        assert "reviewer@annobase.test" in emails and emails & crew
        assert emails <= crew | {"reviewer@annobase.test", ADMIN}
        # exported once per change: another pass over the projects writes nothing
        export_tick(flow)
        assert flow["store"].head(export_key(batch_id)).last_modified == written.last_modified

        # from here the path of any tool's export: annotation_exports requests QA, the gate passes
        requests = sensor_tick(flow, annotation_exports).run_requests
        assert batch_id in {request.partition_key for request in requests}
        result = run_qa(flow["instance"], flow["resources"], batch_id)
        assert result.success and check_evaluation(result, "qa_gate").passed
        assert flow["instance"].get_run_by_id(result.run_id).tags[VERDICT_TAG] == "passed"
        # scorecards and trace know the annotators by their Label Studio e-mail
        cards = flow["catalog"].read_partition("scorecards", batch_id)
        assert (
            set(cards.annotator_email) <= crew | {"reviewer@annobase.test"}
            and cards.annotator_email.notna().all()
        )
        item_key = "{client_id}/{delivery_id}/{item_id}".format(**export[0]["data"])
        traced = flow["catalog"].query("trace_annotations", item_key=item_key)
        assert traced.annotator_email.notna().all() and len(traced)


def test_a_careless_crews_batch_is_a_verdict_not_an_outage(flow, postgres_instance):
    """Blocked by the gate on a run that succeeded, tagged as a verdict; the run-retry daemon's own rule
    (on the production instance config, run retries on) retries a broken QA run but never this one."""
    from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry

    flow["instance"] = postgres_instance
    client, delivery_id = "yungang-grottoes", "d-ls-careless"
    delivery, [batch_id] = deliver(flow, 32, client, delivery_id, "text", 20)
    flow["truth"] = {f"{client}/{delivery_id}/{item}": truth for item, truth in delivery.truth.items()}

    broken = run_qa(postgres_instance, flow["resources"], batch_id)  # no export yet: something broke
    assert not broken.success
    assert should_retry(postgres_instance.get_run_by_id(broken.run_id), postgres_instance)

    # the careless annotator and the spammer, with one good annotator so every overlap can be met
    work(flow, batch_id, [*BAD_CREW, GOOD_CREW[0]], seed=7)
    export_tick(flow)
    assert flow["store"].head(export_key(batch_id)) is not None
    result = run_qa(postgres_instance, flow["resources"], batch_id)
    gate = check_evaluation(result, "qa_gate")
    assert result.success and not gate.passed
    assert gate.metadata["observed"].value < gate.metadata["threshold"].value
    run = postgres_instance.get_run_by_id(result.run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags[VERDICT_TAG] == "blocked"
    assert not should_retry(run, postgres_instance)
    assert flow["catalog"].query("rework_batches").batch_id.tolist() == [batch_id]
