"""The provenance ledger: every change to a client's data, as an append-only, hash-chained record.

One chain per client, `ledger/{client_id}/{seq:012d}.json` (seq 1, 2, …), so appends of different
clients never contend. Each entry holds its seq, kind, time, the run id, the facts of the event (ids,
ETags, sha256s, counts, verdicts; never personal data or secrets) and `prev`, the hash of the entry
before it (64 zeros for the first); its own `hash` is the sha256 of the canonical JSON of all of that.
Altering an entry changes its hash, which no longer matches the one it records or the `prev` of the
next; deleting or moving one leaves a gap or a seq that does not match its key.

Appending is a conditional write (`put_if_absent`, S3 `If-None-Match: *`) of entry head+1: of two
runs appending at once, one gets the seq and the other reads the new head and tries the next one,
so the chain never forks. The head is found from `ledger/{client_id}/head.json`, a hint written
after each append (not trusted for anything but where to start): a listing from the seq it names
finds any later entries, and the entries from the hint's on are checked to chain onto it, so an
append reads a handful of small objects however long the chain is. A store object also remembers
the head its last append to a client reached, so a run taking in many deliveries of one client
appends with one conditional write and the hint each (reading on only when another run appended
meanwhile).

Order against the writes it records: a step appends its entry *before* the catalog write or commit
marker that lets the change flow on (write-ahead). A run that crashes in between leaves an entry
for an attempt that did not land, and its retry appends another: the ledger may over-record, never
under-record, so a catalog row or published object with no entry before it is evidence of a write
behind annobase (`annobase ledger verify` cross-checks the catalog's deliveries and gate verdicts).

What an entry records for each step is decided by the `record_*` functions at the end, which the
assets call with one line each. Kept free of dagster: it only needs the object store.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from weakref import WeakKeyDictionary

from annobase.keys import DeliveryRef, require_id
from annobase.object_store import ObjectStore

LEDGER_PREFIX = "ledger/"
HEAD_HINT_NAME = "head.json"
SCHEMA = "annobase.ledger-entry/1"
GENESIS = "0" * 64
ENTRY_NAME = re.compile(r"(\d{12})\.json")
# Tries at one append before giving up: each lost try means another run appended meanwhile.
APPEND_ATTEMPTS = 50
READ_THREADS = 16  # the S3 client's connection pool holds 32

# Kinds of entry, one per step that changes a client's data.
UPLOAD = "upload"
INTAKE = "intake"
CLEANING = "cleaning"
BATCHES = "batches"
EXPORT = "export"
GATE = "gate"
CLIENT_DELIVERY = "client_delivery"
RELEASE = "release"
KINDS = (UPLOAD, INTAKE, CLEANING, BATCHES, EXPORT, GATE, CLIENT_DELIVERY, RELEASE)


class LedgerBroken(Exception):
    """The chain does not hold where an append or a head lookup read it: nothing is appended onto
    a chain that was tampered with (`annobase ledger verify` names the broken link)."""


class LedgerContended(Exception):
    """An append lost the race for the next seq APPEND_ATTEMPTS times in a row."""


@dataclass(frozen=True)
class Head:
    """The last entry of a chain: its seq and hash (seq 0 and GENESIS for an empty chain)."""

    seq: int
    hash: str

    def as_dict(self) -> dict:
        return {"seq": self.seq, "hash": self.hash}


EMPTY = Head(0, GENESIS)
# store object -> client_id -> the head its last append reached (not trusted: a lost race reads on)
_known_heads: WeakKeyDictionary[ObjectStore, dict[str, Head]] = WeakKeyDictionary()


@dataclass(frozen=True)
class Entry:
    client_id: str
    seq: int
    kind: str
    at: str
    run_id: str | None
    facts: dict
    prev: str
    hash: str


def client_prefix(client_id: str) -> str:
    return f"{LEDGER_PREFIX}{require_id(client_id, 'client_id')}/"


def entry_key(client_id: str, seq: int) -> str:
    return f"{client_prefix(client_id)}{seq:012d}.json"


def head_hint_key(client_id: str) -> str:
    return client_prefix(client_id) + HEAD_HINT_NAME


def canonical(document: Mapping) -> bytes:
    """The one byte string a document hashes as: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(
        document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def seal(body: Mapping) -> tuple[bytes, str]:
    """An entry's stored bytes and its hash: the sha256 of the canonical body, stored beside it."""
    digest = hashlib.sha256(canonical(body)).hexdigest()
    return canonical({**body, "hash": digest}), digest


def digest_of(lines: Iterable[str]) -> str:
    """sha256 over sorted lines: a list (of item keys and hashes, say) in one value of the facts."""
    return hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()


# --- appending -----------------------------------------------------------------------------------


def append(
    store: ObjectStore, client_id: str, events: Sequence[tuple[str, Mapping]], run_id: str | None
) -> Head:
    """Append `events` (kind, facts), in order, to the client's chain; returns the new head.

    Another run may append between two of them: each entry is placed by its own conditional write."""
    known = _known_heads.setdefault(store, {})
    head = known.get(client_id) or find_head(store, client_id)
    for kind, facts in events:
        if kind not in KINDS:
            raise ValueError(f"unknown ledger entry kind {kind!r}")
        plain = _plain(dict(facts))
        for attempt in range(APPEND_ATTEMPTS):
            body = _body(client_id, head.seq + 1, kind, run_id, plain, head.hash)
            data, digest = seal(body)
            if store.put_if_absent(entry_key(client_id, head.seq + 1), data):
                head = Head(head.seq + 1, digest)
                break
            head = _read_forward(store, client_id, head, known=True)  # someone took that seq: read on
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        else:
            raise LedgerContended(f"{client_id}: no seq won in {APPEND_ATTEMPTS} tries")
    store.put(head_hint_key(client_id), canonical(head.as_dict()))
    known[client_id] = head
    return head


def find_head(store: ObjectStore, client_id: str) -> Head:
    """The chain's last entry: from the head hint, a listing of what follows it, and the entries from
    the hint's on checked to chain (the whole chain is listed only when there is no usable hint)."""
    hint = _read_hint(store, client_id)
    if hint is None:
        seqs = _listed_seqs(store, client_id, after=None)
        if not seqs:
            return EMPTY
        return _read_forward(store, client_id, None, seqs[-1:])
    return _read_forward(store, client_id, hint)


def _read_forward(
    store: ObjectStore, client_id: str, start: Head | None, seqs: list[int] | None = None, known: bool = False
) -> Head:
    """The head reached from `start` through the entries after it, each checked to follow the one
    before. `start` is a hint, whose entry is read to check it, or (`known`) a head this append read or
    wrote itself; with `start` None, the entry `seqs[0]` is taken as it is."""
    if start is not None:
        if start.seq and not known:
            anchor = _load(store, client_id, start.seq)
            if anchor is None or anchor.hash != start.hash:
                raise LedgerBroken(
                    f"{client_id}: entry {start.seq} is not the one appended as {start.hash[:12]}… "
                    "(run `annobase ledger verify`)"
                )
        seqs = _listed_seqs(store, client_id, after=start.seq)
    head = start
    for seq in seqs or ():
        entry = _load(store, client_id, seq)
        if entry is None:
            continue  # listed, then gone: verify will name it; the next seq is still taken
        if head is not None and (entry.seq != head.seq + 1 or entry.prev != head.hash):
            raise LedgerBroken(
                f"{client_id}: entry {seq} does not follow entry {head.seq} (run `annobase ledger verify`)"
            )
        head = Head(entry.seq, entry.hash)
    if head is None:
        raise LedgerBroken(f"{client_id}: the chain's last entry could not be read")
    return head


def _read_hint(store: ObjectStore, client_id: str) -> Head | None:
    try:
        hint = json.loads(store.get(head_hint_key(client_id)))
        head = Head(int(hint["seq"]), str(hint["hash"]))
    except (KeyError, ValueError, TypeError):  # missing or unreadable: it is only a hint
        return None
    return head if head.seq >= 0 else None


def _listed_seqs(store: ObjectStore, client_id: str, after: int | None) -> list[int]:
    start_after = entry_key(client_id, after) if after else None
    prefix = client_prefix(client_id)
    return [
        int(match.group(1))
        for obj in store.list(prefix, start_after=start_after)
        if (match := ENTRY_NAME.fullmatch(obj.key[len(prefix) :]))
    ]


def _load(store: ObjectStore, client_id: str, seq: int) -> Entry | None:
    """Entry `seq` after checking that its hash is its content's; None when it does not exist."""
    try:
        data = store.get(entry_key(client_id, seq))
    except KeyError:
        return None
    entry, problem = parse_entry(data, client_id, seq)
    if problem:
        raise LedgerBroken(f"{client_id}: {problem} (run `annobase ledger verify`)")
    return entry


def _body(client_id: str, seq: int, kind: str, run_id: str | None, facts: dict, prev: str) -> dict:
    return {
        "schema": SCHEMA,
        "client_id": client_id,
        "seq": seq,
        "kind": kind,
        "at": datetime.now(UTC).isoformat(),
        "run_id": run_id,
        "facts": facts,
        "prev": prev,
    }


def _plain(value):
    """Facts as JSON's own types: numpy scalars unwrapped, NaN as null, sequences as lists."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):  # a numpy scalar
        value = value.item()
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        return [_plain(item) for item in (value.tolist() if hasattr(value, "tolist") else value)]
    raise TypeError(f"a ledger fact cannot be a {type(value).__name__}")


# --- reading and verifying -----------------------------------------------------------------------


def parse_entry(data: bytes, client_id: str, seq: int) -> tuple[Entry | None, str | None]:
    """(entry, None) when the bytes at key `seq` are a sound entry of `client_id`, else (None, why)."""
    try:
        document = json.loads(data.decode("utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not an object")
        stored_hash = document.pop("hash")
        entry = Entry(
            client_id=document["client_id"],
            seq=document["seq"],
            kind=document["kind"],
            at=document["at"],
            run_id=document["run_id"],
            facts=document["facts"],
            prev=document["prev"],
            hash=stored_hash,
        )
        actual = hashlib.sha256(canonical(document)).hexdigest()
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        return None, f"entry {seq} is not a ledger entry ({error!s:.80})"
    if document.get("schema") != SCHEMA:
        return None, f"entry {seq} has schema {document.get('schema')!r}, not {SCHEMA}"
    if actual != stored_hash:
        return (
            None,
            f"entry {seq} was altered: its content hashes to {actual[:12]}…, it records {stored_hash[:12]}…",
        )
    if entry.client_id != client_id:
        return None, f"entry {seq} is an entry of client {entry.client_id!r}, not of {client_id}"
    if entry.seq != seq:
        return None, f"entry {seq} holds entry {entry.seq} of the chain (entries moved or reordered)"
    return entry, None


@dataclass(frozen=True)
class Pin:
    """A head a release's MANIFEST recorded: the chain must still reach entry `seq` with this hash."""

    source: str
    seq: int
    hash: str


@dataclass(frozen=True)
class ChainCheck:
    client_id: str
    entries: list[Entry]
    problem: str | None  # the first broken link, None when the chain holds
    pins_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def head(self) -> Head:
        return Head(self.entries[-1].seq, self.entries[-1].hash) if self.entries else EMPTY


def clients(store: ObjectStore) -> list[str]:
    """Every client with a chain."""
    return [prefix[len(LEDGER_PREFIX) : -1] for prefix in store.list_prefixes(LEDGER_PREFIX)]


def read_chain(store: ObjectStore, client_id: str) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Every entry object of the chain in key order (key, bytes), and any other key found under it."""
    prefix = client_prefix(client_id)
    keys, strangers = [], []
    for obj in store.list(prefix):
        name = obj.key[len(prefix) :]
        if ENTRY_NAME.fullmatch(name):
            keys.append(obj.key)
        elif name != HEAD_HINT_NAME:
            strangers.append(obj.key)
    if store.remote:
        with ThreadPoolExecutor(READ_THREADS) as pool:
            contents = list(pool.map(store.get, keys))
    else:
        contents = [store.get(key) for key in keys]
    return list(zip(keys, contents, strict=True)), strangers


def verify_chain(store: ObjectStore, client_id: str, pins: Iterable[Pin] = ()) -> ChainCheck:
    """Recompute the client's chain from its first entry; stop at the first broken link.

    Caught: an altered entry (its hash), one rewritten with a fresh hash (the next entry's `prev`),
    a deleted entry (a gap), reordered or moved entries (seq against key and `prev`), an object that
    is no entry, entries removed from the end or the end rewritten (the head hint, and every head a
    release's MANIFEST pinned, must still be reached with the hash recorded)."""
    objects, strangers = read_chain(store, client_id)
    if strangers:
        return ChainCheck(client_id, [], f"{strangers[0]} is not a ledger entry (added behind annobase)")
    entries: list[Entry] = []
    head = EMPTY
    for key, data in objects:
        seq = int(ENTRY_NAME.fullmatch(key.rsplit("/", 1)[1]).group(1))
        if seq <= head.seq:
            return ChainCheck(
                client_id, entries, f"{key} is out of the chain's sequence (added behind annobase)"
            )
        if seq != head.seq + 1:
            missing = f"entry {head.seq + 1}" if seq == head.seq + 2 else f"entries {head.seq + 1}..{seq - 1}"
            return ChainCheck(
                client_id,
                entries,
                f"{missing} missing: the chain goes from entry {head.seq} to {seq} (deleted)",
            )
        entry, problem = parse_entry(data, client_id, seq)
        if problem:
            return ChainCheck(client_id, entries, problem)
        if entry.prev != head.hash:
            what = (
                "the first entry" if head.seq == 0 else f"entry {head.seq}, which hashes to {head.hash[:12]}…"
            )
            return ChainCheck(
                client_id,
                entries,
                f"link {head.seq}→{seq} broken: entry {seq} names {entry.prev[:12]}… as its predecessor, "
                f"not {what} (an entry replaced, rewritten or reordered)",
            )
        entries.append(entry)
        head = Head(entry.seq, entry.hash)
    hint = _read_hint(store, client_id)
    pins = list(pins)
    for pin in ([Pin(HEAD_HINT_NAME, hint.seq, hint.hash)] if hint else []) + pins:
        if pin.seq > head.seq:
            return ChainCheck(
                client_id,
                entries,
                f"{pin.source} names entry {pin.seq} ({pin.hash[:12]}…), but the chain ends at entry "
                f"{head.seq}: entries removed from its end",
            )
        if pin.seq and entries[pin.seq - 1].hash != pin.hash:
            return ChainCheck(
                client_id,
                entries,
                f"{pin.source} names entry {pin.seq} as {pin.hash[:12]}…, the chain's entry {pin.seq} "
                f"is {entries[pin.seq - 1].hash[:12]}…: the chain was rewritten from there on",
            )
    return ChainCheck(client_id, entries, None, pins_checked=len(pins))


# --- what each step records ----------------------------------------------------------------------


def record_intake(store: ObjectStore, ref: DeliveryRef, outcome, run_id: str) -> Head:
    """The upload as intake read it, and intake's verdict on it: before its catalog rows are written."""
    delivery = outcome.delivery
    upload = {
        "delivery_id": ref.delivery_id,
        "manifest_key": ref.manifest_key,
        "manifest_etag": delivery["manifest_etag"],
        "manifest_sha256": delivery["manifest_sha256"],
    }
    verdict = {
        "delivery_id": ref.delivery_id,
        "manifest_etag": delivery["manifest_etag"],
        "status": delivery["status"],
        "license": delivery.get("license"),
        "items_listed": delivery["items_listed"],
        "items_accepted": delivery["items_accepted"],
        "items_rejected": delivery["items_rejected"],
        "rejected_by_reason": outcome.rejected_by_reason,
        "accepted_files": len(outcome.items),
        "accepted_digest": digest_of(f"{r['item_key']} {r['part']} {r['sha256']}" for r in outcome.items),
        "rejected_digest": digest_of(f"{r['item_id']} {r['part']} {r['code']}" for r in outcome.rejections),
    }
    return append(store, ref.client_id, [(UPLOAD, upload), (INTAKE, verdict)], run_id)


def record_cleaning(store: ObjectStore, ref: DeliveryRef, rows: Sequence[Mapping], run_id: str) -> Head:
    """What cleaning kept for annotation and dropped, by reason."""
    kept = [row["item_key"] for row in rows if row["status"] == "kept"]
    facts = {
        "delivery_id": ref.delivery_id,
        "kept": len(kept),
        "dropped": len(rows) - len(kept),
        "dropped_by_reason": dict(
            sorted(Counter(r["drop_reason"] for r in rows if r["drop_reason"]).items())
        ),
        "pii_masked_items": sum(bool(row["pii_masked"]) for row in rows),
        "kept_digest": digest_of(kept),
    }
    return append(store, ref.client_id, [(CLEANING, facts)], run_id)


def record_batches(store: ObjectStore, ref: DeliveryRef, task_rows: Sequence[Mapping], run_id: str) -> Head:
    """Which items went to which batch (and to how many annotators), as a digest per batch."""
    tasks: dict[str, list[str]] = defaultdict(list)
    for row in task_rows:
        tasks[row["batch_id"]].append(f"{row['item_key']} {row['annotators']} {bool(row['honeypot'])}")
    batches = [
        {"batch_id": batch_id, "tasks": len(lines), "items_digest": digest_of(lines)}
        for batch_id, lines in sorted(tasks.items())
    ]
    return append(
        store, ref.client_id, [(BATCHES, {"delivery_id": ref.delivery_id, "batches": batches})], run_id
    )


def record_export(
    store: ObjectStore,
    batch,
    batch_id: str,
    raw: bytes,
    etag: str,
    run_id: str,
    annotations: int,
    problems: int,
) -> Head:
    """An annotation export as read: its bytes' sha256 and ETag (`batch`: the batch's catalog row)."""
    facts = {
        "delivery_id": batch.delivery_id,
        "batch_id": batch_id,
        "export_etag": etag,
        "export_sha256": hashlib.sha256(raw).hexdigest(),
        "annotations": annotations,
        "problems": problems,
    }
    return append(store, batch.client_id, [(EXPORT, facts)], run_id)


def record_gate(
    store: ObjectStore,
    qa_row,
    check_name: str,
    passed: bool,
    failed: Sequence[str],
    metric: str | None,
    observed: float | None,
    threshold: float | None,
    run_id: str,
    reason: str | None = None,
) -> Head:
    """A gate verdict on a batch (`qa_row`: its qa_results row, which names the export it measured);
    `reason` is the gate's (`insufficient_gold`, `below_threshold`, ...) where it gives one."""
    facts = {
        "delivery_id": qa_row.delivery_id,
        "batch_id": qa_row.batch_id,
        "check": check_name,
        "passed": passed,
        "metric": metric,
        "observed": observed,
        "threshold": threshold,
        "failed_expectations": list(failed),
        "export_etag": _present(qa_row, "export_etag"),
        "tasks_version": _present(qa_row, "tasks_version"),
        **({"reason": reason} if reason else {}),
    }
    return append(store, qa_row.client_id, [(GATE, facts)], run_id)


def record_client_delivery(
    store: ObjectStore,
    ref: DeliveryRef,
    table,
    labels: bytes,
    labels_etag: str,
    batches: Sequence[str],
    run_id: str,
) -> Head:
    """What was returned to the client: the labels file's sha256 and ETag and the files written beside
    it (`table`: the labels table, whose `*_file` columns name them)."""
    files = [
        key
        for column in table.columns
        if column.endswith("_file")
        for key in table[column]
        if isinstance(key, str)
    ]
    facts = {
        "delivery_id": ref.delivery_id,
        "location": f"deliveries/{ref.client_id}/{ref.delivery_id}/",
        "items": len(table),
        "labels_sha256": hashlib.sha256(labels).hexdigest(),
        "labels_etag": labels_etag,
        "files": len(files),
        "files_digest": digest_of(files),
        "batches": sorted(batches),
    }
    return append(store, ref.client_id, [(CLIENT_DELIVERY, facts)], run_id)


def release_heads(store: ObjectStore, lineage: Mapping) -> dict[str, dict]:
    """client_id -> the head (seq, hash) of the chain of every client whose deliveries the release holds,
    read after the release's content was gathered: what its MANIFEST pins."""
    clients_in = sorted({delivery["client_id"] for delivery in lineage["deliveries"]})
    return {client_id: find_head(store, client_id).as_dict() for client_id in clients_in}


def record_release(
    store: ObjectStore, industry: str, version: str, manifest: bytes, lineage: Mapping
) -> None:
    """A signed release, in the chain of each client it holds data of or withdrew a delivery of (the
    previous release held it): the MANIFEST's sha256, which pins the head it was cut from. Appended
    before LATEST names the release."""
    held: dict[str, list[str]] = defaultdict(list)
    withdrawn: dict[str, list[str]] = defaultdict(list)
    for delivery in lineage["deliveries"]:
        held[delivery["client_id"]].append(delivery["delivery_id"])
    for delivery in lineage.get("withdrawn_deliveries", ()):
        withdrawn[delivery["client_id"]].append(delivery["delivery_id"])
    for client_id in sorted(held.keys() | withdrawn.keys()):
        facts = {
            "industry": industry,
            "version": version,
            "release": f"datasets/{industry}/{version}",
            "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
            "deliveries": sorted(held[client_id]),
            "withdrawn": sorted(withdrawn[client_id]),
            "pinned_head": lineage.get("ledger_heads", {}).get(client_id),
        }
        append(store, client_id, [(RELEASE, facts)], lineage.get("dagster_run_id"))


def _present(row, column: str):
    value = getattr(row, column, None)
    return value if isinstance(value, str) else None


# --- checking the catalog against the ledger -----------------------------------------------------


def unrecorded_verdicts(entries: Sequence[Entry], verdicts: Iterable[Mapping]) -> list[str]:
    """The catalog's verdict rows (sql/ledger_recorded_verdicts.sql) that no entry records, described:
    since every step appends before it writes, such a row was written or changed behind annobase."""
    recorded = set()
    for entry in entries:
        facts = entry.facts
        if entry.kind == INTAKE:
            recorded.add(
                (INTAKE, facts["delivery_id"], facts["manifest_etag"], facts["status"], entry.run_id)
            )
        elif entry.kind == GATE:
            recorded.add((GATE, facts["batch_id"], facts["check"], bool(facts["passed"]), entry.run_id))
    found = []
    for row in verdicts:
        if row["kind"] == INTAKE:
            key = (INTAKE, row["delivery_id"], row["manifest_etag"], row["status"], row["dagster_run_id"])
            what = (
                f"deliveries row of {row['delivery_id']} (status {row['status']}, "
                f"run {row['dagster_run_id']})"
            )
        else:
            key = (GATE, row["batch_id"], row["check_name"], bool(row["passed"]), row["dagster_run_id"])
            what = (
                f"gate_results row of batch {row['batch_id']} {row['check_name']} "
                f"(passed={bool(row['passed'])}, run {row['dagster_run_id']})"
            )
        if key not in recorded:
            found.append(f"the catalog's {what} has no ledger entry: written or changed behind annobase")
    return found


def concerning(entries: Iterable[Entry], delivery_id: str, batch_ids: Iterable[str]) -> list[Entry]:
    """The entries about one delivery (its upload, verdicts, batches, exports, gates, return to the
    client, releases) and about `batch_ids` (an item's honeypot batches belong to other deliveries)."""
    batches = set(batch_ids)
    return [
        entry
        for entry in entries
        if entry.facts.get("delivery_id") == delivery_id
        or entry.facts.get("batch_id") in batches
        or delivery_id in entry.facts.get("deliveries", ())
        or delivery_id in entry.facts.get("withdrawn", ())
    ]
