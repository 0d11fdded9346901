"""Object keys of the contract (CONTRACT.md section 1), built and parsed in one place.

Ids are checked before they become part of a key, so nothing a client writes is ever
interpreted as a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

UPLOADS = "uploads/"
MANIFEST_NAME = "manifest.json"
ANNOTATIONS = "annotations/"
EXPORT_NAME = "export.json"


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def require_id(value: str, what: str) -> str:
    if not is_valid_id(value):
        raise ValueError(f"{what} {value!r} is not of the form [a-z0-9][a-z0-9_-]{{0,63}}")
    return value


@dataclass(frozen=True)
class DeliveryRef:
    """One client delivery: the unit of intake and the dynamic partition `client_id/delivery_id`."""

    client_id: str
    delivery_id: str

    @property
    def partition_key(self) -> str:
        return f"{self.client_id}/{self.delivery_id}"

    @classmethod
    def from_partition_key(cls, key: str) -> DeliveryRef:
        client_id, _, delivery_id = key.partition("/")
        return cls(require_id(client_id, "client_id"), require_id(delivery_id, "delivery_id"))

    @property
    def upload_prefix(self) -> str:
        return f"{UPLOADS}{self.client_id}/{self.delivery_id}/"

    @property
    def manifest_key(self) -> str:
        return self.upload_prefix + MANIFEST_NAME

    @property
    def quarantine_prefix(self) -> str:
        return f"quarantine/{self.client_id}/{self.delivery_id}/"

    def item_key(self, item_id: str) -> str:
        return f"{self.client_id}/{self.delivery_id}/{item_id}"


def parse_manifest_key(key: str) -> DeliveryRef | None:
    """`uploads/{client}/{delivery}/manifest.json` -> its delivery; None for any other key.

    Raises ValueError when the key has the manifest's shape but ids outside the contract.
    """
    if not key.startswith(UPLOADS) or not key.endswith("/" + MANIFEST_NAME):
        return None
    segments = key[len(UPLOADS) :].split("/")
    if len(segments) != 3:
        return None
    client_id, delivery_id, _ = segments
    return DeliveryRef(require_id(client_id, "client_id"), require_id(delivery_id, "delivery_id"))


def export_key(batch_id: str) -> str:
    """`annotations/{batch_id}/export.json`: where the annotation tool leaves a finished batch."""
    return f"{ANNOTATIONS}{require_id(batch_id, 'batch_id')}/{EXPORT_NAME}"


def batch_of_export_key(key: str) -> str | None:
    """`annotations/{batch_id}/export.json` -> batch_id (unchecked); None for any other key."""
    segments = key[len(ANNOTATIONS) :].split("/") if key.startswith(ANNOTATIONS) else []
    return segments[0] if len(segments) == 2 and segments[1] == EXPORT_NAME else None


STARTER_GOLD = "gold/starter/"
STARTER_CLIENT = "annobase"


def starter_gold_prefix(industry: str, modality: str) -> str:
    """`gold/starter/{industry}/{modality}/`: the base's own curated gold for an industry and task, the
    honeypots of a client with no gold yet. `set.json` lists the items and their references, which
    never leave annobase; the items' media sit beside it under `items/`."""
    return f"{STARTER_GOLD}{require_id(industry, 'industry')}/{require_id(modality, 'modality')}/"


def starter_delivery_id(industry: str, modality: str) -> str:
    """The delivery id starter gold items carry in a task's data (client `annobase`)."""
    return require_id(f"starter-{industry}-{modality}"[:64], "delivery_id")
