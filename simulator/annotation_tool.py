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

from simulator.annotators import Annotator
from simulator.types import simulated

REVIEWER_ID = 1  # the project owner reviews: as in the fixtures
CANCEL_RATE = 0.01


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
    kind, parts, label_set = simulated(plan["modality"], plan.get("task")), plan["parts"], plan["label_set"]
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
            answer = kind.answer(parts, item_truth, label_set, member.accuracy, rng)
            lead_time = round(float(rng.gamma(4.0, member.lead_time_mean / 4.0)), 1)
            cancelled = bool(rng.random() < cancel_rate)
            given.append((member.annotator_id, kind.results(parts, answer), False, lead_time, cancelled))
            wanted -= not cancelled
        if index in reviewed:
            truth_result = kind.results(parts, kind.true_answer(parts, item_truth))
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
