"""Running the flow the way the sensors' runs do, one partition at a time, in process."""

import io

import dagster as dg
import pandas as pd

from assets.intake.raw_items import raw_items
from assets.release.industry_datasets import industry_datasets
from quality_checks.raw_items_checks import raw_items_catalog_rows_valid
from resources import CatalogResource
from simulator import make_delivery, upload_delivery
from simulator.annotation_tool import complete_batch
from simulator.annotators import Annotator


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


def intake_config(etags: dict[str, str]) -> dict:
    """The run config `client_uploads` gives an intake run: the manifest version of each delivery."""
    return {"ops": {"raw_items": {"config": {"manifest_etags": etags}}}}


def run_flow_for_delivery(
    instance, resources: dict, partition_key: str, etag: str | None = None
) -> dg.ExecuteInProcessResult:
    """The `intake_deliveries` job's assets for one delivery: intake, cleaning, batches; of manifest
    version `etag` as the sensor requests it, or of the current one (as a run launched by hand)."""
    from assets.annotation.annotation_batches import annotation_batches
    from assets.cleaning.clean_items import clean_items

    if not instance.has_dynamic_partition("deliveries", partition_key):
        instance.add_dynamic_partitions("deliveries", [partition_key])
    return dg.materialize(
        [raw_items, raw_items_catalog_rows_valid, clean_items, annotation_batches],
        instance=instance,
        partition_key=partition_key,
        resources=resources,
        run_config=intake_config({partition_key: etag}) if etag else None,
    )


def run_flow_for_range(
    instance, resources: dict, partition_keys: list[str], run_config: dict | None = None
) -> dg.ExecuteInProcessResult:
    """The same assets over consecutive new deliveries in one run, as `client_uploads` requests them."""
    from assets.annotation.annotation_batches import annotation_batches
    from assets.cleaning.clean_items import clean_items

    instance.add_dynamic_partitions("deliveries", partition_keys)
    return dg.materialize(
        [raw_items, raw_items_catalog_rows_valid, clean_items, annotation_batches],
        instance=instance,
        resources=resources,
        run_config=run_config,
        tags={
            "dagster/asset_partition_range_start": partition_keys[0],
            "dagster/asset_partition_range_end": partition_keys[-1],
        },
    )


def run_qa(instance, resources: dict, batch_id: str) -> dg.ExecuteInProcessResult:
    """The `annotation_qa` job's assets and checks for one batch; a blocked batch is a failed `qa_gate`
    check on a run that succeeded, a run fails only when something broke."""
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


# release tests are about what gets published, not about measuring quality: a flawless crew
CREW = [Annotator(2, 1.0, 20.0), Annotator(3, 1.0, 25.0), Annotator(4, 1.0, 30.0)]


class Base:
    def __init__(self, store_resource, resources, instance):
        self.store = store_resource.open()
        self.resources = resources
        self.instance = instance
        self.catalog = CatalogResource(object_store=store_resource).open()
        self.truth = {}

    def deliver_and_annotate(self, seed, client_id, delivery_id, modality, n_items, license="publishable"):
        industry = "energy" if client_id == "shanxi-coal-grid" else None  # a second energy client
        delivery = make_delivery(
            seed,
            client_id,
            delivery_id,
            modality,
            n_items,
            license=license,
            industry=industry,
            disagreement_rate=0.0,
        )
        upload_delivery(self.store, delivery)
        self.truth.update({f"{client_id}/{delivery_id}/{k}": v for k, v in delivery.truth.items()})
        assert run_flow_for_delivery(self.instance, self.resources, f"{client_id}/{delivery_id}").success
        for batch_id in self.catalog.query(
            "delivery_batches", client_id=client_id, delivery_id=delivery_id
        ).batch_id:
            complete_batch(self.store, batch_id, self.truth, CREW, seed=3)
            assert run_qa(self.instance, self.resources, batch_id).success
        return delivery

    def publish(self, industry: str) -> dict:
        result = dg.materialize(
            [industry_datasets], instance=self.instance, partition_key=industry, resources=self.resources
        )
        [materialization] = result.asset_materializations_for_node("industry_datasets")
        return {key: value.value for key, value in materialization.metadata.items()}

    def release_items(self, release: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.store.get(f"{release}/data/items.parquet")))


def operator_env(monkeypatch, resources: dict, signing) -> None:
    """The environment an operator's `annobase verify` / `annobase trace` would run in."""
    store = resources["object_store"]
    for name in ("ANNOBASE_LOCAL_STORE", "ANNOBASE_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    if store.local_root:
        monkeypatch.setenv("ANNOBASE_LOCAL_STORE", store.local_root)
    else:
        monkeypatch.setenv("ANNOBASE_S3_ENDPOINT_URL", store.endpoint_url)
    monkeypatch.setenv("ANNOBASE_BUCKET", store.bucket)
    monkeypatch.setenv("ANNOBASE_SIGNING_KEY", signing.key_path)


def delete_behind_annobase(store, key: str) -> None:
    """annobase never removes a published file (its store only discards unsigned versions):
    tampering goes around it."""
    if store.remote:
        store.client.delete_object(Bucket=store.bucket, Key=key)
    else:
        (store.root / key).unlink()
