"""Text classification: one label from `label_set` per text (Label Studio `Choices`).

Consensus by Dawid-Skene (majority vote where it cannot run), scored as label accuracy on gold,
gated on `text_accuracy`; Krippendorff's alpha (nominal) beside it. Its tasks are pre-labelled by a
label model learned from the client's earlier batches.
"""

from annotation_types import AnnotationType, Measure
from annotation_types.controls import CHOICES
from assets.quality.agreement import krippendorff_alpha
from assets.quality.annotation_rows import TASK
from assets.quality.consensus import label_consensus
from assets.quality.text_accuracy import label_components, label_score

TYPE = AnnotationType(
    modality="text",
    task="classification",
    control="label",
    kind=CHOICES,
    answer_field="label",
    catalog_column="label",
    consensus=label_consensus,
    measure=Measure("label", TASK, label_components, label_score),
    accuracy_metric="text_accuracy",
    gate_metric="text_accuracy",
    more_scores=lambda work, agreed, on_gold: {"krippendorff_alpha": krippendorff_alpha(work)},
    release_answer="label",
    release_fields={"label": "The consensus label of the item, one of the delivery's label_set."},
    prelabels=True,
    fixture="text",
)
