"""Nothing dropped silently under ordinary concurrency (issue 14 §0): twenty rework exports land at once,
the event-driven `delivery_completion` misses some of its evaluations (as when one raises), and
`reconciliation` re-derives the rest from state; every delivery is returned, none twice.

Runs are executed as the daemon launches them: each sensor's requests, a run key launched once.
"""

from pathlib import Path

import dagster as dg
import pytest
from flow_helpers import CREW

import assets.definitions
import orchestration.jobs
import quality_checks
from annobase.keys import DeliveryRef
from annobase.settings import DEFAULT_CONFIG, load_settings
from resources import SigningKeyResource
from sensors.annotation_exports import annotation_exports
from sensors.delivery_completion import delivery_request
from sensors.reconciliation import reconciliation
from simulator import make_delivery, upload_delivery
from simulator.annotation_tool import complete_batch
from simulator.annotators import default_crew

RUN_KEY_TAG = "dagster/run_key"
# batches of five tasks, where one slip of a good annotator moves a score by twenty points: the rework
# crew is flawless (what is tested is that every verdict leads to exactly one delivery)
BAD = [member for member in default_crew(seed=4) if member.accuracy is None or member.accuracy < 0.9]
DELIVERIES = [
    DeliveryRef(client, f"d-rec-{n:03d}")
    for client in ("datong-schools", "yungang-grottoes")
    for n in (1, 2, 3, 4, 5)
]


@pytest.fixture
def small_batches(tmp_path, monkeypatch):
    """Batches of five tasks, so ten small deliveries make twenty batches."""
    default = DEFAULT_CONFIG.read_text()
    assert "\nbatch_size = 50\n" in default
    path = Path(tmp_path / "annobase.toml")
    path.write_text(default.replace("\nbatch_size = 50\n", "\nbatch_size = 5\n"))
    monkeypatch.setenv("ANNOBASE_CONFIG", str(path))
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


@pytest.fixture
def base(s3_store, dask_cluster, instance, small_batches):
    from conftest import annobase_resources

    resources = annobase_resources(s3_store, dask_cluster)
    # no release is published here; the code location just needs every resource its assets name
    resources["signing_key"] = SigningKeyResource(key_path=None)
    defs = dg.Definitions.merge(
        assets.definitions.defs,
        quality_checks.defs,
        orchestration.jobs.jobs_defs,
        dg.Definitions(resources=resources),
    )
    return {"store": s3_store.open(), "resources": resources, "defs": defs, "instance": instance}


def launch(base, requests, job_name: str | None = None) -> list[dg.ExecuteInProcessResult]:
    """What the daemon does with a sensor's requests: each run key launched once."""
    results = []
    for request in requests:
        if request.run_key and base["instance"].get_run_records(
            dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key}), limit=1
        ):
            continue
        job = base["defs"].resolve_job_def(request.job_name or job_name)
        results.append(
            job.execute_in_process(
                instance=base["instance"],
                partition_key=request.partition_key,
                tags={**request.tags, RUN_KEY_TAG: request.run_key},
                raise_on_error=False,
            )
        )
    return results


def tick(base, sensor, cursor=None) -> dg.SensorResult:
    from resources import CatalogResource

    store = base["resources"]["object_store"]
    with dg.build_sensor_context(
        instance=base["instance"],
        cursor=cursor,
        resources={"object_store": store, "catalog": CatalogResource(object_store=store)},
    ) as context:
        return sensor(context)


def test_twenty_rework_exports_at_once_every_delivery_returned_none_twice(base, monkeypatch):
    from resources import CatalogResource

    store, instance = base["store"], base["instance"]
    catalog = CatalogResource(object_store=base["resources"]["object_store"]).open()
    truth = {}
    for number, ref in enumerate(DELIVERIES):
        delivery = make_delivery(
            60 + number, ref.client_id, ref.delivery_id, "text", 10, disagreement_rate=0.0
        )
        upload_delivery(store, delivery)
        truth.update({f"{ref.partition_key}/{item}": value for item, value in delivery.truth.items()})
    # manifests this fresh are the event sensor's (it may be evaluating them right now): left alone
    assert tick(base, reconciliation).run_requests == []
    monkeypatch.setenv("ANNOBASE_RECONCILE_GRACE_SECONDS", "0")  # from here on, every event is settled
    intake = tick(base, reconciliation)  # nothing taken in yet: reconciliation finds every manifest
    for request in intake.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert all(result.success for result in launch(base, intake.run_requests))
    batches = catalog.query("all_batches")
    assert len(batches) == 20

    # a careless crew, every task reviewed (five gold labels a batch, enough to tell): all blocked
    for batch_id in batches.batch_id:
        complete_batch(store, batch_id, truth, BAD, seed=5, review_rate=1.0)
    first = tick(base, annotation_exports)
    launch(base, first.run_requests, "annotation_qa")
    assert not catalog.query("deliverable_deliveries").shape[0]

    for batch_id in batches.batch_id:  # twenty rework exports land at once
        complete_batch(store, batch_id, truth, CREW, seed=6, review_rate=0.5)
    rework = tick(base, annotation_exports, first.cursor)
    assert len(rework.run_requests) == 20
    qa_runs = launch(base, rework.run_requests, "annotation_qa")
    assert len(qa_runs) == 20

    # delivery_completion after every QA run, all evaluated once the runs are done (the race that
    # asked twice); the evaluations of two deliveries are lost, as when an evaluation raises
    lost = {DELIVERIES[0], DELIVERIES[7]}
    requests = []
    for batch_id in batches.batch_id:
        row = batches[batches.batch_id == batch_id].iloc[0]
        ref = DeliveryRef(row.client_id, row.delivery_id)
        if ref not in lost:
            decision = delivery_request(store, catalog, ref)
            assert isinstance(decision, dg.RunRequest), decision
            requests.append(decision)
    assert len({request.run_key for request in requests}) == len(DELIVERIES) - len(lost)
    launch(base, requests, "return_client_delivery")

    recovered = tick(base, reconciliation)
    assert {request.partition_key for request in recovered.run_requests} == {
        ref.partition_key for ref in lost
    }
    assert all(result.success for result in launch(base, recovered.run_requests))

    for ref in DELIVERIES:
        assert store.head(f"deliveries/{ref.client_id}/{ref.delivery_id}/delivery.json") is not None
        runs = instance.get_run_records(
            dg.RunsFilter(job_name="return_client_delivery", tags={"dagster/partition": ref.partition_key})
        )
        assert len(runs) == 1, f"{ref.partition_key} was returned {len(runs)} times"
    assert tick(base, reconciliation, recovered.cursor).run_requests == []
