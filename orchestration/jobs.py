"""Jobs: what sensors and schedules launch.

Every job runs its steps in the run's own process (the code location's default executor, set
below): the heavy work is on the Dask cluster, so a process per step would only add start-ups
(3-5 s of imports each), which is what dominates a burst of small deliveries.
"""

import dagster as dg

from assets.annotation.annotation_batches import annotation_batches
from assets.annotation.batch_annotations import batch_annotations
from assets.annotation.label_studio_projects import label_studio_projects
from assets.cleaning.clean_items import clean_items
from assets.delivery.client_deliveries import client_deliveries
from assets.intake.raw_items import raw_items
from assets.partitions import industries_partitions
from assets.quality.annotator_scorecards import annotator_scorecards
from assets.quality.qa_results import qa_results
from assets.release.industry_datasets import industry_datasets

intake_job = dg.define_asset_job(
    "intake_deliveries",
    selection=[raw_items, clean_items, annotation_batches, label_studio_projects],
    description="Verify a client delivery, clean it, cut it into annotation batches and open them in "
    "Label Studio (when configured).",
)

annotation_qa_job = dg.define_asset_job(
    "annotation_qa",
    selection=[batch_annotations, qa_results],
    description="Read a finished batch's export, measure its quality and gate it.",
)

client_delivery_job = dg.define_asset_job(
    "return_client_delivery",
    selection=[client_deliveries],
    description="Return a delivery's labelled data to its owner once every batch passed the gate.",
)

scorecards_job = dg.define_asset_job(
    "refresh_annotator_scorecards",
    selection=[annotator_scorecards],
    description="Every annotator's record over all batches so far.",
)

hourly_scorecards = dg.ScheduleDefinition(
    name="hourly_scorecards",
    job=scorecards_job,
    cron_schedule="0 * * * *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour: every annotator's gold accuracy and agreement over all batches so far.",
)

publish_job = dg.define_asset_job(
    "publish_industry_datasets",
    selection=[industry_datasets],
    description="Cut a new signed release of an industry dataset, if anything changed since the last.",
    # the production instance queues runs with this tag one at a time (deploy/dagster.yaml), so a
    # second publish waits there instead of being refused by the publish lease
    tags={"annobase/publish": "serial"},
)


@dg.schedule(
    cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai",
    job=publish_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every industry, every night at 02:00 Beijing time; a release only where something changed.",
)
def nightly_publish(context: dg.ScheduleEvaluationContext):
    """Every industry, every night at 02:00 Beijing time; a release only where something changed."""
    night = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        dg.RunRequest(run_key=f"{industry}@{night}", partition_key=industry)
        for industry in industries_partitions.get_partition_keys()
    ]


jobs_defs = dg.Definitions(
    jobs=[intake_job, annotation_qa_job, client_delivery_job, scorecards_job, publish_job],
    schedules=[hourly_scorecards, nightly_publish],
    executor=dg.in_process_executor,
)
