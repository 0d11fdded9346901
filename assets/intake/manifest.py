"""Reading a client's upload manifest (CONTRACT.md section 2) without trusting any of it.

Problems with the delivery as a whole raise `DeliveryRejected`; problems with one item reject only
that item. File contents are checked later, on the Dask cluster (`verify.py`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

from annobase.keys import DeliveryRef, is_valid_id
from annobase.settings import Settings
from annotation_types import labelled_tasks
from assets.intake import reasons as r
from assets.intake.reasons import Reason, shorten

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
SAFE_PATH = re.compile(r"[A-Za-z0-9._/-]+")
ID_FIELDS = {"client_id", "delivery_id", "item_id"}


ID_RULE = "[a-z0-9][a-z0-9_-]{0,63}"


class DuplicateKey(ValueError):
    """A JSON object names a key twice: `json` would keep the last value silently."""


def _object_without_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise DuplicateKey(f"the key {shorten(twice, 80)} appears more than once in one object")
    return document


class DeliveryRejected(Exception):
    """The whole delivery is refused; `reasons` lists every delivery-level problem found."""

    def __init__(self, reasons: list[Reason], items_listed: int = 0):
        super().__init__("; ".join(f"{reason.code}: {reason.detail}" for reason in reasons))
        self.reasons = reasons
        self.items_listed = items_listed


@dataclass(frozen=True)
class FileSpec:
    part: str
    path: str
    sha256: str
    bytes: int
    upload_key: str


@dataclass(frozen=True)
class ManifestItem:
    index: int
    item_id: str
    files: tuple[FileSpec, ...]


@dataclass(frozen=True)
class RejectedItem:
    """An item refused before its files were read; `files` are those safe to copy to quarantine."""

    index: int
    item_id: str | None
    reasons: tuple[Reason, ...]
    files: tuple[FileSpec, ...] = ()


@dataclass
class ParsedManifest:
    ref: DeliveryRef
    sha256: str
    industry: str
    modality: str
    task: str
    license: str
    label_set: list[str]
    items: list[ManifestItem] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)

    @property
    def items_listed(self) -> int:
        return len(self.items) + len(self.rejected)


@cache
def manifest_validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _schema_reason(error, item_id: str | None = None) -> Reason:
    where = "/".join(str(step) for step in error.absolute_path) or "(top level)"
    if error.validator == "required":
        code = r.MISSING_FIELD
    elif error.validator == "const" and list(error.absolute_path) == ["schema"]:
        code = r.UNSUPPORTED_SCHEMA
    elif error.validator == "pattern" and error.absolute_path and error.absolute_path[-1] in ID_FIELDS:
        code = r.INVALID_ID
    else:
        code = r.SCHEMA_VIOLATION
    return Reason(code, f"{where}: {error.message}", item_id=item_id)


def parse_manifest(raw: bytes, ref: DeliveryRef, settings: Settings) -> ParsedManifest:
    """Validate `raw` as the manifest uploaded under `ref` and split its items into usable and rejected."""
    limits = settings.limits
    if len(raw) > limits.max_manifest_bytes:
        raise DeliveryRejected(
            [
                Reason(
                    r.MANIFEST_TOO_LARGE, f"{len(raw)} bytes exceeds the limit of {limits.max_manifest_bytes}"
                )
            ]
        )
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_object_without_duplicate_keys)
    except UnicodeDecodeError as error:
        raise DeliveryRejected([Reason(r.MALFORMED_JSON, f"manifest is not UTF-8: {error}")]) from error
    except DuplicateKey as duplicate:
        raise DeliveryRejected([Reason(r.DUPLICATE_KEY, str(duplicate))]) from duplicate
    except (ValueError, RecursionError) as error:  # JSONDecodeError, and ints past Python's digit limit
        raise DeliveryRejected(
            [Reason(r.MALFORMED_JSON, f"manifest is not JSON: {shorten(str(error))}")]
        ) from error
    if not isinstance(document, dict):
        raise DeliveryRejected([Reason(r.SCHEMA_VIOLATION, "manifest must be a JSON object")])
    items, labels = document.get("items"), document.get("label_set")
    if isinstance(items, list) and len(items) > limits.max_manifest_items:
        raise DeliveryRejected(
            [
                Reason(
                    r.TOO_MANY_ITEMS, f"{len(items)} items exceeds the limit of {limits.max_manifest_items}"
                )
            ],
            len(items),
        )
    if isinstance(labels, list) and len(labels) > limits.max_label_set:
        raise DeliveryRejected(
            [
                Reason(
                    r.LABEL_SET_TOO_LARGE, f"{len(labels)} labels exceeds the limit of {limits.max_label_set}"
                )
            ],
            len(items) if isinstance(items, list) else 0,
        )

    errors = sorted(manifest_validator().iter_errors(document), key=lambda error: list(error.absolute_path))
    item_errors: dict[int, list] = {}
    delivery_reasons = []
    for error in errors:
        path = list(error.absolute_path)
        if len(path) >= 2 and path[0] == "items" and isinstance(path[1], int):
            item_errors.setdefault(path[1], []).append(error)
        else:
            delivery_reasons.append(_schema_reason(error))
    if not delivery_reasons:
        delivery_reasons = _delivery_level_reasons(document, ref, settings)
    if delivery_reasons:
        items = document.get("items")
        raise DeliveryRejected(delivery_reasons, len(items) if isinstance(items, list) else 0)

    parsed = ParsedManifest(
        ref=ref,
        sha256=hashlib.sha256(raw).hexdigest(),
        industry=document["industry"],
        modality=document["modality"],
        task=document["task"],
        license=document["license"],
        label_set=list(document.get("label_set") or []),
    )
    seen_ids: set[str] = set()
    seen_files: dict[str, str] = {}  # upload key -> the item that named it first
    for index, entry in enumerate(document["items"]):
        raw_id = entry.get("item_id") if isinstance(entry, dict) else None
        item_id = raw_id if isinstance(raw_id, str) else None
        if index in item_errors:
            reasons = tuple(_schema_reason(error, item_id) for error in item_errors[index])
            parsed.rejected.append(RejectedItem(index, item_id, reasons))
            continue
        files, reasons = _item_files(entry, ref, parsed.modality, settings)
        if not is_valid_id(item_id):  # the schema's `$` lets a trailing newline through
            reasons.append(
                Reason(r.INVALID_ID, f"item_id {shorten(item_id, 80)} is not of the form {ID_RULE}")
            )
        for spec in files:
            if spec.upload_key in seen_files:
                reasons.append(
                    Reason(
                        r.DUPLICATE_FILE,
                        f"{spec.path} is already item {seen_files[spec.upload_key]!r}'s file",
                        part=spec.part,
                        path=spec.path,
                    )
                )
            else:
                seen_files[spec.upload_key] = item_id
        if item_id in seen_ids:
            reasons.append(
                Reason(r.DUPLICATE_ITEM_ID, f"item_id {item_id!r} is listed more than once", item_id)
            )
        seen_ids.add(item_id)
        if reasons:
            reasons = [Reason(x.code, x.detail, item_id, x.part, x.path) for x in reasons]
            parsed.rejected.append(RejectedItem(index, item_id, tuple(reasons), tuple(files)))
        else:
            parsed.items.append(ManifestItem(index, item_id, tuple(files)))
    return parsed


def _delivery_level_reasons(document: dict, ref: DeliveryRef, settings: Settings) -> list[Reason]:
    found = []
    if document["client_id"] != ref.client_id:
        found.append(
            Reason(
                r.CLIENT_ID_MISMATCH,
                f"manifest says client_id {document['client_id']!r} but sits under {ref.client_id!r}",
            )
        )
    if document["delivery_id"] != ref.delivery_id:
        found.append(
            Reason(
                r.DELIVERY_ID_MISMATCH,
                f"manifest says delivery_id {document['delivery_id']!r} but sits under {ref.delivery_id!r}",
            )
        )
    if document["industry"] not in settings.industries:
        found.append(
            Reason(
                r.UNKNOWN_INDUSTRY,
                f"industry {document['industry']!r} is not one of {sorted(settings.industries)}",
            )
        )
    modality = settings.modalities.get(document["modality"])
    if modality is None:
        found.append(
            Reason(
                r.UNKNOWN_MODALITY,
                f"modality {document['modality']!r} is not one of {sorted(settings.modalities)}",
            )
        )
    elif document["task"] != modality.task:
        found.append(
            Reason(
                r.TASK_MISMATCH,
                f"modality {modality.name!r} takes task {modality.task!r}, not {document['task']!r}",
            )
        )
    for label in document.get("label_set") or ():
        if not label.isprintable() or label != label.strip():
            found.append(
                Reason(r.INVALID_LABEL, f"label {shorten(label, 80)} has control characters or edge spaces")
            )
            break
    if document["task"] in labelled_tasks() and not document.get("label_set"):
        found.append(Reason(r.MISSING_LABEL_SET, f"task {document['task']!r} needs a non-empty label_set"))
    if not document["items"]:
        found.append(Reason(r.EMPTY_DELIVERY, "the manifest lists no items"))
    return found


def _item_files(entry: dict, ref: DeliveryRef, modality_name: str, settings: Settings):
    """The item's files as FileSpecs, and the reasons it cannot be taken (empty when it can)."""
    modality = settings.modalities[modality_name]
    reasons: list[Reason] = []
    files: list[FileSpec] = []
    parts = set(entry["files"])
    unknown = parts - set(modality.parts)
    if unknown or len(parts) < modality.min_parts:
        reasons.append(
            Reason(
                r.PARTS_MISMATCH,
                f"parts {sorted(parts)}: modality {modality.name!r} takes at least {modality.min_parts} "
                f"of {list(modality.parts)}",
            )
        )
    for part, spec in sorted(entry["files"].items()):
        path = spec["path"]
        problem = _path_problem(path, settings.part_extensions.get(part, ()))
        if problem:
            reasons.append(Reason(problem[0], problem[1], part=part, path=path))
            continue
        files.append(FileSpec(part, path, spec["sha256"], spec["bytes"], ref.upload_prefix + path))
    return files, reasons


def _path_problem(path: str, extensions: tuple[str, ...]) -> tuple[str, str] | None:
    """A file path must name a file under the delivery's `items/`, with its part's extension."""
    segments = path.split("/")
    if path.startswith("/") or "\\" in path or ".." in segments or ":" in path:
        return r.PATH_ESCAPE, f"path {path!r} leaves the delivery; paths are relative, under items/"
    if not SAFE_PATH.fullmatch(path) or any(seg in ("", ".") for seg in segments) or segments[0] != "items":
        return (
            r.INVALID_PATH,
            f"path {path!r} is not a plain relative path under items/ ([A-Za-z0-9._-] names)",
        )
    if PurePosixPath(path).suffix.lower() not in extensions:
        return r.UNSUPPORTED_EXTENSION, f"path {path!r} does not end in one of {list(extensions)}"
    return None


def valid_item_reference(item: RejectedItem) -> str:
    """A name for a rejected item that is safe inside a key, whatever id the client gave it."""
    return item.item_id if is_valid_id(item.item_id) else f"index-{item.index:06d}"
