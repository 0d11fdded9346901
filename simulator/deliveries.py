"""Deliveries uploaded by the simulated clients (outside world), laid out as CONTRACT.md sections 1-2.

A delivery is its files, its manifest and the truth behind them (labels, transcripts, boxes, PII)
that the base never sees but tests and simulated annotators compare against.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from dataclasses import dataclass
from typing import Protocol

from simulator.clients import CLIENTS, MODALITY_TASKS, label_set
from simulator.text_corpus import PII
from simulator.types import ItemOptions, declared_pairs, simulated

SCHEMA = "annobase.manifest/1"
MANIFEST_NAME = "manifest.json"


class Store(Protocol):
    """Anything with put(key, data): the project's S3 or local store, or a dict in a test."""

    def put(self, key: str, data: bytes) -> object: ...


@dataclass
class SimulatedDelivery:
    """What a client uploads (files, manifest) plus the truth it never uploads."""

    client_id: str
    delivery_id: str
    industry: str
    modality: str
    license: str
    files: dict[str, bytes]  # path relative to the delivery, e.g. "items/i-000001.png"
    manifest: dict
    truth: dict[str, dict]  # item_id -> label / part_labels / transcript / boxes / pii

    @property
    def manifest_bytes(self) -> bytes:
        return encode_manifest(self.manifest)


def encode_manifest(manifest: dict) -> bytes:
    return json.dumps(manifest, ensure_ascii=False).encode("utf-8")


