"""The base's curators (outside annobase's code): a starter gold set per industry and modality.

A client's first batches have no gold of the client's own to hide among its tasks; the base keeps a
small curated set per industry and modality instead (annobase.keys.starter_gold_prefix). Here the
simulator makes one the way curators would, items whose true answer is known, and writes it where
annobase reads it: the media under `items/`, the items and their references in `set.json`.
"""

from __future__ import annotations

import json

from annobase.keys import STARTER_CLIENT, starter_delivery_id, starter_gold_prefix
from simulator.deliveries import make_delivery
from simulator.types import simulated

SCHEMA = "annobase.starter_gold/1"
PART_FIELDS = {"image": "image_key", "audio": "audio_key"}


def curate_starter_gold(
    store, industry: str, modality: str, n_items: int = 40, seed: int = 0
) -> dict[str, dict]:
    """Write the starter set of `industry` and `modality`; returns its truth by item key
    (`annobase/starter-{industry}-{modality}/{item_id}`), for the simulated annotators."""
    prefix = starter_gold_prefix(industry, modality)
    delivery_id = starter_delivery_id(industry, modality)
    made = make_delivery(
        seed, STARTER_CLIENT, delivery_id, modality, n_items, industry=industry, disagreement_rate=0.0
    )
    items, truth = [], {}
    for entry in made.manifest["items"]:
        item_id, files = entry["item_id"], entry["files"]
        parts = [part for part in ("image", "text", "audio") if part in files]
        item = {"item_id": item_id}
        for part, spec in files.items():
            data = made.files[spec["path"]]
            if part == "text":  # curated: no personal data left in it, whatever the industry
                item["text"] = _masked(data.decode("utf-8"), made.truth[item_id].get("pii", []))
            else:
                store.put(prefix + spec["path"], data)
                item[PART_FIELDS[part]] = prefix + spec["path"]
        item_truth = made.truth[item_id]
        kind = simulated(modality)
        item["result"] = kind.results(parts, kind.true_answer(parts, item_truth))
        items.append(item)
        truth[f"{STARTER_CLIENT}/{delivery_id}/{item_id}"] = item_truth
    document = {
        "schema": SCHEMA,
        "industry": industry,
        "modality": modality,
        "label_set": made.manifest["label_set"],
        "items": items,
    }
    store.put(prefix + "set.json", json.dumps(document, ensure_ascii=False, indent=1).encode())
    return truth


def _masked(text: str, pii: list[dict]) -> str:
    for entry in pii:
        text = text.replace(entry["value"], "*" * len(entry["value"]))
    return text
