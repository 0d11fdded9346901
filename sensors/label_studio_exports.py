"""Sensor `label_studio_exports`: a finished Label Studio project's export, written where the tool's would be.

Each tick reads one page of Label Studio's project list (a cursor walks the pages, then starts over),
so a tick's work is bounded however many projects the server holds. A project of a batch annobase
opened is finished when every task has as many answers as `batch.json` asks and every review task a
ground truth; its export then goes to `annotations/{batch_id}/export.json`, only when its bytes
differ from what is there (content hash against the object's ETag): a finished project is exported
once per change. From there `annotation_exports` takes over, as for any tool's export.
"""

from __future__ import annotations

import hashlib
import json
import os

import dagster as dg

from annobase.keys import export_key, is_valid_id
from annobase.label_studio import ProjectSummary, unfinished_tasks, wanted_annotations
from assets.annotation.label_studio_projects import project_record_key
from assets.partitions import batches_partitions
from resources import LabelStudioResource, ObjectStoreResource

PROJECTS_PER_TICK = 50


def export_finished(store, projects, summary: ProjectSummary) -> str:
    """What became of one project this tick: `written`, `unchanged`, or why it was left alone."""
    if summary.batch_id is None or not is_valid_id(summary.batch_id):
        return "not an annobase batch"
    try:
        record = json.loads(store.get(project_record_key(summary.batch_id)))
        plan = json.loads(store.get(f"batches/{summary.batch_id}/batch.json"))
    except KeyError:
        return "no batch record"
    if record["project_id"] != summary.project_id or plan["tasks_version"] != summary.tasks_version:
        return "superseded"  # an older cut of the batch, or a project someone else titled alike
    asked, review = wanted_annotations(plan)
    if summary.annotations < sum(asked.values()) or summary.ground_truth < len(review):
        return "in progress"  # the counts alone say it cannot be finished: no export needed
    data = projects.export(summary.project_id)
    missing = unfinished_tasks(json.loads(data), plan)
    if missing:
        return f"in progress ({len(missing)} tasks left, e.g. {missing[0]})"
    key = export_key(summary.batch_id)
    head = store.head(key)
    if head is not None and head.etag == hashlib.md5(data, usedforsecurity=False).hexdigest():
        return "unchanged"
    store.put(key, data)
    return "written"


@dg.sensor(
    minimum_interval_seconds=int(os.environ.get("ANNOBASE_SENSOR_INTERVAL_SECONDS", "30")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes the export of every finished Label Studio project to annotations/{batch_id}/"
    "export.json (then `annotation_exports` requests its QA); a page of projects per tick.",
)
def label_studio_exports(
    context: dg.SensorEvaluationContext, object_store: ObjectStoreResource, label_studio: LabelStudioResource
):
    projects = label_studio.open()
    if projects is None:
        return dg.SkipReason("Label Studio is not configured (ANNOBASE_LABEL_STUDIO_URL)")
    store = object_store.open()
    page = json.loads(context.cursor)["page"] if context.cursor else 1
    summaries, more = projects.project_page(page, PROJECTS_PER_TICK)
    outcomes = {}
    for summary in summaries:
        if summary.batch_id and not context.instance.has_dynamic_partition(
            batches_partitions.name, summary.batch_id
        ):
            outcomes[summary.project_id] = "unknown batch"
            continue
        outcomes[summary.project_id] = export_finished(store, projects, summary)
    written = sorted(project for project, outcome in outcomes.items() if outcome == "written")
    for project, outcome in outcomes.items():
        context.log.info(f"Label Studio project {project}: {outcome}")
    return dg.SensorResult(
        skip_reason=f"page {page}: {len(summaries)} projects, exports written for {written or 'none'}",
        cursor=json.dumps({"page": page + 1 if more else 1}),
    )
