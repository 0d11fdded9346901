"""Cutting a delivery's kept items into annotation batches, with overlap and honeypots.

Deterministic per delivery (seeded by its partition key), so re-planning a delivery gives the same
batches. Items are grouped by their set of parts first: a Label Studio project shows one labeling
config, and a config naming a part a task lacks does not load.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from annobase.keys import DeliveryRef
from annobase.settings import Annotation


@dataclass(frozen=True)
class PlannedTask:
    item_key: str
    annotators: int
    honeypot: bool


@dataclass(frozen=True)
class PlannedBatch:
    batch_id: str
    parts: tuple[str, ...]
    tasks: tuple[PlannedTask, ...]


def batch_id_for(ref: DeliveryRef, number: int) -> str:
    """Readable, unique across clients, and inside the id pattern (≤ 64 characters)."""
    digest = hashlib.sha256(ref.partition_key.encode()).hexdigest()[:8]
    return f"{ref.delivery_id[:40]}-{digest}-b{number:03d}"


def plan_batches(
    ref: DeliveryRef,
    items_by_parts: dict[tuple[str, ...], list[str]],
    honeypots_by_parts: dict[tuple[str, ...], list[str]],
    settings: Annotation,
) -> list[PlannedBatch]:
    """Batches of at most `batch_size` items, of near-equal sizes; a share overlapped, honeypots mixed in."""
    rng = random.Random(ref.partition_key)
    batches = []
    for parts in sorted(items_by_parts):
        keys = items_by_parts[parts]
        gold = honeypots_by_parts.get(parts, [])
        # as many batches as the size allows, of near-equal sizes (no batch of 3 left over)
        count = -(-len(keys) // settings.batch_size)
        for number in range(count):
            chunk = keys[number * len(keys) // count : (number + 1) * len(keys) // count]
            overlapped = set(rng.sample(chunk, round(len(chunk) * settings.overlap_share)))
            tasks = [
                PlannedTask(key, settings.overlap_annotators if key in overlapped else 1, False)
                for key in chunk
            ]
            wanted = min(len(gold), max(1, round(len(chunk) * settings.honeypot_share))) if gold else 0
            # every annotator working on the batch should meet the honeypots
            tasks += [PlannedTask(key, settings.overlap_annotators, True) for key in rng.sample(gold, wanted)]
            rng.shuffle(tasks)
            batches.append(PlannedBatch(batch_id_for(ref, len(batches) + 1), parts, tuple(tasks)))
    return batches
