"""Reading manifests, as plain function calls: every code the simulator's bad deliveries do not reach,
and a fuzz loop proving that no input escapes as anything but a clear rejection."""

import copy
import json
import random

import pytest

from annobase.keys import DeliveryRef
from annobase.settings import load_settings
from assets.intake import reasons as r
from assets.intake.manifest import DeliveryRejected, parse_manifest
from simulator import make_delivery

REF = DeliveryRef("jinneng-mine-safety", "d-001")
GOOD = make_delivery(1, "jinneng-mine-safety", "d-001", "multimodal", 4).manifest


def parse(manifest) -> object:
    raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest, ensure_ascii=False).encode()
    return parse_manifest(raw, REF, load_settings())


def delivery_codes(manifest) -> set[str]:
    with pytest.raises(DeliveryRejected) as rejected:
        parse(manifest)
    return {reason.code for reason in rejected.value.reasons}


def item_codes(manifest) -> dict[str, set[str]]:
    parsed = parse(manifest)
    return {item.item_id: {reason.code for reason in item.reasons} for item in parsed.rejected}


def edited(**changes) -> dict:
    manifest = copy.deepcopy(GOOD)
    manifest.update(changes)
    return manifest


def test_a_good_manifest_parses_whole():
    parsed = parse(GOOD)
    assert [item.item_id for item in parsed.items] == [item["item_id"] for item in GOOD["items"]]
    assert parsed.rejected == [] and parsed.industry == "energy" and parsed.license == "publishable"
    first = parsed.items[0].files[0]
    assert first.upload_key == f"uploads/jinneng-mine-safety/d-001/{first.path}"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"schema": "annobase.manifest/2"}, r.UNSUPPORTED_SCHEMA),
        ({"delivery_id": "d-002"}, r.DELIVERY_ID_MISMATCH),
        ({"task": "transcription"}, r.TASK_MISMATCH),
        ({"label_set": []}, r.MISSING_LABEL_SET),
        ({"license": "public-domain"}, r.SCHEMA_VIOLATION),
        ({"client_id": "Jinneng"}, r.INVALID_ID),
    ],
)
def test_delivery_level_problems(changes, code):
    assert code in delivery_codes(edited(**changes))


def test_every_delivery_level_problem_is_reported_not_only_the_first():
    assert delivery_codes(edited(industry="mining", modality="video")) == {
        r.UNKNOWN_INDUSTRY,
        r.UNKNOWN_MODALITY,
    }


def test_json_that_is_not_an_object_or_too_deep_is_malformed():
    assert delivery_codes(b"[1, 2]") == {r.SCHEMA_VIOLATION}
    assert delivery_codes(b"[" * 100_000 + b"]" * 100_000) == {r.MALFORMED_JSON}
    assert delivery_codes("清单".encode("gbk")) == {r.MALFORMED_JSON}


def test_item_level_problems_reject_only_their_item():
    manifest = copy.deepcopy(GOOD)
    first, second, third, fourth = manifest["items"]
    fourth["item_id"] = first["item_id"]
    second["files"] = {"video": {"path": "items/x.mp4", "sha256": "0" * 64, "bytes": 1}}
    text = third["files"]["text"]
    text["path"] = "items/sub dir/x.txt"
    first["files"]["image"]["path"] = first["files"]["image"]["path"].replace(".png", ".gif")
    by_index = {item.index: {reason.code for reason in item.reasons} for item in parse(manifest).rejected}
    assert by_index == {
        0: {r.UNSUPPORTED_EXTENSION},
        1: {r.PARTS_MISMATCH, r.UNSUPPORTED_EXTENSION},
        2: {r.INVALID_PATH},
        3: {r.DUPLICATE_ITEM_ID},
    }
    parsed = parse(manifest)
    assert parsed.items == [] and parsed.items_listed == 4


@pytest.mark.parametrize("path", ["../x.txt", "/etc/passwd", "items/../../x.txt", "items\\x.txt", "c:/x.txt"])
def test_paths_that_leave_the_delivery(path):
    manifest = copy.deepcopy(GOOD)
    manifest["items"][0]["files"]["text"]["path"] = path
    assert item_codes(manifest) == {manifest["items"][0]["item_id"]: {r.PATH_ESCAPE}}


def test_a_file_entry_without_sha256_costs_its_item_a_missing_field():
    manifest = copy.deepcopy(GOOD)
    del manifest["items"][1]["files"]["text"]["sha256"]
    assert item_codes(manifest) == {manifest["items"][1]["item_id"]: {r.MISSING_FIELD}}


def _mutate(value, rng: random.Random):
    """One random structural edit: the kinds of damage a buggy client or a fuzzer produces."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(sorted(value))
        choice = rng.random()
        if choice < 0.2:
            del value[key]
        elif choice < 0.5:
            value[key] = rng.choice([None, 0, -1, 1.5, "", "x" * 300, [], {}, True, "../..", "\udcff"[:0]])
        else:
            value[key] = _mutate(value[key], rng)
        return value
    if isinstance(value, list) and value and rng.random() < 0.7:
        index = rng.randrange(len(value))
        value[index] = _mutate(value[index], rng) if rng.random() < 0.8 else None
        return value
    return rng.choice([None, 7, "Ω", [], {}, "items/../x", False])


def test_fuzzed_manifests_are_parsed_or_rejected_with_a_reason_never_crash():
    rng = random.Random(2026)
    outcomes = {"parsed": 0, "rejected": 0}
    for _ in range(3000):
        manifest = copy.deepcopy(GOOD)
        for _ in range(rng.randint(1, 4)):
            items = manifest.get("items") if isinstance(manifest, dict) else None
            if isinstance(items, list) and items and rng.random() < 0.7:  # mostly inside items
                index = rng.randrange(len(items))
                items[index] = _mutate(items[index], rng)
            else:
                manifest = _mutate(manifest, rng)
        raw = json.dumps(manifest).encode()
        if rng.random() < 0.1:
            cut = rng.randrange(len(raw))
            raw = raw[:cut] + bytes([rng.randrange(256)]) + raw[cut + 1 :]
        try:
            parsed = parse(raw)
        except DeliveryRejected as rejected:
            assert rejected.reasons and all(reason.code and reason.detail for reason in rejected.reasons)
            outcomes["rejected"] += 1
            continue
        assert parsed.items_listed == len(parsed.items) + len(parsed.rejected)
        for item in parsed.rejected:
            assert item.reasons
        outcomes["parsed"] += 1
    assert min(outcomes.values()) > 100, outcomes
