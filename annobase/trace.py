"""`annobase trace ITEM_KEY`: an item's path from its upload to every release that holds it.

Every step is a query in `sql/trace_*.sql` (and `item_upload.sql`) over the catalog, so what this
prints is what the catalog records: upload key and sha256, cleaning, batches and their gates,
annotators, consensus, releases, with the Dagster run id of each step. Then the provenance ledger's
entries about the item's delivery and batches (annobase/ledger.py), from the client's chain as
verified up to its first broken link, if any.
"""

from __future__ import annotations

import sys

from annobase import ledger
from annobase.keys import is_valid_id

STEPS = (
    ("item_upload", "upload (intake)"),
    ("trace_cleaning", "cleaning"),
    ("trace_batches", "annotation batches and their gate"),
    ("trace_annotations", "annotations"),
    ("trace_consensus", "consensus"),
    ("trace_releases", "releases"),
)


def run_trace(item_key: str) -> int:
    parts = item_key.split("/")
    if len(parts) != 3 or not all(is_valid_id(part) for part in parts):
        print(f"error: {item_key!r} is not client_id/delivery_id/item_id", file=sys.stderr)
        return 2
    from resources import object_store_from_env
    from resources.catalog import Catalog

    store = object_store_from_env().process_config_and_initialize().open()
    catalog = Catalog(store)
    found, batch_ids = False, []
    for query, title in STEPS:
        frame = catalog.query(query, item_key=item_key)
        if query == "trace_batches":
            batch_ids = frame.batch_id.tolist()
        print(f"\n== {title} ({len(frame)})")
        if frame.empty:
            print("   (none)")
            continue
        found = True
        for row in frame.to_dict("records"):
            print("   " + "  ".join(f"{key}={value}" for key, value in row.items()))
    if not found:
        print(f"\n{item_key} is not in the catalog", file=sys.stderr)
        return 1
    print_ledger(store, parts[0], parts[1], batch_ids)
    return 0


def print_ledger(store, client_id: str, delivery_id: str, batch_ids: list[str]) -> None:
    check = ledger.verify_chain(store, client_id)
    entries = ledger.concerning(check.entries, delivery_id, batch_ids)
    print(f"\n== provenance ledger, ledger/{client_id}/ ({len(entries)} of {len(check.entries)} entries)")
    for entry in entries:
        facts = "  ".join(f"{key}={value}" for key, value in entry.facts.items())
        print(f"   #{entry.seq} {entry.at} {entry.kind} run={entry.run_id} hash={entry.hash[:12]}…  {facts}")
    if not check.ok:
        print(f"   BROKEN after entry {check.head.seq}: {check.problem}")
