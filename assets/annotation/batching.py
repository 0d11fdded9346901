"""Cutting a delivery's kept items into annotation batches, with overlap, honeypots and a review sample.

Deterministic per delivery (seeded by its partition key), so re-planning a delivery gives the same
batches. Items are grouped by their set of parts first: a Label Studio project shows one labeling
config, and a config naming a part a task lacks does not load. A group too small to be a batch of its
own (a few multimodal items with an extra part) joins the biggest sibling group whose parts it has,
and is labelled on those parts.

Every batch carries gold: honeypots (references annobase keeps, shown as ordinary tasks) and a review
sample of its own tasks, sized by GB/T 2828.1 for the batch's size, which a reviewer labels as
ground truth.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

from annobase.keys import DeliveryRef
from annobase.settings import Annotation
from assets.quality.gold_sampling import review_sample_size


@dataclass(frozen=True)
class PlannedTask:
    item_key: str
    annotators: int
    honeypot: bool
    review: bool = False  # in the review sample: a reviewer labels it as ground truth


@dataclass(frozen=True)
class PlannedBatch:
    batch_id: str
    parts: tuple[str, ...]
    tasks: tuple[PlannedTask, ...]


# Readable parts of a batch id: the client's and the delivery's ids, cut to this length.
ID_PREFIX_CHARS = 16
# 20 base32 characters of sha256 over the delivery's partition key: 100 bits, so no two deliveries
# share a batch id unless someone finds a 100-bit collision (birthday bound ~2^50 deliveries).
DIGEST_CHARS = 20
BATCH_NUMBER = re.compile(r"-b(\d+)$")
# a part group with fewer items than this joins a sibling batch when one has parts it shares
MIN_BATCH_TASKS = 4


def batch_id_for(ref: DeliveryRef, number: int) -> str:
    """`{client}-{delivery}-{digest}-b{number}`: names its client for people (ids cut to 16
    characters), unique by the digest, inside the id pattern (at most 61 characters up to batch
    99,999)."""
    digest = base64.b32encode(hashlib.sha256(ref.partition_key.encode()).digest()).decode()
    client, delivery = ref.client_id[:ID_PREFIX_CHARS], ref.delivery_id[:ID_PREFIX_CHARS]
    return f"{client}-{delivery}-{digest[:DIGEST_CHARS].lower()}-b{number:03d}"


def batch_number(batch_id: str) -> int | None:
    """The number a batch id ends in (`…-b007` -> 7), in this format and the one before it."""
    match = BATCH_NUMBER.search(batch_id)
    return int(match.group(1)) if match else None


def join_small_groups(items_by_parts: dict[tuple[str, ...], list[str]]) -> dict[tuple[str, ...], list[str]]:
    """Groups of fewer than MIN_BATCH_TASKS items moved into the biggest group whose parts they all
    have (they are labelled on those parts); a group with no such sibling stays on its own."""
    groups = {parts: list(keys) for parts, keys in items_by_parts.items()}
    for parts in sorted(groups, key=lambda parts: (len(groups[parts]), parts)):
        if len(groups[parts]) >= MIN_BATCH_TASKS:
            continue
        siblings = [
            other
            for other in groups
            if other != parts and set(other) <= set(parts) and len(groups[other]) >= MIN_BATCH_TASKS
        ]
        if siblings:
            target = max(siblings, key=lambda other: (len(groups[other]), other))
            groups[target] += groups.pop(parts)
    return groups


def plan_batches(
    ref: DeliveryRef,
    items_by_parts: dict[tuple[str, ...], list[str]],
    honeypots_by_parts: dict[tuple[str, ...], list[str]],
    settings: Annotation,
    known_ids: Mapping[int, str] | None = None,
) -> list[PlannedBatch]:
    """Batches of at most `batch_size` items, of near-equal sizes; a share overlapped, honeypots mixed in,
    a review sample of the size GB/T 2828.1 gives for the batch's own tasks.

    `known_ids` (number -> id) are the ids the delivery's batches already have: planned again, a
    delivery keeps them, whatever format they were made in."""
    known_ids = known_ids or {}
    rng = random.Random(ref.partition_key)
    batches = []
    groups = join_small_groups(items_by_parts)
    for parts in sorted(groups):
        keys = groups[parts]
        gold = honeypots_by_parts.get(parts, [])
        # as many batches as the size allows, of near-equal sizes (no batch of 3 left over)
        count = -(-len(keys) // settings.batch_size)
        for number in range(count):
            chunk = keys[number * len(keys) // count : (number + 1) * len(keys) // count]
            overlapped = set(rng.sample(chunk, round(len(chunk) * settings.overlap_share)))
            reviewed = set(rng.sample(chunk, review_sample_size(len(chunk))))
            tasks = [
                PlannedTask(
                    key, settings.overlap_annotators if key in overlapped else 1, False, key in reviewed
                )
                for key in chunk
            ]
            wanted = min(len(gold), max(1, round(len(chunk) * settings.honeypot_share))) if gold else 0
            # every annotator working on the batch should meet the honeypots
            tasks += [PlannedTask(key, settings.overlap_annotators, True) for key in rng.sample(gold, wanted)]
            rng.shuffle(tasks)
            number = len(batches) + 1
            batch_id = known_ids.get(number) or batch_id_for(ref, number)
            batches.append(PlannedBatch(batch_id, parts, tuple(tasks)))
    return batches
