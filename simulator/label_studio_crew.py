"""The outside world's annotators at work in a live Label Studio: each task of a batch's project answered
through `POST /api/tasks/{id}/annotations` by as many crew members as the task's overlap asks, each at
their known accuracy, and the review tasks (those `batch.json` lists as `review_item_keys`, or else a
share of the batch's own tasks) labelled with the truth by a reviewer, as ground truth.

The crew are Label Studio users; the admin's token submits in their name (`completed_by`), which is
what Label Studio records when each of them submits from the editor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import httpx
import numpy as np

from simulator.annotators import Annotator
from simulator.types import simulated

# the share of tasks a reviewer labels when the batch names no review sample of its own
REVIEW_RATE = 0.3


def annotate_project(
    url: str,
    headers: dict[str, str],
    project_id: int,
    plan: dict,
    truth: Mapping[str, dict],
    crew: Sequence[tuple[int, Annotator]],
    reviewer: int,
    seed: int = 0,
    review_rate: float = REVIEW_RATE,
    stop_after: int | None = None,
    skip: int = 0,
) -> int:
    """Answer the project's tasks; `crew` pairs each Label Studio user id with the skill it plays.
    `stop_after` leaves the project unfinished after that many annotations, and a second call with the
    same seed and `skip` of that many posts the rest. Returns how many it went through."""
    kind, parts, label_set = simulated(plan["modality"], plan.get("task")), plan["parts"], plan["label_set"]
    rng = np.random.default_rng(int(hashlib.sha256(f"{seed}/{project_id}".encode()).hexdigest()[:12], 16))
    tasks = httpx.get(
        f"{url}/api/tasks/", params={"project": project_id, "page_size": 10_000}, headers=headers, timeout=120
    ).json()["tasks"]
    review = set(plan.get("review_item_keys") or [])
    if not review:
        own = sorted(t["item_key"] for t in plan["tasks"] if not t.get("honeypot"))
        review = set(
            rng.choice(own, size=min(len(own), max(4, round(review_rate * len(own)))), replace=False)
        )
    posted = 0
    for task in tasks:
        data = task["data"]
        item_key = f"{data['client_id']}/{data['delivery_id']}/{data['item_id']}"
        order = [crew[i] for i in rng.permutation(len(crew))]
        given = []
        for user_id, member in order[: task["overlap"]]:
            answer = kind.answer(parts, truth[item_key], label_set, member.accuracy, rng)
            lead_time = round(float(rng.gamma(4.0, member.lead_time_mean / 4.0)), 1)
            given.append((user_id, kind.results(parts, answer), False, lead_time))
        if item_key in review:
            correct = kind.results(parts, kind.true_answer(parts, truth[item_key]))
            given.append((reviewer, correct, True, round(float(rng.uniform(20, 60)), 1)))
        for user_id, result, ground_truth, lead_time in given:
            if stop_after is not None and posted >= stop_after:
                return posted
            posted += 1
            if posted <= skip:
                continue
            httpx.post(
                f"{url}/api/tasks/{task['id']}/annotations/",
                json={
                    "result": result,
                    "completed_by": user_id,
                    "ground_truth": ground_truth,
                    "lead_time": lead_time,
                    "was_cancelled": False,
                },
                headers=headers,
                timeout=120,
            ).raise_for_status()
    return posted
