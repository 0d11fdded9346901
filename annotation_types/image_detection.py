"""Image detection: labelled boxes (Label Studio `RectangleLabels`, percent of the image).

Consensus clusters the annotators' boxes by IoU and keeps those most annotators drew; scored as box F1
at IoU >= 0.5 on gold and gated on `image_box_f1`.
"""

from annotation_types import AnnotationType, Measure
from annotation_types.controls import RECTANGLES
from assets.quality.annotation_rows import TASK
from assets.quality.consensus import box_consensus
from assets.quality.image_accuracy import box_components, box_score

TYPE = AnnotationType(
    modality="image",
    task="detection",
    control="boxes",
    kind=RECTANGLES,
    answer_field="boxes",
    catalog_column="boxes_json",
    catalog_json=True,
    consensus=lambda annotations, label_set=None: box_consensus(annotations),
    measure=Measure("boxes", TASK, box_components, box_score),
    accuracy_metric="image_box_f1",
    gate_metric="image_box_f1",
    release_answer="boxes_json",
    release_json=True,
    release_fields={
        "boxes_json": "The consensus boxes as a JSON list of {x, y, width, height, label}, in percent "
        "of the image's width and height."
    },
    fixture="image",
)
