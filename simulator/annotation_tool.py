"""The outside world's annotation tool: Label Studio with a crew of simulated annotators and a reviewer.

It takes a batch as annobase writes it (`batches/{batch_id}/tasks.json` and `batch.json`), has each
task labelled by as many crew members as the batch asks (each at their known accuracy; honeypots are
tasks like any other to them), has a reviewer label the batch's `review_item_keys` with the true
answer (ground truth), and writes `annotations/{batch_id}/export.json` the way Label Studio 1.23.2
exports: task and annotation ids, `completed_by`, `lead_time`, now and then a cancelled annotation.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from simulator.annotators import Annotator, annotate_boxes, annotate_transcript

REVIEWER_ID = 1  # the project owner reviews: as in the fixtures
CANCEL_RATE = 0.01
IMAGE_SIZE = (320, 240)  # what simulator.media draws


def _choice(label: str, label_set: Sequence[str], accuracy: float | None, rng: np.random.Generator) -> str:
    if accuracy is None:  # a spammer
        return label_set[rng.integers(len(label_set))]
    if rng.random() < accuracy:
        return label
    others = [other for other in label_set if other != label]
    return others[rng.integers(len(others))]


def _result(modality: str, parts: Sequence[str], answer) -> list[dict]:
    """Label Studio's result entries for the controls of CONTRACT.md section 3."""
    if modality == "text":
        return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [answer]}}]
    if modality == "speech":
        return [
            {"from_name": "transcript", "to_name": "audio", "type": "textarea", "value": {"text": [answer]}}
        ]
    if modality == "image":
        width, height = IMAGE_SIZE
        return [
            {
                "from_name": "boxes",
                "to_name": "image",
                "type": "rectanglelabels",
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "value": {
                    "x": box["x"],
                    "y": box["y"],
                    "width": box["width"],
                    "height": box["height"],
                    "rotation": 0,
                    "rectanglelabels": [box["label"]],
                },
            }
            for box in answer
        ]
    return [
        {
            "from_name": f"label_{part}",
            "to_name": part,
            "type": "choices",
            "value": {"choices": [answer[part]]},
        }
        for part in parts
    ]


def _answer(
    modality: str,
    parts: Sequence[str],
    truth: dict,
    label_set: Sequence[str],
    accuracy: float | None,
    rng: np.random.Generator,
):
    """What one annotator of `accuracy` (None: spammer) gives for an item whose truth is `truth`."""
    if modality == "text":
        return _choice(truth["label"], label_set, accuracy, rng)
    if modality == "speech":
        return annotate_transcript(truth["transcript"], 0.0 if accuracy is None else accuracy, rng)
    if modality == "image":
        return annotate_boxes(truth["boxes"], 0.0 if accuracy is None else accuracy, rng, label_set)
    labels = truth.get("part_labels") or {}
    return {part: _choice(labels.get(part, truth.get("label")), label_set, accuracy, rng) for part in parts}


def _true_answer(modality: str, parts: Sequence[str], truth: dict):
    """What the reviewer records: the truth itself."""
    if modality == "image":
        return [dict(box) for box in truth["boxes"]]
    return _answer(modality, parts, truth, ["_"], 1.0, np.random.default_rng(0))


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _annotation(
    annotation_id: int,
    task_id: int,
    batch_id: str,
    started: datetime,
    completed_by: int,
    result: list,
    ground_truth: bool,
    lead_time: float | None,
    cancelled: bool,
) -> dict:
    """One annotation with every field Label Studio 1.23.2 exports."""
    stamp = _stamp(started + timedelta(seconds=annotation_id * 7))
    return {
        "id": annotation_id,
        "completed_by": completed_by,
        "result": result,
        "was_cancelled": cancelled,
        "ground_truth": ground_truth,
        "created_at": stamp,
        "updated_at": stamp,
        "draft_created_at": None,
        "lead_time": lead_time,
        "prediction": {},
        "result_count": len(result),
        "unique_id": f"{batch_id}-{annotation_id}",
        "import_id": None,
        "last_action": None,
        "bulk_created": False,
        "task": task_id,
        "project": 1,
        "updated_by": completed_by,
        "parent_prediction": None,
        "parent_annotation": None,
        "last_created_by": None,
    }


def complete_batch(
    store,
    batch_id: str,
    truth: Mapping[str, dict],
    crew: Sequence[Annotator],
    seed: int = 0,
    review_rate: float = 0.0,
    cancel_rate: float = CANCEL_RATE,
    review_sample: bool = True,
) -> str:
    """Annotate a batch and write its export; returns the export's key. `truth` is keyed by item_key.

    The reviewer labels the batch's `review_item_keys` (none with `review_sample=False`, a tool that
    skips the review) and, with `review_rate`, more tasks up to that share of the batch."""
    tasks = json.loads(store.get(f"batches/{batch_id}/tasks.json"))
    plan = json.loads(store.get(f"batches/{batch_id}/batch.json"))
    modality, parts, label_set = plan["modality"], plan["parts"], plan["label_set"]
    rng = np.random.default_rng(int(hashlib.sha256(f"{seed}/{batch_id}".encode()).hexdigest()[:12], 16))
    started = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    asked = set(plan.get("review_item_keys", [])) if review_sample else set()
    reviewed = {index for index, planned in enumerate(plan["tasks"]) if planned["item_key"] in asked}
    others = [index for index in range(len(tasks)) if index not in reviewed]
    extra = min(len(others), max(0, round(review_rate * len(tasks)) - len(reviewed)))
    reviewed |= {int(index) for index in rng.choice(others, size=extra, replace=False)} if extra else set()
    ids = itertools.count(1)
    export = []
    for index, (task, planned) in enumerate(zip(tasks, plan["tasks"], strict=True)):
        task_id = index + 1
        data = task["data"]
        item_truth = truth[f"{data['client_id']}/{data['delivery_id']}/{data['item_id']}"]
        given = []
        # a task someone skips (cancels) goes to the next annotator in line, as Label Studio hands it on
        order = [crew[i] for i in rng.permutation(len(crew))]
        wanted = min(planned["annotators"], len(crew))
        while wanted and order:
            member = order.pop()
            answer = _answer(modality, parts, item_truth, label_set, member.accuracy, rng)
            lead_time = round(float(rng.gamma(4.0, member.lead_time_mean / 4.0)), 1)
            cancelled = bool(rng.random() < cancel_rate)
            given.append((member.annotator_id, _result(modality, parts, answer), False, lead_time, cancelled))
            wanted -= not cancelled
        if index in reviewed:
            truth_result = _result(modality, parts, _true_answer(modality, parts, item_truth))
            given.append((REVIEWER_ID, truth_result, True, round(float(rng.uniform(20, 60)), 1), False))
        annotations = [_annotation(next(ids), task_id, batch_id, started, *entry) for entry in given]
        export.append(
            {
                "id": task_id,
                "annotations": annotations,
                "drafts": [],
                "predictions": [],
                "data": data,
                "meta": {},
                "created_at": _stamp(started),
                "inner_id": task_id,
                "total_annotations": len(annotations),
                "cancelled_annotations": 0,
                "total_predictions": 0,
                "project": 1,
            }
        )
    key = f"annotations/{batch_id}/export.json"
    store.put(key, json.dumps(export, ensure_ascii=False, indent=1).encode())
    return key
