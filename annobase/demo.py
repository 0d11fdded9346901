"""`annobase demo`: the flow end to end on embedded defaults, with simulated clients and annotators.

Local-directory store, SQLite Dagster instance and a LocalCluster, all under `.annobase/`. The
sensor is evaluated as the daemon would, and each run request is executed in process against
the real code location, so the Dagster UI pointed at the same DAGSTER_HOME shows every run.
Idempotent: the simulator is deterministic, identical uploads keep their ETags, and a run key
that already ran is not run again.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

RUN_KEY_TAG = "dagster/run_key"
# The tags a run launched by the daemon carries: the UI files a run under its code location's job by the
# repository label, and under its sensor or schedule (and "launched by") by its name; the sensor daemon
# also reads a run key as taken only when the run names its sensor, so a daemon started after the demo
# requests none of the demo's runs again.
REPOSITORY_TAG = ".dagster/repository"
REPOSITORY_LABEL = "__repository__@annobase"  # workspace.yaml's location, Definitions' repository


def launched_by(kind: str, name: str) -> dict[str, str]:
    """Tags of a run the `kind` ("sensor" or "schedule") named `name` launched."""
    return {REPOSITORY_TAG: REPOSITORY_LABEL, f"dagster/{kind}_name": name}


# the batches of this delivery go to the careless crew: the demo shows the gate blocking them
CARELESS_DELIVERY = "d-2026-11-22-002"


@dataclass(frozen=True)
class DemoDelivery:
    client_id: str
    delivery_id: str
    modality: str
    license: str = "publishable"
    failure: str | None = None  # a simulator failure mode: what a careless client gets wrong
    items: int | None = None  # fewer items than the demo's default, to keep the demo quick


DEMO_DELIVERIES = (
    DemoDelivery("jinneng-mine-safety", "d-2026-11-20-001", "text"),
    DemoDelivery("jinneng-mine-safety", "d-2026-11-20-002", "multimodal"),
    DemoDelivery("jinneng-mine-safety", "d-2026-11-20-003", "speech", failure="sha256_mismatch"),
    DemoDelivery("yungang-grottoes", "d-2026-11-20-001", "image"),
    DemoDelivery("yungang-grottoes", "d-2026-11-20-002", "multimodal"),
    DemoDelivery("xiehe-clinic", "d-2026-11-21-001", "text", license="private"),
    DemoDelivery("xiehe-clinic", "d-2026-11-21-002", "speech", license="private"),
    DemoDelivery("xiehe-clinic", "d-2026-11-21-003", "text", failure="malformed_json"),
    DemoDelivery("datong-schools", "d-2026-11-22-001", "text"),
    DemoDelivery("datong-schools", "d-2026-11-22-002", "speech"),
    # a client of each further industry of the Datong plan, with a small delivery
    DemoDelivery("datong-transit", "d-2026-11-23-001", "text", items=8),
    DemoDelivery("datong-tourism", "d-2026-11-23-001", "text", items=8),
    DemoDelivery("datong-gear-works", "d-2026-11-23-001", "text", items=8),
    DemoDelivery("datong-12345-hotline", "d-2026-11-23-001", "text", items=8),
    DemoDelivery("datong-emergency", "d-2026-11-23-001", "text", items=8),
)


def prepare_environment(workdir: Path) -> None:
    """Embedded defaults, unless the operator configured something else."""
    os.environ.setdefault("ANNOBASE_LOCAL_STORE", str(workdir / "store"))
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(workdir / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")


STARTER_ITEMS = 20  # per industry and modality


def upload_simulated_deliveries(store, items_per_delivery: int, seed: int) -> tuple[int, dict[str, dict]]:
    """Write the simulated clients' deliveries, skipping any already there byte for byte.

    Returns how many were new and the truth of every item (keyed by item_key), for the annotators.
    The base's curators also lay down a starter gold set per industry and modality (honeypots for
    clients with no gold of their own yet), whose truth is included.
    """
    from simulator import CLIENTS, FAILURE_MODES, make_delivery, upload_bad_delivery, upload_delivery
    from simulator.starter_gold import curate_starter_gold

    uploaded, truth = 0, {}
    for industry, modality in sorted({(CLIENTS[s.client_id].industry, s.modality) for s in DEMO_DELIVERIES}):
        truth.update(curate_starter_gold(store, industry, modality, n_items=STARTER_ITEMS, seed=seed))
    for number, spec in enumerate(DEMO_DELIVERIES):
        delivery = make_delivery(
            seed + number,
            spec.client_id,
            spec.delivery_id,
            spec.modality,
            min(spec.items or items_per_delivery, items_per_delivery),
            license=spec.license,
            # parts of a multimodal item that truly disagree: rare in the demo's clients' data
            disagreement_rate=0.02,
        )
        prefix = f"{spec.client_id}/{spec.delivery_id}/"
        truth.update({prefix + item_id: item_truth for item_id, item_truth in delivery.truth.items()})
        manifest_key = f"uploads/{prefix}manifest.json"
        if spec.failure:
            bad = FAILURE_MODES[spec.failure](delivery)
            if _unchanged(store, manifest_key, bad.manifest_bytes):
                continue
            upload_bad_delivery(store, bad)
        else:
            if _unchanged(store, manifest_key, delivery.manifest_bytes):
                continue
            upload_delivery(store, delivery)
        uploaded += 1
    return uploaded, truth


def annotate_new_batches(store, catalog, truth: dict[str, dict], seed: int) -> list[str]:
    """The annotation tool finishes every batch that has no export yet; one careless crew gets a batch."""
    from simulator.annotation_tool import complete_batch
    from simulator.annotators import default_crew

    crew = default_crew(seed)
    careless = [member for member in crew if member.accuracy is None or member.accuracy < 0.9]
    # the demo's batches are small (a few gold answers, eight multimodal items with audio), where one
    # slip moves a score by ten points: its good annotators make none, so the batch the gate blocks is
    # the careless crew's (the tests measure real accuracies at realistic sizes)
    good = [replace(member, accuracy=1.0) for member in crew if member not in careless]
    finished = []
    batches = catalog.query("all_batches")
    for batch_id, delivery_id in zip(batches.batch_id, batches.delivery_id, strict=True):
        if store.head(f"annotations/{batch_id}/export.json") is None:
            crew_of_batch = careless if delivery_id == CARELESS_DELIVERY else good
            complete_batch(store, batch_id, truth, crew_of_batch, seed)
            finished.append(batch_id)
    return finished


def _unchanged(store, key: str, data: bytes) -> bool:
    import hashlib

    head = store.head(key)
    return head is not None and head.etag == hashlib.md5(data, usedforsecurity=False).hexdigest()


def run_sensor_tick(instance, defs, sensor_name: str, job_name: str, store_resource, console: Console):
    """One tick of a sensor, executed as the daemon would: new partitions, then each run key not yet run.

    Returns (runs launched, runs failed or batches blocked, partitions covered): a batch the gate
    blocks is a verdict on a run that succeeded (tagged annobase/verdict=blocked), counted with the
    failures here; an intake run covers a client's new deliveries of the tick.
    """
    import dagster as dg

    from resources import CatalogResource

    sensor = defs.resolve_sensor_def(sensor_name)
    resources = {"object_store": store_resource, "catalog": CatalogResource(object_store=store_resource)}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = sensor(context)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    todo = [
        request
        for request in result.run_requests
        if not instance.get_run_ids(dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key}), limit=1)
    ]
    runs, failed = run_requests(
        instance, defs.resolve_job_def(job_name), todo, console, launched_by("sensor", sensor_name)
    )
    return runs, failed, sum(int(request.tags.get("annobase/deliveries", "1")) for request in todo)


def run_requests(instance, job, requests, console: Console, tags: dict[str, str]) -> tuple[int, int]:
    failed = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(job.name, total=len(requests))
        for request in requests:
            covers = request.partition_key or (
                f"{request.partition_key_range.start}..{request.partition_key_range.end}"
            )
            progress.update(task, description=f"{job.name} {covers}")
            outcome = job.execute_in_process(
                instance=instance,
                partition_key=request.partition_key,
                tags={**request.tags, **tags, **({RUN_KEY_TAG: request.run_key} if request.run_key else {})},
                # the request's own config too: intake reads the manifest versions it names
                run_config={
                    **request.run_config,
                    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
                },
                raise_on_error=False,
            )
            verdict = instance.get_run_by_id(outcome.run_id).tags.get("annobase/verdict")
            failed += not outcome.success or verdict == "blocked"
            progress.advance(task)
    return len(requests), failed


def publish_releases(instance, defs, console: Console) -> list[str]:
    """What `nightly_publish` does at 02:00: each industry, a new release only where something changed."""
    import dagster as dg

    from assets.partitions import industries_partitions

    job = defs.resolve_job_def("publish_industry_datasets")
    requests = [
        dg.RunRequest(partition_key=industry, run_key=None)
        for industry in industries_partitions.get_partition_keys()
    ]
    released = []
    for request in requests:
        result = job.execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            tags=launched_by("schedule", "nightly_publish"),
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
        [materialization] = result.asset_materializations_for_node("industry_datasets")
        metadata = {key: value.value for key, value in materialization.metadata.items()}
        if metadata.get("released"):
            released.append(metadata["release"])
            console.print(f"published {metadata['release']} ({metadata['items']} items)")
        else:
            console.print(f"{request.partition_key}: no new release ({metadata.get('reason')})")
    return released


def delivery_decisions(instance, catalog, store) -> list:
    """What `delivery_completion` decides after the QA runs: a run for each delivery whose batches all
    passed and that was not returned yet; every other delivery's `delivery_returned` check says why."""
    import dagster as dg

    from annobase.keys import DeliveryRef
    from sensors.delivery_completion import delivery_request, with_its_check

    deliveries = catalog.query("delivery_summary")
    requests = []
    for client, delivery in zip(deliveries.client_id, deliveries.delivery_id, strict=True):
        ref = DeliveryRef(client, delivery)
        decision = with_its_check(instance, ref, delivery_request(store, catalog, ref))
        if isinstance(decision, dg.SensorResult):
            for event in decision.asset_events:
                instance.report_runless_asset_event(event)
        elif (
            isinstance(decision, dg.RunRequest)
            and store.head(f"deliveries/{client}/{delivery}/delivery.json") is None
        ):
            requests.append(decision)
    return requests


