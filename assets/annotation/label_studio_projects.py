"""Asset `label_studio_projects`: each new batch opened as a Label Studio project, ready for annotators."""

import json

import dagster as dg

from annobase.label_studio import BatchProject
from assets.annotation.annotation_batches import annotation_batches
from assets.partitions import deliveries_backfill_policy, deliveries_of, deliveries_partitions
from resources import CatalogResource, LabelStudioResource, ObjectStoreResource

PROJECT_NAME = "label_studio.json"


def project_record_key(batch_id: str) -> str:
    """Beside the batch's files: which Label Studio project holds it."""
    return f"batches/{batch_id}/{PROJECT_NAME}"


@dg.asset(
    partitions_def=deliveries_partitions,
    backfill_policy=deliveries_backfill_policy,
    deps=[annotation_batches],
    group_name="annotation",
    kinds={"labelstudio", "s3"},
    owners=["team:platform"],
    code_version="1",
)
def label_studio_projects(
    context: dg.AssetExecutionContext,
    object_store: ObjectStoreResource,
    catalog: CatalogResource,
    label_studio: LabelStudioResource,
) -> dg.MaterializeResult:
    """One Label Studio project per batch (config, tasks, media storage), recorded at
    `batches/{batch_id}/label_studio.json`; nothing when no Label Studio is configured."""
    projects = label_studio.open()
    if projects is None:
        return dg.MaterializeResult(metadata={"label_studio": "not configured: batches are files only"})
    store, writer = object_store.open(), catalog.open()
    # the embedded store has no URL Label Studio could fetch from: tasks open without their media
    media = None if object_store.local_root else label_studio.media(store.bucket)
    opened: list[BatchProject] = []
    for ref in deliveries_of(context):
        batches = writer.read_partition("batches", ref.partition_key, missing_ok=True)
        for batch_id in batches.get("batch_id", []):
            prefix = f"batches/{batch_id}/"
            plan = json.loads(store.get(prefix + "batch.json"))
            project = projects.open_batch(
                ref.client_id,
                ref.delivery_id,
                batch_id,
                json.loads(store.get(prefix + "tasks.json")),
                store.get(prefix + "config.xml").decode(),
                plan,
                media,
            )
            record = {
                "project_id": project.project_id,
                "url": project.url,
                "tasks_version": project.tasks_version,
            }
            store.put(project_record_key(batch_id), json.dumps(record, indent=1).encode())
            opened.append(project)
    table = "\n".join(
        ["| batch | project |", "|---|---|"]
        + [f"| {p.batch_id} | [{p.project_id}]({p.url}) |" for p in opened]
    )
    return dg.MaterializeResult(
        metadata={
            "projects": len(opened),
            "media": "S3 storage, presigned URLs" if media else "not reachable (embedded store)",
            "project_links": dg.MetadataValue.md(table),
            "dagster/row_count": len(opened),
        }
    )
