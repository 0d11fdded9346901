"""Running the flow the way the sensors' runs do, one partition at a time, in process."""

import dagster as dg

from assets.intake.raw_items import raw_items
from quality_checks.raw_items_checks import raw_items_catalog_rows_valid


def run_intake(instance, resources: dict, partition_key: str) -> dg.ExecuteInProcessResult:
    if not instance.has_dynamic_partition("deliveries", partition_key):
        instance.add_dynamic_partitions("deliveries", [partition_key])
    return dg.materialize(
        [raw_items, raw_items_catalog_rows_valid],
        instance=instance,
        partition_key=partition_key,
        resources=resources,
        raise_on_error=True,
    )


def snapshot(store, prefix: str) -> dict[str, bytes]:
    return {obj.key: store.get(obj.key) for obj in store.list(prefix)}


def run_flow_for_delivery(instance, resources: dict, partition_key: str) -> dg.ExecuteInProcessResult:
    """The `intake_deliveries` job's assets for one delivery: intake, cleaning, batches."""
    from assets.annotation.annotation_batches import annotation_batches
    from assets.cleaning.clean_items import clean_items

    if not instance.has_dynamic_partition("deliveries", partition_key):
        instance.add_dynamic_partitions("deliveries", [partition_key])
    return dg.materialize(
        [raw_items, raw_items_catalog_rows_valid, clean_items, annotation_batches],
        instance=instance,
        partition_key=partition_key,
        resources=resources,
    )


def run_flow_for_range(instance, resources: dict, partition_keys: list[str]) -> dg.ExecuteInProcessResult:
    """The same assets over consecutive new deliveries in one run, as `client_uploads` requests them."""
    from assets.annotation.annotation_batches import annotation_batches
    from assets.cleaning.clean_items import clean_items

    instance.add_dynamic_partitions("deliveries", partition_keys)
    return dg.materialize(
        [raw_items, raw_items_catalog_rows_valid, clean_items, annotation_batches],
        instance=instance,
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": partition_keys[0],
            "dagster/asset_partition_range_end": partition_keys[-1],
        },
    )


def run_qa(instance, resources: dict, batch_id: str) -> dg.ExecuteInProcessResult:
    """The `annotation_qa` job's assets and checks for one batch; a failed gate fails the run."""
    from assets.annotation.batch_annotations import batch_annotations
    from assets.quality.qa_results import qa_results
    from quality_checks.qa_gate import qa_gate, qa_tables_valid

    return dg.materialize(
        [batch_annotations, qa_results, qa_gate, qa_tables_valid],
        instance=instance,
        partition_key=batch_id,
        resources=resources,
        raise_on_error=False,
    )


def run_client_delivery(instance, resources: dict, partition_key: str) -> dg.ExecuteInProcessResult:
    from assets.delivery.client_deliveries import client_deliveries

    return dg.materialize(
        [client_deliveries],
        instance=instance,
        partition_key=partition_key,
        resources=resources,
        raise_on_error=False,
    )