def summary_tables(catalog) -> list[Table]:
    tables = []
    for query, title in (
        ("intake_by_industry", "Intake by industry"),
        ("industry_quality", "Annotation quality by industry (batches gated by Great Expectations)"),
        ("rework_batches", "Blocked batches, listed for rework"),
        ("annotator_scorecards_rolling", "Annotator scorecards, all batches so far"),
        ("release_summary", "Published releases (datasets/{industry}/LATEST)"),
    ):
        frame = catalog.query(query)
        table = Table(title=title)
        for column in frame.columns:
            table.add_column(str(column))
        for row in frame.itertuples(index=False):
            table.add_row(*(str(value) for value in row))
        tables.append(table)
    return tables


def run_demo(workdir: Path, items_per_delivery: int, seed: int) -> int:
    console = Console(width=None if sys.stdout.isatty() else 150)
    prepare_environment(workdir)
    from distributed import LocalCluster

    from assets import worker_kernels

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        preload=[worker_kernels.__name__],
    ) as cluster:
        os.environ["ANNOBASE_DASK_ADDRESS"] = cluster.scheduler_address
        import dagster as dg

        from annobase.ledger_cli import run_ledger_verify
        from annobase.verify import run_verify
        from orchestration.definitions import defs
        from resources import CatalogResource, object_store_from_env

        store_resource = object_store_from_env().process_config_and_initialize()
        store = store_resource.open()
        uploaded, truth = upload_simulated_deliveries(store, items_per_delivery, seed)
        console.print(f"simulated clients uploaded {uploaded} new deliveries to {store.url()}")
        catalog = CatalogResource(object_store=store_resource).open()
        with dg.DagsterInstance.get() as instance:
            runs, failed, deliveries = run_sensor_tick(
                instance, defs, "client_uploads", "intake_deliveries", store_resource, console
            )
            console.print(
                f"client_uploads took in {deliveries} new deliveries in {runs} runs ({failed} failed)"
            )
            finished = annotate_new_batches(store, catalog, truth, seed)
            console.print(f"simulated annotators finished {len(finished)} batches")
            runs, blocked, _ = run_sensor_tick(
                instance, defs, "annotation_exports", "annotation_qa", store_resource, console
            )
            console.print(f"annotation_exports requested {runs} QA runs ({blocked} blocked by the gate)")
            returned, _ = run_requests(
                instance,
                defs.resolve_job_def("return_client_delivery"),
                delivery_decisions(instance, catalog, store),
                console,
                launched_by("sensor", "delivery_completion"),
            )
            console.print(f"returned {returned} deliveries to their clients under deliveries/")
            defs.resolve_job_def("refresh_annotator_scorecards").execute_in_process(
                instance=instance,
                tags=launched_by("schedule", "hourly_scorecards"),
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            )
            releases = publish_releases(instance, defs, console)
        for release in releases:
            code = run_verify(release, None)
            console.print(f"verify {release}: {'OK' if code == 0 else 'MISMATCH'}")
        console.print(f"ledger verify: {'OK' if run_ledger_verify(None) == 0 else 'BROKEN'}")
        for table in summary_tables(catalog):
            console.print(table)
    console.print(
        "\nSee it in the Dagster UI:\n"
        f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} "
        f"ANNOBASE_LOCAL_STORE={os.environ['ANNOBASE_LOCAL_STORE']} .venv/bin/dagster dev -w workspace.yaml\n"
        "  then open http://127.0.0.1:3000/asset-groups (lineage: intake → cleaning → annotation → quality →"
        " delivery; the qa_results checks show why a batch was blocked)."
    )
    return 0
