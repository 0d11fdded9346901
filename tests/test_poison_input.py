"""Poison input never strands anyone (issue 14 §1).

Each listed input gets a verdict with a rejection code, a detail of at most a few hundred characters,
and never an unhandled exception; limits come from the configuration. In a range run, a delivery
that breaks a step in a way no code names is quarantined as `internal_error` while the others are
taken in, and every delivery counts as taken in only once all of its steps finished.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import struct

import pytest
from flow_helpers import intake_config

import assets.cleaning.clean_items as clean_module
import assets.intake.intake as intake_module
from annobase.keys import DeliveryRef
from annobase.settings import load_settings
from assets.intake import reasons as r
from assets.intake.manifest import DeliveryRejected, FileSpec, parse_manifest
from assets.intake.verify import verify_file
from simulator import encode_manifest, make_delivery, upload_delivery

CLIENT = "jinneng-mine-safety"
REF = DeliveryRef(CLIENT, "d-001")
GOOD = make_delivery(1, CLIENT, "d-001", "text", 3).manifest
LIMITS = load_settings().limits
# a detail may quote a client's input, but only this much of it (reasons.DETAIL_CHARS, twice at most)
MAX_DETAIL = 2 * r.DETAIL_CHARS


def parse(raw: bytes):
    return parse_manifest(raw, REF, load_settings())


def encoded(**changes) -> bytes:
    return encode_manifest({**copy.deepcopy(GOOD), **changes})


def with_item(index: int, **changes) -> bytes:
    manifest = copy.deepcopy(GOOD)
    manifest["items"][index].update(changes)
    return encode_manifest(manifest)


def huge_int_manifest() -> bytes:
    raw = encode_manifest(GOOD)
    size = str(GOOD["items"][0]["files"]["text"]["bytes"]).encode()
    return raw.replace(b'"bytes": ' + size, b'"bytes": ' + b"9" * 5_000, 1)


def duplicate_key_manifest() -> bytes:
    # the last value would win silently: which license did the client mean?
    return encode_manifest(GOOD).replace(
        b'"license": "publishable"', b'"license": "private", "license": "publishable"'
    )


def many_items(count: int) -> bytes:
    item = GOOD["items"][0]
    items = [{**item, "item_id": f"i-{n:06d}"} for n in range(count)]
    return encoded(items=items)


def one_file_for_all(count: int) -> bytes:
    item = GOOD["items"][0]
    return encoded(items=[{**item, "item_id": f"i-{n:06d}"} for n in range(count)])


DELIVERY_POISON = {
    "5,000-digit integer": (huge_int_manifest, r.MALFORMED_JSON),
    "duplicate JSON keys": (duplicate_key_manifest, r.DUPLICATE_KEY),
    "control characters in labels": (
        lambda: encoded(label_set=["hazard\x00\x1b[31m", "normal"]),
        r.INVALID_LABEL,
    ),
    "10,000-label label_set": (
        lambda: encoded(label_set=[f"l{n}" for n in range(10_000)]),
        r.LABEL_SET_TOO_LARGE,
    ),
    "100,000 items": (lambda: many_items(100_000), r.TOO_MANY_ITEMS),
    "50 MB manifest": (lambda: encoded(note="x" * (50 << 20)), r.MANIFEST_TOO_LARGE),
}


@pytest.mark.parametrize("name", DELIVERY_POISON)
def test_poison_manifests_are_refused_with_a_code_and_a_short_detail(name):
    make, code = DELIVERY_POISON[name]
    raw = make()
    with pytest.raises(DeliveryRejected) as rejected:
        parse(raw)
    assert [reason.code for reason in rejected.value.reasons] == [code]
    assert all(len(reason.detail) <= MAX_DETAIL for reason in rejected.value.reasons)


def test_an_item_id_with_a_trailing_newline_is_refused_and_the_others_kept():
    parsed = parse(with_item(1, item_id=GOOD["items"][1]["item_id"] + "\n"))
    assert [item.item_id for item in parsed.items] == [
        GOOD["items"][0]["item_id"],
        GOOD["items"][2]["item_id"],
    ]
    [refused] = parsed.rejected
    assert [reason.code for reason in refused.reasons] == [r.INVALID_ID]


def test_many_items_naming_one_file_keep_the_first():
    parsed = parse(one_file_for_all(2_000))
    assert [item.item_id for item in parsed.items] == ["i-000000"]
    assert len(parsed.rejected) == 1_999
    assert {reason.code for item in parsed.rejected for reason in item.reasons} == {r.DUPLICATE_FILE}


def test_a_wav_header_claiming_2_31_hz_is_undecodable_audio(tmp_path):
    from resources import ObjectStoreResource
    from simulator.media import make_wav

    store = ObjectStoreResource(local_root=str(tmp_path), bucket="annobase").open()
    data = bytearray(make_wav("abc", random.Random(1)))
    data[24:28] = struct.pack("<I", 2**31)  # the fmt chunk's sample rate
    store.put("uploads/c/d/items/a.wav", bytes(data))
    spec = FileSpec(
        "audio", "items/a.wav", hashlib.sha256(data).hexdigest(), len(data), "uploads/c/d/items/a.wav"
    )
    facts, reason = verify_file(store, spec, load_settings().max_file_bytes)
    assert facts == {} and reason.code == r.UNDECODABLE_AUDIO and "2147483648 Hz" in reason.detail


def test_a_256_mb_text_is_refused_unread(tmp_path):
    from resources import ObjectStoreResource

    store = ObjectStoreResource(local_root=str(tmp_path), bucket="annobase").open()
    store.put("uploads/c/d/items/big.txt", b"")
    os.truncate(store.root / "uploads/c/d/items/big.txt", 256 << 20)  # sparse: nothing written
    spec = FileSpec("text", "items/big.txt", "0" * 64, 256 << 20, "uploads/c/d/items/big.txt")
    _, reason = verify_file(store, spec, load_settings().max_file_bytes, LIMITS.max_text_bytes)
    assert reason.code == r.TEXT_TOO_LARGE
    # the same file under a manifest that understates it: only its size is looked at
    _, understated = verify_file(
        store,
        FileSpec("text", "items/big.txt", "0" * 64, 10, spec.upload_key),
        1 << 30,
        LIMITS.max_text_bytes,
    )
    assert understated.code == r.SIZE_MISMATCH


def test_a_manifest_beyond_the_limit_is_never_read(tmp_path):
    from resources import ObjectStoreResource

    store = ObjectStoreResource(local_root=str(tmp_path), bucket="annobase").open()
    etag = store.put(REF.manifest_key, encoded(note="x" * (50 << 20)))
    assert intake_module.read_manifest_version(store, REF, etag, load_settings()) is None


# --- a range run on the real services: the poison delivery is quarantined, the others go on


def test_one_poison_delivery_of_a_range_is_quarantined_and_the_others_taken_in(
    s3_store, dask_cluster, instance, monkeypatch
):
    from conftest import annobase_resources
    from flow_helpers import run_flow_for_range

    store = s3_store.open()
    resources = annobase_resources(s3_store, dask_cluster)
    good = [make_delivery(10 + n, CLIENT, f"d-p-{n}", "text", 4) for n in range(4)]
    for delivery in good:
        upload_delivery(store, delivery)
    poison = {
        "d-p-dupkey": duplicate_key_manifest(),
        "d-p-bigint": huge_int_manifest(),
        "d-p-crash": encode_manifest({**GOOD, "delivery_id": "d-p-crash"}),
        "d-p-cleancrash": None,  # good at intake, breaks cleaning
    }
    for delivery_id, raw in poison.items():
        delivery = make_delivery(30, CLIENT, delivery_id, "text", 3)
        upload_delivery(store, delivery)
        if raw is not None:
            raw = raw.replace(b'"delivery_id": "d-001"', f'"delivery_id": "{delivery_id}"'.encode())
            store.put(f"uploads/{CLIENT}/{delivery_id}/manifest.json", raw)

    real_take_in, real_problems = intake_module.take_in_delivery, clean_module.format_problems

    def take_in_crashing(store, ref, *args, **kwargs):
        if ref.delivery_id == "d-p-crash":
            raise KeyError("poison " * 1_000)
        return real_take_in(store, ref, *args, **kwargs)

    def cleaning_crashing(parts, settings):
        if (parts.delivery_id == "d-p-cleancrash").any():
            raise ZeroDivisionError("a bug meets an input nobody foresaw")
        return real_problems(parts, settings)

    import assets.intake.raw_items as raw_items_module

    monkeypatch.setattr(raw_items_module, "take_in_delivery", take_in_crashing)
    monkeypatch.setattr(clean_module, "format_problems", cleaning_crashing)
    partitions = (
        [f"{CLIENT}/{d.delivery_id}" for d in good[:2]]
        + [f"{CLIENT}/{d}" for d in poison]
        + [f"{CLIENT}/{d.delivery_id}" for d in good[2:]]
    )
    etags = {p: store.head(f"uploads/{p}/manifest.json").etag for p in partitions}
    result = run_flow_for_range(instance, resources, partitions, run_config=intake_config(etags))
    assert result.success

    catalog = resources["catalog"].open()
    states = {}
    for partition in partitions:
        [row] = catalog.read_partition("deliveries", partition).to_dict("records")
        assert not row["in_progress"], f"{partition} was left half taken in"
        assert row["manifest_etag"] == etags[partition]
        reason = row["reason"] if isinstance(row["reason"], str) else None  # a null reads as NaN
        states[partition.split("/")[1]] = (row["status"], reason)
    for delivery in good:
        assert states[delivery.delivery_id] == ("accepted", None)
        assert len(catalog.read_partition("batches", f"{CLIENT}/{delivery.delivery_id}")) >= 1
    assert states["d-p-dupkey"] == ("rejected", r.DUPLICATE_KEY)
    assert states["d-p-bigint"] == ("rejected", r.MALFORMED_JSON)
    assert states["d-p-crash"] == ("rejected", r.INTERNAL_ERROR)
    assert states["d-p-cleancrash"] == ("rejected", r.INTERNAL_ERROR)
    for delivery_id, step, error in (
        ("d-p-crash", "intake", "KeyError"),
        ("d-p-cleancrash", "cleaning", "ZeroDivisionError"),
    ):
        rejections = catalog.read_partition("rejections", f"{CLIENT}/{delivery_id}")
        [detail] = rejections[rejections.code == r.INTERNAL_ERROR].detail
        assert detail.startswith(f"{step} failed: {error}: ") and len(detail) <= MAX_DETAIL
        assert catalog.read_partition("raw_items", f"{CLIENT}/{delivery_id}").empty
        assert catalog.read_partition("batches", f"{CLIENT}/{delivery_id}").empty
        record = json.loads(store.get(f"quarantine/{CLIENT}/{delivery_id}/rejection.json"))
        assert record["reasons"][0]["code"] == r.INTERNAL_ERROR


def test_a_fault_of_the_store_is_retried_not_blamed_on_the_delivery(
    s3_store, dask_cluster, instance, monkeypatch
):
    """An S3 connection error is the service's, not the client's: the step is retried and the
    delivery taken in, never quarantined as internal_error."""
    from botocore.exceptions import EndpointConnectionError
    from conftest import annobase_resources
    from flow_helpers import run_flow_for_delivery

    import assets.intake.raw_items as raw_items_module

    store = s3_store.open()
    upload_delivery(store, make_delivery(50, CLIENT, "d-p-flaky", "text", 3))
    real_take_in, calls = intake_module.take_in_delivery, []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return real_take_in(*args, **kwargs)

    monkeypatch.setattr(raw_items_module, "take_in_delivery", failing_once)
    resources = annobase_resources(s3_store, dask_cluster)
    assert run_flow_for_delivery(instance, resources, f"{CLIENT}/d-p-flaky").success
    assert len(calls) == 2
    [row] = resources["catalog"].open().read_partition("deliveries", f"{CLIENT}/d-p-flaky").to_dict("records")
    assert (row["status"], bool(row["in_progress"])) == ("accepted", False)
    assert store.head(f"quarantine/{CLIENT}/d-p-flaky/rejection.json") is None
