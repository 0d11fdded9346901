"""Multimodal classification: each part of an item (text, audio, image) labelled on its own from
`label_set` (Label Studio `Choices` named `label_{part}`), and the parts' labels compared.

Consensus per (task, part); scored as label accuracy per part on gold (`text_accuracy`), gated on
`cross_modal_consistency`, the share of items whose parts' consensus labels agree.
"""

from annotation_types import AnnotationType, Measure
from annotation_types.controls import CHOICES
from assets.quality.agreement import krippendorff_alpha
from assets.quality.annotation_rows import TASK_PART, part_label_rows
from assets.quality.consensus import label_consensus
from assets.quality.cross_modal_consistency import cross_modal_consistency
from assets.quality.text_accuracy import label_components, label_score


def _scores(work, agreed, on_gold) -> dict:
    return {
        "cross_modal_consistency": cross_modal_consistency(agreed),
        "krippendorff_alpha": krippendorff_alpha(on_gold.rows, unit=TASK_PART),
    }


TYPE = AnnotationType(
    modality="multimodal",
    task="classification",
    control="label",
    kind=CHOICES,
    per_part=True,
    answer_field="part_labels",
    catalog_column="part_labels_json",
    catalog_json=True,
    consensus=lambda annotations, label_set=None: label_consensus(
        part_label_rows(annotations), label_set, TASK_PART
    ),
    measure=Measure("label", TASK_PART, label_components, label_score, split=part_label_rows),
    accuracy_metric="text_accuracy",
    gate_metric="cross_modal_consistency",
    more_metrics=("cross_modal_consistency",),
    more_scores=_scores,
    release_fields={
        "label": "For a multimodal item: its label where the consensus labels of all its parts agree, "
        "else null.",
        "label_{part}": "The consensus label of the item's {part} part (null if the item has none).",
    },
    fixture="multimodal",
)