def file_entry(path: str, data: bytes) -> dict:
    """The manifest's description of one file: what intake checks the uploaded bytes against."""
    return {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def pii_truth(pii: list[PII]) -> list[dict]:
    return [p._asdict() for p in pii]


def _resolve(client_id: str, industry: str | None) -> str:
    if industry is not None:
        return industry
    if client_id not in CLIENTS:
        raise ValueError(f"unknown simulated client {client_id!r}: pass industry=")
    return CLIENTS[client_id].industry


def _manifest_head(
    client_id: str, delivery_id: str, industry: str, modality: str, task: str, license: str
) -> dict:
    return {
        "schema": SCHEMA,
        "client_id": client_id,
        "delivery_id": delivery_id,
        "industry": industry,
        "modality": modality,
        "task": task,
        "label_set": label_set(industry, task),
        "license": license,
    }


_EXTENSIONS = {"text": ".txt", "audio": ".wav", "png": ".png", "jpg": ".jpg"}


def _item_path(item_id: str, part: str, image_format: str = "png") -> str:
    return f"items/{item_id}{_EXTENSIONS[image_format if part == 'image' else part]}"


def make_delivery(
    seed: int,
    client_id: str,
    delivery_id: str,
    modality: str,
    n_items: int,
    license: str = "publishable",
    industry: str | None = None,
    task: str | None = None,
    *,
    disagreement_rate: float = 0.05,
    image_format: str = "png",
) -> SimulatedDelivery:
    """A complete delivery; the same arguments always give the same bytes.

    `disagreement_rate`: share of multimodal items whose parts truly carry different labels, since
    each part is labelled on its own. `image_format`: "png" or "jpg".
    """
    if modality not in MODALITY_TASKS:
        raise ValueError(f"unknown modality {modality!r}; known: {sorted(MODALITY_TASKS)}")
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be png or jpg, not {image_format!r}")
    industry = _resolve(client_id, industry)
    manifest = _manifest_head(
        client_id, delivery_id, industry, modality, task or MODALITY_TASKS[modality], license
    )
    options = ItemOptions(disagreement_rate, image_format)
    # a manifest may name a task its modality does not take (a client's mistake): its items are the
    # modality's usual ones
    kind = simulated(modality, task) if (modality, task) in declared_pairs() else simulated(modality)
    source = kind.items(
        f"{seed}/{client_id}/{delivery_id}", industry, manifest["label_set"], n_items, options
    )
    files: dict[str, bytes] = {}
    items: list[dict] = []
    truth: dict[str, dict] = {}
    for item_id, parts, item_truth in source:
        entries = {}
        for part, data in parts.items():
            path = _item_path(item_id, part, image_format)
            files[path] = data
            entries[part] = file_entry(path, data)
        items.append({"item_id": item_id, "files": entries})
        truth[item_id] = item_truth
    manifest["items"] = items
    return SimulatedDelivery(client_id, delivery_id, industry, modality, license, files, manifest, truth)


def resend_edited(
    delivery: SimulatedDelivery, earlier: SimulatedDelivery, n_items: int, seed: int = 0
) -> SimulatedDelivery:
    """`delivery` whose first `n_items` texts are `earlier`'s first texts re-sent with one comma made a
    full stop: what a client does when it sends last month's notes again, lightly edited. Their truth
    is the earlier items' (the same content)."""
    rng = random.Random(f"annobase-sim/resend/{seed}/{delivery.delivery_id}")
    files, truth = dict(delivery.files), dict(delivery.truth)
    items = [dict(item) for item in delivery.manifest["items"]]
    for item, source in zip(items[:n_items], earlier.manifest["items"], strict=False):
        text = earlier.files[source["files"]["text"]["path"]].decode()
        # a comma made a full stop, as an editor does (never inside an ID or a phone number)
        commas = [at for at, char in enumerate(text) if char == "，"] or [len(text) - 1]
        at = rng.choice(commas)
        edited = (text[:at] + "。" + text[at + 1 :]).encode()
        path = item["files"]["text"]["path"]
        files[path] = edited
        item["files"] = {"text": file_entry(path, edited)}
        truth[item["item_id"]] = earlier.truth[source["item_id"]]
    manifest = {**delivery.manifest, "items": items}
    return dataclasses.replace(delivery, files=files, manifest=manifest, truth=truth)


def put_delivery(
    store: Store,
    client_id: str,
    delivery_id: str,
    files: dict[str, bytes],
    manifest_bytes: bytes,
    prefix: str = "uploads",
) -> str:
    """Put every file, then the manifest (the commit marker) last; return the manifest's key."""
    base = f"{prefix}/{client_id}/{delivery_id}/"
    for path in sorted(files):
        store.put(base + path, files[path])
    store.put(base + MANIFEST_NAME, manifest_bytes)
    return base + MANIFEST_NAME


def upload_delivery(store: Store, delivery: SimulatedDelivery, prefix: str = "uploads") -> str:
    """Upload as a client does, under uploads/{client_id}/{delivery_id}/, manifest last."""
    return put_delivery(
        store, delivery.client_id, delivery.delivery_id, delivery.files, delivery.manifest_bytes, prefix
    )


def upload_text_delivery(
    store: Store,
    seed: int,
    client_id: str,
    delivery_id: str,
    n_items: int,
    license: str = "publishable",
    industry: str | None = None,
    prefix: str = "uploads",
) -> str:
    """Stream a text delivery of any size (a million items) into `store`, manifest last.

    Writes the same bytes as make_delivery(..., "text", ...) + upload_delivery without holding the
    files; its truth is iter_text_items(f"{seed}/{client_id}/{delivery_id}", industry, n_items).
    """
    industry = _resolve(client_id, industry)
    head = _manifest_head(client_id, delivery_id, industry, "text", "classification", license)
    base = f"{prefix}/{client_id}/{delivery_id}/"
    entries = []
    texts = simulated("text", "classification").items(
        f"{seed}/{client_id}/{delivery_id}", industry, head["label_set"], n_items, ItemOptions()
    )
    for item_id, parts, _ in texts:
        path = _item_path(item_id, "text")
        store.put(base + path, parts["text"])
        item = {"item_id": item_id, "files": {"text": file_entry(path, parts["text"])}}
        entries.append(json.dumps(item, ensure_ascii=False))
    # the manifest of a million items is spliced from per-item JSON instead of one giant dict
    shell = encode_manifest({**head, "items": []})
    manifest = shell[: -len(b"[]}")] + ("[" + ", ".join(entries) + "]}").encode("utf-8")
    store.put(base + MANIFEST_NAME, manifest)
    return base + MANIFEST_NAME
