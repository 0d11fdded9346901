"""The provenance ledger (annobase/ledger.py) on both stores: racing appends never fork a chain, every
kind of tampering is named by `ledger verify`, and an append costs the same at 10,000 entries as at 2."""

import hashlib
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from statistics import median

import pytest

from annobase import ledger
from annobase.object_store import ObjectStore

CLIENT = "jinneng-mine-safety"


def append_events(store: ObjectStore, client_id: str, writer: str, count: int) -> list[int]:
    """`count` appends by one writer (a thread or a process), each naming the writer and its order."""
    return [
        ledger.append(store, client_id, [(ledger.UPLOAD, {"writer": writer, "n": n})], f"run-{writer}").seq
        for n in range(count)
    ]


def test_racing_appends_from_threads_and_processes_never_fork(store):
    """Four threads in this process and three processes append to one client, a fourth process to
    another: every append gets its own seq, each writer's entries are in its order, the chains hold."""
    per_writer = 6
    with (
        ThreadPoolExecutor(4) as threads,
        ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as processes,
    ):
        futures = [threads.submit(append_events, store, CLIENT, f"t{i}", per_writer) for i in range(4)]
        futures += [processes.submit(append_events, store, CLIENT, f"p{i}", per_writer) for i in range(3)]
        futures.append(processes.submit(append_events, store, "datong-schools", "other", per_writer))
        seqs = [future.result() for future in futures]

    mine = [seq for writer in seqs[:-1] for seq in writer]
    assert sorted(mine) == list(range(1, 7 * per_writer + 1)), "every seq won by exactly one append"
    assert seqs[-1] == list(range(1, per_writer + 1)), "another client's chain is its own"
    check = ledger.verify_chain(store, CLIENT)
    assert check.ok, check.problem
    assert len(check.entries) == 7 * per_writer
    by_writer: dict[str, list[int]] = {}
    for entry in check.entries:
        by_writer.setdefault(entry.facts["writer"], []).append(entry.facts["n"])
    writers = ["t0", "t1", "t2", "t3", "p0", "p1", "p2"]
    assert by_writer == {writer: list(range(per_writer)) for writer in writers}
    assert ledger.verify_chain(store, "datong-schools").ok
    assert ledger.find_head(store, CLIENT) == check.head


# --- tampering -----------------------------------------------------------------------------------

CHAIN_LENGTH = 6


@pytest.fixture
def chain(store):
    """A client's chain of CHAIN_LENGTH entries of the kinds the flow writes, and its objects' bytes."""
    events = [
        (ledger.UPLOAD, {"delivery_id": "d-1", "manifest_sha256": "a" * 64, "manifest_etag": "e1"}),
        (ledger.INTAKE, {"delivery_id": "d-1", "status": "accepted", "items_accepted": 3}),
        (ledger.CLEANING, {"delivery_id": "d-1", "kept": 3, "dropped": 0}),
        (ledger.BATCHES, {"delivery_id": "d-1", "batches": [{"batch_id": "b-1", "tasks": 3}]}),
        (ledger.EXPORT, {"delivery_id": "d-1", "batch_id": "b-1", "export_sha256": "b" * 64}),
        (ledger.GATE, {"delivery_id": "d-1", "batch_id": "b-1", "passed": False, "observed": 0.91}),
    ]
    for event in events:
        ledger.append(store, CLIENT, [event], "run-1")
    assert ledger.verify_chain(store, CLIENT).ok
    return {obj.key: store.get(obj.key) for obj in store.list(ledger.client_prefix(CLIENT))}


def delete_behind_annobase(store, key: str) -> None:
    """annobase never removes a ledger entry: tampering goes around it."""
    if store.remote:
        store.client.delete_object(Bucket=store.bucket, Key=key)
    else:
        (store.root / key).unlink()


def rewrite(store, seq: int, change) -> str:
    """Entry `seq` with `change` applied to its document and its hash recomputed, as a forger would."""
    document = json.loads(store.get(ledger.entry_key(CLIENT, seq)))
    document.pop("hash")
    change(document)
    data, digest = ledger.seal(document)
    store.put(ledger.entry_key(CLIENT, seq), data)
    return digest


