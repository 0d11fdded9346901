"""Which deliveries a release must leave out, and why: the release holds only what the client's
current manifest version allows.

A release reads the catalog, which lags the store: a client may have re-uploaded a delivery (turning
it private, say) whose new version has not been taken in, or whose intake failed. The store is the
client's word, so each delivery is checked against it: a delivery whose current manifest is not the
version the catalog took in is withdrawn at once, whatever the new version says, until that version's
own intake decides. A delivery the previous release held and this one does not is listed as withdrawn
in the new MANIFEST, with the reason.
"""

from __future__ import annotations

import json

from annobase.keys import DeliveryRef
from annobase.object_store import ObjectStore, PreconditionFailed, StoredObject

# a manifest is read here only to say why a delivery is withdrawn: its license field, if it has one
MANIFEST_PEEK_BYTES = 64 << 20


def rows_of_another_version(raw_items, clean_items, delivery) -> str | None:
    """Why the delivery's item rows cannot be released under its deliveries row (`delivery`): rows of
    another manifest version or of another run than the one that took that version in (a later run
    that stopped part-way). A release holds items only under the license of the version they came from."""
    if not (raw_items.manifest_etag == delivery.manifest_etag).all():
        return "intake_in_progress: its items are not all of the manifest version taken in"
    if not (clean_items.dagster_run_id == delivery.dagster_run_id).all():
        return "intake_in_progress: its cleaned items are not from the run that took it in"
    return None


def manifest_change(store: ObjectStore, ref: DeliveryRef, taken_in_etag: str) -> str | None:
    """Why the client's current manifest withdraws the delivery, or None when it is the version taken in."""
    head = store.head(ref.manifest_key)
    if head is None:
        return "manifest_removed: the client removed the delivery's manifest"
    if head.etag == taken_in_etag:
        return None
    return f"manifest_changed: re-uploaded as {_new_license(store, ref, head)}, awaiting its intake"


def _new_license(store: ObjectStore, ref: DeliveryRef, head: StoredObject) -> str:
    """The new version's license as a phrase, when it can be read; the withdrawal does not depend on it."""
    if head.size > MANIFEST_PEEK_BYTES:
        return "a new version"
    try:
        document = json.loads(store.get_version(ref.manifest_key, head.etag))
    except (KeyError, PreconditionFailed, ValueError, RecursionError):
        return "a new version"
    license = document.get("license") if isinstance(document, dict) else None
    return f"{license!r}" if license in ("private", "publishable") else "a new version"


def catalog_reason(state) -> str:
    """Why a delivery the catalog holds (a `delivery_state` row, or None) is not in the release."""
    if state is None:
        return "not_in_catalog: the delivery is no longer in the catalog"
    if state.get("in_progress"):
        return "intake_in_progress: its current version's intake has not finished"
    if state["status"] == "rejected":
        return f"rejected: its current version was rejected ({state['reason']})"
    if state["license"] != "publishable":
        return f"license: its current version is {state['license']!r}"
    return "not_gated: a batch has no passed verdict on its current export and tasks"
