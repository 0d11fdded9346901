"""`annobase trace ITEM_KEY`: an item's path from its upload to every release that holds it.

Every step is a query in `sql/trace_*.sql` (and `item_upload.sql`) over the catalog, so what this
prints is what the catalog records: upload key and sha256, cleaning, batches and their gates,
annotators, consensus, releases, with the Dagster run id of each step.
"""

from __future__ import annotations

import sys

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

    catalog = Catalog(object_store_from_env().process_config_and_initialize().open())
    found = False
    for query, title in STEPS:
        frame = catalog.query(query, item_key=item_key)
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
    return 0