def altered(store, seq):
    document = json.loads(store.get(ledger.entry_key(CLIENT, seq)))
    document["facts"]["delivery_id"] = "d-forged"  # its stored hash kept
    store.put(ledger.entry_key(CLIENT, seq), ledger.canonical(document))


def swapped(store, seq):
    """Entries `seq` and the next (the previous, for the last) trade places."""
    other = seq + 1 if seq < CHAIN_LENGTH else seq - 1
    first, second = ledger.entry_key(CLIENT, seq), ledger.entry_key(CLIENT, other)
    a, b = store.get(first), store.get(second)
    store.put(first, b)
    store.put(second, a)


def renumbered(store, seq):
    """Swapped, and each given the seq of its new place with a fresh hash: only the links tell."""
    swapped(store, seq)
    for position in sorted({seq, seq + 1 if seq < CHAIN_LENGTH else seq - 1}):
        rewrite(store, position, lambda document, position=position: document.update(seq=position))


def rewritten_in_place(store, seq):
    rewrite(store, seq, lambda document: document["facts"].update(passed=True))


TAMPERING = {
    # name: (tamper(store, seq), the problem ledger verify names, for entry seq of CHAIN_LENGTH)
    "alter an entry": (altered, lambda seq: f"entry {seq} was altered"),
    "alter an entry and its hash": (
        rewritten_in_place,
        lambda seq: f"link {seq}→{seq + 1} broken" if seq < CHAIN_LENGTH else "head.json names entry",
    ),
    "delete an entry": (
        lambda store, seq: delete_behind_annobase(store, ledger.entry_key(CLIENT, seq)),
        lambda seq: f"entry {seq} missing" if seq < CHAIN_LENGTH else "entries removed from its end",
    ),
    "reorder two entries": (
        swapped,
        lambda seq: f"entry {min(seq, CHAIN_LENGTH - 1)} holds entry {min(seq, CHAIN_LENGTH - 1) + 1}",
    ),
    "reorder two entries and renumber them": (
        renumbered,
        lambda seq: f"link {min(seq, CHAIN_LENGTH - 1) - 1}→{min(seq, CHAIN_LENGTH - 1)} broken",
    ),
}


@pytest.mark.parametrize("tampering", TAMPERING)
def test_tampering_with_any_entry_is_named(store, chain, tampering):
    """Every position of the chain, first to last: the first broken link is the one tampered with."""
    tamper, expected = TAMPERING[tampering]
    for seq in range(1, CHAIN_LENGTH + 1):
        restore(store, chain)
        tamper(store, seq)
        check = ledger.verify_chain(store, CLIENT)
        assert not check.ok, f"{tampering} at entry {seq} went unnoticed"
        assert expected(seq) in check.problem, (seq, check.problem)
        # what verify vouches for ends before the tampering
        assert [entry.seq for entry in check.entries] == list(range(1, len(check.entries) + 1))
        assert len(check.entries) < CHAIN_LENGTH or "head.json" in check.problem


def restore(store, objects: dict[str, bytes]) -> None:
    for obj in list(store.list(ledger.client_prefix(CLIENT))):
        if obj.key not in objects:
            delete_behind_annobase(store, obj.key)
    for key, data in objects.items():
        store.put(key, data)


def test_a_rewritten_tail_is_caught_by_the_head_a_release_pinned(store, chain):
    """A forger who rewrites every entry from the 4th on, and the head hint, leaves a chain that holds
    by itself: the head a release's signed MANIFEST pinned no longer matches."""
    pinned = ledger.Pin(
        "datasets/energy/v0001/MANIFEST.json", 5, json.loads(chain[ledger.entry_key(CLIENT, 5)])["hash"]
    )
    previous = json.loads(store.get(ledger.entry_key(CLIENT, 3)))["hash"]
    for seq in range(4, CHAIN_LENGTH + 1):

        def forge(document, previous=previous):
            document["prev"] = previous
            document["facts"]["forged"] = True

        previous = rewrite(store, seq, forge)
    store.put(ledger.head_hint_key(CLIENT), ledger.canonical({"seq": CHAIN_LENGTH, "hash": previous}))
    assert ledger.verify_chain(store, CLIENT).ok  # consistent in itself
    check = ledger.verify_chain(store, CLIENT, [pinned])
    assert not check.ok and check.problem.startswith(f"{pinned.source} names entry 5")
    truncated = ledger.Pin(pinned.source, CHAIN_LENGTH + 3, "c" * 64)
    assert "chain ends at entry 6" in ledger.verify_chain(store, CLIENT, [truncated]).problem


