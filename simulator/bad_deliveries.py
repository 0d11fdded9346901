"""Broken deliveries from the simulated clients (outside world): one per way an upload goes wrong.

Each function takes a good SimulatedDelivery and returns a corrupted copy named after the reason
intake must give. `bad_item_ids` lists the items intake must quarantine while accepting the rest;
it is empty when the whole delivery must be rejected. The upload prefix always keeps valid,
lowercase ids, so the defect is in the manifest or the files, never in where they were put.
"""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from simulator.clients import CLIENTS
from simulator.deliveries import SimulatedDelivery, Store, encode_manifest, make_delivery, put_delivery


@dataclass
class BadDelivery:
    client_id: str  # the upload prefix uploads/{client_id}/{delivery_id}/
    delivery_id: str
    manifest_bytes: bytes
    files: dict[str, bytes]
    expected_reason: str
    bad_item_ids: list[str]  # empty: the whole delivery must be rejected


def _bad(
    delivery: SimulatedDelivery,
    reason: str,
    manifest: dict | bytes,
    files: dict[str, bytes] | None = None,
    bad_item_ids: list[str] | None = None,
) -> BadDelivery:
    return BadDelivery(
        delivery.client_id,
        delivery.delivery_id,
        manifest if isinstance(manifest, bytes) else encode_manifest(manifest),
        dict(delivery.files) if files is None else files,
        reason,
        bad_item_ids or [],
    )


def _item_with(manifest: dict, part: str) -> dict:
    """The first item that has `part`: the one to corrupt."""
    for item in manifest["items"]:
        if part in item["files"]:
            return item
    raise ValueError(f"the delivery has no item with a {part!r} part to corrupt")


def _first_part(item: dict) -> dict:
    return next(iter(item["files"].values()))


# --- the whole delivery is rejected ----------------------------------------------------------


