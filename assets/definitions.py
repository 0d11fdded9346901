"""Every asset of the base, as Definitions merged by `orchestration.definitions`."""

import dagster as dg

from assets.annotation.annotation_batches import annotation_batches
from assets.annotation.batch_annotations import batch_annotations
from assets.annotation.label_studio_projects import label_studio_projects
from assets.cleaning.clean_items import clean_items
from assets.delivery.client_deliveries import client_deliveries
from assets.external import annotation_tool_exports, client_uploads
from assets.intake.raw_items import raw_items
from assets.quality.annotator_scorecards import annotator_scorecards
from assets.quality.qa_results import qa_results
from assets.release.industry_datasets import industry_datasets

defs = dg.Definitions(
    assets=[
        client_uploads,
        annotation_tool_exports,
        raw_items,
        clean_items,
        annotation_batches,
        label_studio_projects,
        batch_annotations,
        qa_results,
        annotator_scorecards,
        client_deliveries,
        industry_datasets,
    ]
)