def test_an_object_slipped_into_the_chain_is_named(store, chain):
    store.put(ledger.client_prefix(CLIENT) + "000000000007.json.bak", b"{}")
    assert "000000000007.json.bak is not a ledger entry" in ledger.verify_chain(store, CLIENT).problem


def test_appends_refuse_a_chain_whose_head_was_tampered_with(store, object_store_resource, chain):
    """An append checks the entries from the head hint on: it never chains onto a forged head. (The
    store object that appended the chain remembers the true head and would chain onto that: the
    forgery is then named by verify as the link to the new entry; a new run reads the hint.)"""
    rewritten_in_place(store, CHAIN_LENGTH)
    next_run = object_store_resource.open()
    with pytest.raises(ledger.LedgerBroken, match=f"entry {CHAIN_LENGTH} is not the one appended"):
        ledger.append(next_run, CLIENT, [(ledger.GATE, {"batch_id": "b-1"})], "run-2")
    assert store.head(ledger.entry_key(CLIENT, CHAIN_LENGTH + 1)) is None
    ledger.append(store, CLIENT, [(ledger.GATE, {"batch_id": "b-1"})], "run-2")
    assert f"link {CHAIN_LENGTH}→{CHAIN_LENGTH + 1} broken" in ledger.verify_chain(store, CLIENT).problem


def test_facts_hold_no_nan_and_only_json_types(store):
    import numpy as np

    head = ledger.append(
        store,
        CLIENT,
        [(ledger.GATE, {"observed": float("nan"), "n": np.int64(3), "x": np.float64(0.5)})],
        None,
    )
    [entry] = ledger.verify_chain(store, CLIENT).entries
    assert entry.facts == {"observed": None, "n": 3, "x": 0.5} and entry.hash == head.hash
    with pytest.raises(TypeError):
        ledger.append(store, CLIENT, [(ledger.GATE, {"what": object()})], None)
    with pytest.raises(ValueError, match="kind"):
        ledger.append(store, CLIENT, [("made-up", {})], None)


# --- cost ----------------------------------------------------------------------------------------


class CountingStore:
    """The store, counting its requests and the keys its listings return."""

    def __init__(self, store):
        self._store, self.requests, self.listed = store, 0, 0

    def __getattr__(self, name):
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def counted(*args, **kwargs):
            self.requests += 1
            result = attribute(*args, **kwargs)
            if name == "list":
                result = list(result)
                self.listed += len(result)
            return result

        return counted


def seed_chain(store, client_id: str, length: int) -> None:
    """A chain of `length` entries written directly (as appends would, many at once), and its hint."""
    entries, head = [], ledger.EMPTY
    for seq in range(1, length + 1):
        body = ledger._body(client_id, seq, ledger.UPLOAD, "seed", {"delivery_id": f"d-{seq}"}, head.hash)
        data, digest = ledger.seal(body)
        entries.append((ledger.entry_key(client_id, seq), data))
        head = ledger.Head(seq, digest)
    with ThreadPoolExecutor(32 if store.remote else 1) as pool:
        list(pool.map(lambda entry: store.put(*entry), entries))
    store.put(ledger.head_hint_key(client_id), ledger.canonical(head.as_dict()))


@dataclass
class AppendCost:
    """A run's first append to a client (`first_*`: the head found from the hint) and its later ones."""

    first_requests: int
    first_listed: int
    later_requests: int
    first_seconds: float  # medians
    later_seconds: float


