"""The production instance configuration (`deploy/dagster.yaml`) on a real PostgreSQL: runs, events and
dynamic partitions are stored there and read back."""

import dagster as dg
from flow_helpers import run_intake

from simulator import make_delivery, upload_delivery


def test_the_production_instance_is_postgres_with_queued_runs_and_retries(postgres_instance):
    assert type(postgres_instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(postgres_instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(postgres_instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert type(postgres_instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert postgres_instance.run_retries_enabled and postgres_instance.run_monitoring_enabled
    limits = postgres_instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": "annobase/client_id", "value": {"applyLimitPerUniqueValue": True}, "limit": 4} in limits


def test_intake_materialises_on_postgres_and_its_events_read_back(postgres_instance, s3_store, dask_cluster):
    from conftest import annobase_resources

    store = s3_store.open()
    upload_delivery(store, make_delivery(9, "xiehe-clinic", "d-pg-001", "text", 4))

    resources = annobase_resources(s3_store, dask_cluster)
    result = run_intake(postgres_instance, resources, "xiehe-clinic/d-pg-001")

    assert postgres_instance.get_dynamic_partitions("deliveries") == ["xiehe-clinic/d-pg-001"]
    run = postgres_instance.get_run_by_id(result.run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    event = postgres_instance.get_latest_materialization_event(dg.AssetKey("raw_items"))
    assert event.run_id == result.run_id
    materialization = event.asset_materialization
    assert materialization.partition == "xiehe-clinic/d-pg-001"
    assert materialization.metadata["items_accepted"].value == 4
    assert materialization.metadata["status"].value == "accepted"
    checks = postgres_instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("raw_items"), "raw_items_catalog_rows_valid")]
    )
    [execution] = checks.values()
    assert execution.run_id == result.run_id and execution.status.value == "SUCCEEDED"
