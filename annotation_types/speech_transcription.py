"""Speech transcription: free text per clip (Label Studio `TextArea`), no label set.

Consensus is the annotators' medoid transcript (least total edit distance), scored as 1 - CER on gold
and gated on `speech_accuracy`.
"""

from annotation_types import AnnotationType, Measure
from annotation_types.controls import TEXTAREA
from assets.quality.annotation_rows import TASK
from assets.quality.consensus import transcript_consensus
from assets.quality.speech_accuracy import transcript_components, transcript_score

TYPE = AnnotationType(
    modality="speech",
    task="transcription",
    control="transcript",
    kind=TEXTAREA,
    answer_field="transcript",
    catalog_column="transcript",
    consensus=lambda annotations, label_set=None: transcript_consensus(annotations),
    measure=Measure("transcript", TASK, transcript_components, transcript_score),
    accuracy_metric="speech_accuracy",
    gate_metric="speech_accuracy",
    release_answer="transcript",
    release_fields={"transcript": "The consensus transcript of the item's audio (UTF-8 text)."},
    fixture="speech",
)
