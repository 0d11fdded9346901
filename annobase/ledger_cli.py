"""`annobase ledger verify [CLIENT_ID]`: recompute the provenance ledger's chains (annobase/ledger.py).

For every client with a chain or a catalog (or the one named): every link from the first entry on,
the head hint, every head a published release's MANIFEST pinned, and that each catalog verdict
(intake per delivery, gate per batch) has its entry. Exit codes: 0 every chain holds, 1 one does not
(the first broken link of each broken chain is printed), 2 the command was used wrongly.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

from annobase import ledger
from annobase.keys import is_valid_id
from annobase.object_store import ObjectStore

DATASETS = "datasets/"
DELIVERIES_CATALOG = "catalog/deliveries/"


def run_ledger_verify(client_id: str | None) -> int:
    if client_id is not None and not is_valid_id(client_id):
        print(f"error: {client_id!r} is not a client id ([a-z0-9][a-z0-9_-]{{0,63}})", file=sys.stderr)
        return 2
    from resources import object_store_from_env
    from resources.catalog import Catalog

    store = object_store_from_env().process_config_and_initialize().open()
    catalog = Catalog(store)
    if client_id is not None:
        names = [client_id]
    else:
        in_catalog = [
            prefix[len(DELIVERIES_CATALOG) : -1] for prefix in store.list_prefixes(DELIVERIES_CATALOG)
        ]
        names = sorted(set(ledger.clients(store)) | set(in_catalog))
    pins = release_pins(store)
    verdicts = defaultdict(list)  # read once: the gate's rows are kept per batch, not per client
    for row in catalog.query("ledger_recorded_verdicts", client_id=client_id).to_dict("records"):
        verdicts[row["client_id"]].append(row)
    broken, total = 0, 0
    for name in names:
        check = ledger.verify_chain(store, name, pins.get(name, ()))
        problems = [check.problem] if check.problem else []
        if not problems:
            problems = ledger.unrecorded_verdicts(check.entries, verdicts[name])[:1]
        if not check.entries and not problems:
            problems = ["no ledger entries"]
        if problems:
            broken += 1
            print(f"BROKEN: {name}: {problems[0]}", file=sys.stderr)
            continue
        total += len(check.entries)
        head = check.head
        print(
            f"OK: {name}: {len(check.entries)} entries, head {head.seq} ({head.hash[:12]}…), "
            f"{check.pins_checked} release pins reached"
        )
    if broken:
        print(f"{broken} of {len(names)} chains broken", file=sys.stderr)
        return 1
    print(f"OK: {len(names)} chains, {total} entries: every link holds")
    return 0


def release_pins(store: ObjectStore) -> dict[str, list[ledger.Pin]]:
    """client_id -> the heads the published releases' MANIFESTs pinned. Read as stored: that a MANIFEST
    is the signed one is what `annobase verify` proves."""
    from assets.release.publishing import VERSION
    from assets.release.release_manifest import MANIFEST_NAME, SIGNATURE_NAME

    pins: dict[str, list[ledger.Pin]] = defaultdict(list)
    for industry in store.list_prefixes(DATASETS):
        for version in store.list_prefixes(industry):
            name = version[len(industry) : -1]
            if not VERSION.fullmatch(name) or store.head(version + SIGNATURE_NAME) is None:
                continue  # not a published version
            source = version + MANIFEST_NAME
            try:
                heads = json.loads(store.get(source))["lineage"].get("ledger_heads") or {}
                for client_id, head in heads.items():
                    pins[client_id].append(ledger.Pin(source, int(head["seq"]), str(head["hash"])))
            except (KeyError, ValueError, TypeError, AttributeError) as error:
                print(f"warning: {source} could not be read for ledger pins ({error})", file=sys.stderr)
    return pins
