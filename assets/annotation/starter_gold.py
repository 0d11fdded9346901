"""The base-wide starter gold: honeypots for a client who has no reviewed items of its own yet.

Curated by the base per industry and modality and kept at `gold/starter/{industry}/{modality}/set.json`
(annobase.keys.starter_gold_prefix), never under `batches/` or `annotations/`: the references stay
with annobase, the items go to annotators as ordinary tasks.
"""

from __future__ import annotations

import json

from annobase.keys import STARTER_CLIENT, starter_delivery_id, starter_gold_prefix
from annobase.object_store import ObjectStore
from assets.annotation.label_studio_config import controls

SET_NAME = "set.json"
SCHEMA = "annobase.starter_gold/1"
PART_FIELDS = {"text": "text", "image": "image_key", "audio": "audio_key"}


def starter_gold(
    store: ObjectStore, industry: str, modality: str, parts: tuple[str, ...], label_set: list[str]
) -> dict[str, dict]:
    """item_key -> a gold row (as `client_gold_items` gives them) for the starter items that have
    every one of `parts` and only labels of `label_set`; their references cut to `parts`. Empty when
    the base has no starter set for the industry and modality."""
    prefix = starter_gold_prefix(industry, modality)
    try:
        document = json.loads(store.get(prefix + SET_NAME))
    except KeyError:
        return {}
    if document.get("schema") != SCHEMA:
        raise ValueError(f"{prefix}{SET_NAME} is not an {SCHEMA} document")
    shown = {control.name for control in controls(modality, list(parts))}
    delivery_id = starter_delivery_id(industry, modality)
    rows = {}
    for item in document["items"]:
        if any(item.get(PART_FIELDS[part]) is None for part in parts):
            continue
        result = [entry for entry in item["result"] if entry["from_name"] in shown]
        if not set(_labels(result)) <= set(label_set):
            continue
        item_key = f"{STARTER_CLIENT}/{delivery_id}/{item['item_id']}"
        rows[item_key] = {
            "item_key": item_key,
            "client_id": STARTER_CLIENT,
            "delivery_id": delivery_id,
            "item_id": item["item_id"],
            **{field: (item.get(field) if part in parts else None) for part, field in PART_FIELDS.items()},
            "result_json": json.dumps(result, ensure_ascii=False),
        }
    return rows


def _labels(result: list[dict]) -> list[str]:
    """Every class label a reference names (transcripts name none)."""
    return [
        label
        for entry in result
        for key in ("choices", "rectanglelabels")
        for label in entry["value"].get(key, [])
    ]
