"""What the base reads but does not make, declared so the lineage starts where the data does.

Neither is materialized by a run here: the clients write their uploads and the annotation tool writes
its exports; the sensors notice both (`client_uploads`, `annotation_exports`).
"""

import dagster as dg

from assets.annotation.annotation_batches import annotation_batches
from assets.annotation.label_studio_projects import label_studio_projects

client_uploads = dg.AssetSpec(
    "client_uploads",
    description="What clients upload to `uploads/{client}/{delivery}/`: a manifest.json and the files it "
    "lists under items/. The base only reads it; the `client_uploads` sensor notices a new manifest.",
    group_name="intake",
    kinds={"s3"},
    owners=["team:clients"],
    metadata={"location": dg.MetadataValue.text("uploads/{client_id}/{delivery_id}/")},
)

annotation_tool_exports = dg.AssetSpec(
    "annotation_tool_exports",
    # annotators work from the batch's files, or from the Label Studio project annobase opened for it
    deps=[annotation_batches, label_studio_projects],
    description="Finished batches as the annotation tool (Label Studio) exports them, to "
    "`annotations/{batch_id}/export.json`; the `annotation_exports` sensor notices a new version.",
    group_name="annotation",
    kinds={"labelstudio", "s3"},
    owners=["team:annotation"],
    metadata={"location": dg.MetadataValue.text("annotations/{batch_id}/export.json")},
)