def measure_append(store, client_id: str, rounds: int = 5) -> AppendCost:
    """`rounds` runs (store objects of their own) appending twice each, counted and timed."""
    firsts, laters = [], []
    for _ in range(rounds):
        run = CountingStore(store)
        start = time.perf_counter()
        ledger.append(run, client_id, [(ledger.INTAKE, {"delivery_id": "d-x"})], "measured")
        firsts.append(time.perf_counter() - start)
        first_requests, first_listed = run.requests, run.listed
        start = time.perf_counter()
        ledger.append(run, client_id, [(ledger.INTAKE, {"delivery_id": "d-x"})], "measured")
        laters.append(time.perf_counter() - start)
    return AppendCost(
        first_requests, first_listed, run.requests - first_requests, median(firsts), median(laters)
    )


def test_an_append_costs_the_same_on_a_long_chain(store):
    """The head is found from the hint: an append at 1,000 entries makes the requests it makes at 2."""
    seed_chain(store, "short-chain", 2)
    seed_chain(store, "long-chain", 1_000)
    short, long = measure_append(store, "short-chain"), measure_append(store, "long-chain")
    counts = ("first_requests", "first_listed", "later_requests")
    assert [getattr(long, c) for c in counts] == [getattr(short, c) for c in counts], (short, long)
    # hint, a listing from it (the hint itself is listed), the head entry, the write, the new hint
    assert (long.first_requests, long.first_listed) == (5, 1)
    assert long.later_requests == 2  # the write and the hint: the run remembers the head
    assert ledger.verify_chain(store, "long-chain").ok


@pytest.mark.long
def test_an_append_at_10000_entries_on_seaweedfs(s3_store):
    store = s3_store.open()
    seed_chain(store, "long-chain", 10_000)
    seed_chain(store, "short-chain", 2)
    short, long = (
        measure_append(store, "short-chain", rounds=20),
        measure_append(store, "long-chain", rounds=20),
    )
    print(f"\nappend at 2 entries: {short}\nappend at 10,000 entries: {long}")
    assert (long.first_requests, long.first_listed, long.later_requests) == (5, 1, 2)
    start = time.perf_counter()
    assert len(ledger.verify_chain(store, "long-chain").entries) == 10_000 + 40  # the measured appends
    print(f"verify of 10,040 entries: {time.perf_counter() - start:.1f} s")


def test_canonical_hash_is_the_sha256_of_sorted_compact_json():
    body = {"b": 1, "a": "井", "c": [0.1, None]}
    data, digest = ledger.seal(body)
    assert digest == hashlib.sha256('{"a":"井","b":1,"c":[0.1,null]}'.encode()).hexdigest()
    assert json.loads(data) == {**body, "hash": digest}


def test_a_release_is_recorded_in_the_chains_of_the_clients_it_holds_and_withdrew(store):
    """The MANIFEST pins the heads of the clients whose data it holds; a client whose delivery the
    previous release held and this one withdrew gets the entry too, naming the withdrawal."""
    ledger.append(store, CLIENT, [(ledger.INTAKE, {"delivery_id": "d-1"})], "run-1")
    ledger.append(store, "datong-schools", [(ledger.INTAKE, {"delivery_id": "d-9"})], "run-1")
    lineage = {
        "deliveries": [{"client_id": CLIENT, "delivery_id": "d-1"}],
        "withdrawn_deliveries": [{"client_id": "datong-schools", "delivery_id": "d-9", "reason": "private"}],
        "dagster_run_id": "publish-run",
    }
    lineage["ledger_heads"] = ledger.release_heads(store, lineage)
    assert lineage["ledger_heads"] == {CLIENT: ledger.find_head(store, CLIENT).as_dict()}
    manifest = ledger.canonical({"lineage": lineage})
    ledger.record_release(store, "education", "v0002", manifest, lineage)

    [held] = [e for e in ledger.verify_chain(store, CLIENT).entries if e.kind == ledger.RELEASE]
    assert held.facts["deliveries"] == ["d-1"] and held.facts["withdrawn"] == []
    assert held.facts["pinned_head"] == {"seq": held.seq - 1, "hash": held.prev}
    assert held.facts["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    [gone] = [e for e in ledger.verify_chain(store, "datong-schools").entries if e.kind == ledger.RELEASE]
    assert gone.facts["withdrawn"] == ["d-9"] and gone.facts["pinned_head"] is None
    assert ledger.concerning([gone], "d-9", []) == [gone] and held.run_id == "publish-run"