def malformed_json(delivery: SimulatedDelivery) -> BadDelivery:
    """The manifest cut off half way, as an interrupted writer leaves it."""
    data = delivery.manifest_bytes
    return _bad(delivery, "malformed_json", data[: len(data) // 2])


def missing_field(delivery: SimulatedDelivery, field: str = "license") -> BadDelivery:
    manifest = copy.deepcopy(delivery.manifest)
    del manifest[field]
    return _bad(delivery, "missing_field", manifest)


def unknown_industry(delivery: SimulatedDelivery, industry: str = "aerospace") -> BadDelivery:
    return _bad(delivery, "unknown_industry", {**delivery.manifest, "industry": industry})


def unknown_modality(delivery: SimulatedDelivery, modality: str = "video") -> BadDelivery:
    return _bad(delivery, "unknown_modality", {**delivery.manifest, "modality": modality})


def invalid_id(delivery: SimulatedDelivery, field: str = "item_id") -> BadDelivery:
    """An id outside [a-z0-9][a-z0-9_-]{0,63}: a bad item id costs that item, a bad client or delivery id
    the whole delivery (ids become keys, so neither is ever used as one)."""
    manifest = copy.deepcopy(delivery.manifest)
    if field == "item_id":
        manifest["items"][0]["item_id"] = "I 01"
        return _bad(delivery, "invalid_id", manifest, bad_item_ids=["I 01"])
    manifest[field] = manifest[field].upper().replace("-", " ")
    return _bad(delivery, "invalid_id", manifest)


def empty_delivery(delivery: SimulatedDelivery) -> BadDelivery:
    return _bad(delivery, "empty_delivery", {**delivery.manifest, "items": []}, files={})


def client_id_mismatch(delivery: SimulatedDelivery) -> BadDelivery:
    """A manifest naming another client than the prefix it was uploaded under."""
    other = next(client for client in sorted(CLIENTS) if client != delivery.client_id)
    return _bad(delivery, "client_id_mismatch", {**delivery.manifest, "client_id": other})


# --- only the named items are rejected -------------------------------------------------------


def path_escape(delivery: SimulatedDelivery) -> BadDelivery:
    """One item's path climbs out of the delivery, another's is absolute; both must stay unread."""
    manifest = copy.deepcopy(delivery.manifest)
    climbing, absolute = manifest["items"][:2]
    _first_part(climbing)["path"] = "../other/x.txt"
    _first_part(absolute)["path"] = "/etc/passwd"
    return _bad(delivery, "path_escape", manifest, bad_item_ids=[climbing["item_id"], absolute["item_id"]])


def file_missing(delivery: SimulatedDelivery) -> BadDelivery:
    item = delivery.manifest["items"][0]
    files = {path: data for path, data in delivery.files.items() if path != _first_part(item)["path"]}
    return _bad(delivery, "file_missing", delivery.manifest, files, [item["item_id"]])


def size_mismatch(delivery: SimulatedDelivery) -> BadDelivery:
    manifest = copy.deepcopy(delivery.manifest)
    item = manifest["items"][0]
    _first_part(item)["bytes"] += 1
    return _bad(delivery, "size_mismatch", manifest, bad_item_ids=[item["item_id"]])


def sha256_mismatch(delivery: SimulatedDelivery) -> BadDelivery:
    manifest = copy.deepcopy(delivery.manifest)
    item = manifest["items"][0]
    _first_part(item)["sha256"] = hashlib.sha256(b"not the uploaded bytes").hexdigest()
    return _bad(delivery, "sha256_mismatch", manifest, bad_item_ids=[item["item_id"]])


def _replace_file(delivery: SimulatedDelivery, reason: str, part: str, data: bytes) -> BadDelivery:
    """Swap one part's bytes and describe them truthfully: only decoding can catch the defect."""
    manifest = copy.deepcopy(delivery.manifest)
    item = _item_with(manifest, part)
    entry = item["files"][part]
    entry["sha256"], entry["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    files = {**delivery.files, entry["path"]: data}
    return _bad(delivery, reason, manifest, files, [item["item_id"]])


def not_utf8(delivery: SimulatedDelivery) -> BadDelivery:
    """A text part saved in GBK, the encoding older Chinese Windows tools default to."""
    path = _item_with(delivery.manifest, "text")["files"]["text"]["path"]
    return _replace_file(delivery, "not_utf8", "text", delivery.files[path].decode("utf-8").encode("gbk"))


def undecodable_audio(delivery: SimulatedDelivery) -> BadDelivery:
    item_id = _item_with(delivery.manifest, "audio")["item_id"]
    garbage = random.Random(f"garbage/{delivery.delivery_id}/{item_id}").randbytes(4096)
    return _replace_file(delivery, "undecodable_audio", "audio", garbage)


def undecodable_image(delivery: SimulatedDelivery) -> BadDelivery:
    """An image cut to a third: its header still reads, its pixels do not."""
    path = _item_with(delivery.manifest, "image")["files"]["image"]["path"]
    data = delivery.files[path]
    return _replace_file(delivery, "undecodable_image", "image", data[: len(data) // 3])


FAILURE_MODES: dict[str, Callable[[SimulatedDelivery], BadDelivery]] = {
    f.__name__: f
    for f in (
        malformed_json,
        missing_field,
        unknown_industry,
        unknown_modality,
        invalid_id,
        path_escape,
        file_missing,
        size_mismatch,
        sha256_mismatch,
        empty_delivery,
        client_id_mismatch,
        not_utf8,
        undecodable_audio,
        undecodable_image,
    )
}

# failure modes that need a part a text delivery lacks
_MODALITY_FOR = {"undecodable_audio": "speech", "undecodable_image": "image"}


def all_bad_deliveries(seed: int = 0, client_id: str = "xiehe-clinic", n_items: int = 3) -> list[BadDelivery]:
    """Every failure mode, each in its own delivery `d-bad-{reason}` with `n_items` (>= 2) items."""
    return [
        corrupt(make_delivery(seed, client_id, f"d-bad-{reason}", _MODALITY_FOR.get(reason, "text"), n_items))
        for reason, corrupt in FAILURE_MODES.items()
    ]


def upload_bad_delivery(store: Store, bad: BadDelivery, prefix: str = "uploads") -> str:
    """Upload as a real client would, manifest last; return the manifest's key."""
    return put_delivery(store, bad.client_id, bad.delivery_id, bad.files, bad.manifest_bytes, prefix)
