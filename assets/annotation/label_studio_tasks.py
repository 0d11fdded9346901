"""Tasks for annotators in Label Studio's JSON import format, shaped as Label Studio 1.23.2 imports them.

The ids travel in each task's `data`, so every exported annotation leads back to its item. Pre-labels go
in as a prediction, made of the result entries built here, which are exactly what Label Studio itself
stores for the controls of `label_studio_config`. `build_task` can also import a ground-truth
annotation, as Label Studio's own import does; annobase's batches never use it, since Label Studio
shows imported ground truth to annotators (hidden gold stays in `honeypot_references`).
"""

from __future__ import annotations

from annobase.keys import require_id
from annotation_types import AnnotationType, configured_types
from annotation_types.controls import CHOICES, RECTANGLES, TEXTAREA, Control, ControlKind
from assets.annotation.label_studio_config import check_parts

ID_FIELDS = ("item_id", "client_id", "delivery_id")
INLINE_PART = "text"


def _single_part_type(kind: ControlKind) -> AnnotationType:
    """The configured single-part type asking through `kind` (one per kind today)."""
    (found,) = [t for t in configured_types() if t.kind is kind and not t.per_part]
    return found


def choices_result(from_name: str, to_name: str, label: str) -> dict:
    (result,) = CHOICES.results(Control(from_name, to_name, CHOICES.type), label)
    return result


def textarea_result(text: str) -> dict:
    transcription = _single_part_type(TEXTAREA)
    (result,) = transcription.results(transcription.spec.parts, text)
    return result


def rectangle_result(box: dict, original_width: int, original_height: int) -> dict:
    """`box` holds x, y, width, height in percent of the image (the contract's unit) and its label."""
    detection = _single_part_type(RECTANGLES)
    (result,) = detection.results(
        detection.spec.parts, [box], original_width=original_width, original_height=original_height
    )
    return result


def build_task(
    item: dict,
    modality: str,
    parts_urls: dict[str, str],
    text: str | None = None,
    prediction: dict | None = None,
    gold: dict | None = None,
) -> dict:
    """One task: the item's ids and parts in `data`, plus optional gold and pre-label.

    File parts are given as object-store URLs; the text part is inlined (already masked), since Label
    Studio shows `$text` as it is. `prediction` is `{"model_version", "score", "result"}` and `gold`
    `{"result"}`, with results from the helpers above.
    """
    if INLINE_PART in parts_urls:
        raise ValueError("the text part is passed inline as `text`, not as a URL")
    check_parts(modality, [*parts_urls, *([INLINE_PART] if text is not None else [])])
    data = {key: require_id(item[key], key) for key in ID_FIELDS}
    data.update(parts_urls)
    if text is not None:
        data[INLINE_PART] = text
    task: dict = {"data": data}
    if gold is not None:
        task["annotations"] = [{"result": list(gold["result"]), "ground_truth": True}]
    if prediction is not None:
        task["predictions"] = [
            {
                "model_version": prediction["model_version"],
                "score": prediction["score"],
                "result": list(prediction["result"]),
            }
        ]
    return task
