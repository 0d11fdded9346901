"""The simulated outside world produces what CONTRACT.md promises, with the defects it claims."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import random
import re
import wave
from collections.abc import Iterator

import pytest
from PIL import Image

from simulator import (
    CLIENTS,
    FAILURE_MODES,
    LABEL_SETS,
    MODALITY_TASKS,
    all_bad_deliveries,
    invalid_resident_id,
    is_valid_resident_id,
    iter_text_items,
    make_delivery,
    make_jpg,
    make_png,
    make_text,
    make_wav,
    resident_id_check_digit,
    upload_bad_delivery,
    upload_delivery,
    upload_text_delivery,
    valid_resident_id,
)

ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
PARTS = {"text": {"text"}, "speech": {"audio"}, "image": {"image"}}


class DictStore:
    """The smallest object store: remembers what was put, in order."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.order: list[str] = []

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data
        self.order.append(key)


def decodes(part: str, data: bytes) -> bool:
    try:
        if part == "text":
            data.decode("utf-8")
        elif part == "audio":
            with wave.open(io.BytesIO(data)) as wav:
                wav.readframes(wav.getnframes())
        else:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except (UnicodeDecodeError, wave.Error, EOFError, OSError):
        return False
    return True


def defective_items(manifest: dict, files: dict[str, bytes]) -> set[str]:
    """What a per-item intake check must find: escaping paths, missing, mismatched or undecodable files."""
    bad = set()
    for item in manifest["items"]:
        for part, entry in item["files"].items():
            path, data = entry["path"], files.get(entry["path"])
            if (
                path.startswith("/")
                or ".." in path.split("/")
                or data is None
                or len(data) != entry["bytes"]
                or hashlib.sha256(data).hexdigest() != entry["sha256"]
                or not decodes(part, data)
            ):
                bad.add(item["item_id"])
    return bad


@pytest.fixture(scope="module")
def deliveries() -> dict[str, object]:
    return {
        modality: make_delivery(7, "yungang-grottoes", f"d-2026-11-20-{modality}", modality, 6)
        for modality in MODALITY_TASKS
    }


def test_every_client_has_label_sets_for_its_industry():
    for client in CLIENTS.values():
        assert ID.fullmatch(client.client_id)
        assert set(LABEL_SETS[client.industry]) == {"classification", "detection"}
    assert LABEL_SETS["energy"]["classification"] == ["hazard", "normal"]
    assert LABEL_SETS["cultural_heritage"]["detection"] == ["statue", "niche", "inscription"]


@pytest.mark.parametrize("modality", sorted(MODALITY_TASKS))
def test_same_seed_gives_identical_bytes(modality):
    first = make_delivery(3, "jinneng-mine-safety", "d-001", modality, 4)
    again = make_delivery(3, "jinneng-mine-safety", "d-001", modality, 4)
    other = make_delivery(4, "jinneng-mine-safety", "d-001", modality, 4)
    assert first.files == again.files
    assert first.manifest_bytes == again.manifest_bytes
    assert first.truth == again.truth
    assert first.files != other.files


def test_manifest_follows_the_contract(deliveries):
    for modality, delivery in deliveries.items():
        manifest = json.loads(delivery.manifest_bytes.decode("utf-8"))
        assert manifest == delivery.manifest
        assert manifest["schema"] == "annobase.manifest/1"
        assert (manifest["client_id"], manifest["industry"]) == ("yungang-grottoes", "cultural_heritage")
        assert manifest["delivery_id"] == f"d-2026-11-20-{modality}"
        assert (manifest["modality"], manifest["task"]) == (modality, MODALITY_TASKS[modality])
        assert manifest["license"] == "publishable"
        expected_labels = {"detection": ["statue", "niche", "inscription"], "transcription": []}
        assert manifest["label_set"] == expected_labels.get(manifest["task"], ["damaged", "intact"])
        assert [item["item_id"] for item in manifest["items"]] == [f"i-{k:06d}" for k in range(1, 7)]
        listed = set()
        for item in manifest["items"]:
            parts = set(item["files"])
            if modality == "multimodal":
                assert {"image", "text"} <= parts <= {"image", "text", "audio"}
            else:
                assert parts == PARTS[modality]
            for entry in item["files"].values():
                assert entry["path"].startswith(f"items/{item['item_id']}.")
                data = delivery.files[entry["path"]]
                assert entry["bytes"] == len(data)
                assert entry["sha256"] == hashlib.sha256(data).hexdigest()
                listed.add(entry["path"])
        assert listed == set(delivery.files)
        assert defective_items(manifest, delivery.files) == set()


def test_wavs_are_pcm_and_last_point_three_seconds_per_character(deliveries):
    speech = deliveries["speech"]
    for item in speech.manifest["items"]:
        with wave.open(io.BytesIO(speech.files[item["files"]["audio"]["path"]])) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
            seconds = wav.getnframes() / wav.getframerate()
        assert seconds == pytest.approx(0.3 * len(speech.truth[item["item_id"]]["transcript"]))
    with wave.open(io.BytesIO(make_wav("瓦斯", random.Random(0), sample_rate=8000))) as wav:
        assert (wav.getframerate(), wav.getnframes()) == (8000, 4800)


def test_images_decode_and_boxes_lie_inside_them():
    for maker, fmt in ((make_png, "PNG"), (make_jpg, "JPEG")):
        for seed in range(20):
            data, boxes = maker(random.Random(seed), ["statue", "niche"], width=300, height=200)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                assert (image.format, image.size) == (fmt, (300, 200))
                rgb = image.convert("RGB")
            assert 1 <= len(boxes) <= 4
            for box in boxes:
                assert box["label"] in ("statue", "niche")
                assert 0 <= box["x"] and box["x"] + box["width"] <= 100 + 1e-3
                assert 0 <= box["y"] and box["y"] + box["height"] <= 100 + 1e-3
                # the shape is drawn where the box says: its centre is saturated, not grey noise
                centre = rgb.getpixel(
                    (int(3 * (box["x"] + box["width"] / 2)), int(2 * (box["y"] + box["height"] / 2)))
                )
                assert max(centre) - min(centre) > 60


def test_image_delivery_truth_boxes_use_detection_labels(deliveries):
    for boxes in (truth["boxes"] for truth in deliveries["image"].truth.values()):
        assert boxes and all(box["label"] in ("statue", "niche", "inscription") for box in boxes)


def test_resident_id_check_digit_follows_gb_11643():
    assert resident_id_check_digit("11010519491231002") == "X"  # the standard's own example
    assert resident_id_check_digit("44052418800101001") == "4"
    rng = random.Random(11)
    for _ in range(500):
        good, bad = valid_resident_id(rng), invalid_resident_id(rng)
        assert len(good) == len(bad) == 18
        assert is_valid_resident_id(good) and not is_valid_resident_id(bad)


def test_clinical_notes_carry_the_pii_they_report():
    rng = random.Random(5)
    seen: dict[tuple[str, bool], int] = {}
    patterns = {
        "mobile": r"1[3-9]\d{9}",
        "landline": r"0\d{2,3}-\d{7,8}",
        "email": r"[a-z0-9.]+@[a-z0-9.-]+\.[a-z]+",
        "resident_id": r"\d{17}[\dX]",
        "name": r"[\u4e00-\u9fff]{2,3}",
    }
    for _ in range(2000):
        text, label, pii = make_text(rng, "medical")
        assert label in ("urgent", "routine")
        assert re.search(r"(患者|姓名：)" + re.escape(pii[0].value), text)
        for kind, value, valid in pii:
            assert value in text
            assert re.fullmatch(patterns[kind], value)
            if kind == "resident_id":
                assert valid == is_valid_resident_id(value)
            seen[kind, valid] = seen.get((kind, valid), 0) + 1
    assert seen["resident_id", False] > 0 and seen["resident_id", True] > seen["resident_id", False]
    assert {kind for kind, _ in seen} == set(patterns)


def test_wording_follows_the_label_but_not_always():
    items = list(iter_text_items(3, "energy", 3000))
    guessed = ["hazard" if any(w in i.text for w in ("超限", "撤人", "隐患")) else "normal" for i in items]
    accuracy = sum(g == i.label for g, i in zip(guessed, items, strict=True)) / len(items)
    assert 0.85 < accuracy < 0.99


def test_million_item_stream_is_lazy():
    stream = iter_text_items(9, "education", 1_000_000)
    assert isinstance(stream, Iterator)
    items = list(itertools.islice(stream, 10_000))
    assert len(items) == 10_000
    assert items[0].item_id == "i-000001" and items[-1].item_id == "i-010000"
    assert all(40 <= len(item.text) <= 200 for item in items)
    assert {item.label for item in items} == {"question", "explanation"}
    assert list(itertools.islice(iter_text_items(9, "education", 1_000_000), 50)) == items[:50]


def test_multimodal_parts_disagree_at_the_configured_rate():
    def disagreeing(rate: float) -> int:
        delivery = make_delivery(1, "xiehe-clinic", "d-mm", "multimodal", 60, disagreement_rate=rate)
        for item in delivery.manifest["items"]:
            assert set(item["files"]) == set(delivery.truth[item["item_id"]]["part_labels"])
        return sum(len(set(t["part_labels"].values())) > 1 for t in delivery.truth.values())

    assert (disagreeing(0.0), disagreeing(1.0)) == (0, 60)
    assert 0 < disagreeing(0.1) < 20


def test_upload_writes_every_file_then_the_manifest_last(deliveries):
    store = DictStore()
    delivery = deliveries["multimodal"]
    key = upload_delivery(store, delivery)
    prefix = "uploads/yungang-grottoes/d-2026-11-20-multimodal/"
    assert key == prefix + "manifest.json" == store.order[-1]
    assert set(store.order[:-1]) == {prefix + path for path in delivery.files}
    assert json.loads(store.objects[key]) == delivery.manifest


def test_streamed_text_upload_equals_the_in_memory_one():
    streamed, in_memory = DictStore(), DictStore()
    upload_text_delivery(streamed, 2, "datong-schools", "d-big", 40)
    upload_delivery(in_memory, make_delivery(2, "datong-schools", "d-big", "text", 40))
    assert streamed.objects == in_memory.objects
    assert streamed.order[-1].endswith("/manifest.json")


@pytest.fixture(scope="module")
def bad_deliveries():
    return {bad.expected_reason: bad for bad in all_bad_deliveries(seed=1)}


def test_every_failure_mode_is_generated_deterministically(bad_deliveries):
    assert set(bad_deliveries) == set(FAILURE_MODES)
    assert list(bad_deliveries.values()) == all_bad_deliveries(seed=1)
    for bad in bad_deliveries.values():
        assert ID.fullmatch(bad.client_id) and ID.fullmatch(bad.delivery_id)


@pytest.mark.parametrize(
    "reason",
    [
        "path_escape",
        "file_missing",
        "size_mismatch",
        "sha256_mismatch",
        "not_utf8",
        "undecodable_audio",
        "undecodable_image",
    ],
)
def test_item_failures_break_exactly_the_named_items(bad_deliveries, reason):
    bad = bad_deliveries[reason]
    manifest = json.loads(bad.manifest_bytes)
    assert bad.bad_item_ids and len(manifest["items"]) > len(bad.bad_item_ids)
    assert defective_items(manifest, bad.files) == set(bad.bad_item_ids)


def test_recorded_sizes_and_hashes_do_not_give_away_undecodable_files(bad_deliveries):
    for reason, part in (
        ("not_utf8", "text"),
        ("undecodable_audio", "audio"),
        ("undecodable_image", "image"),
    ):
        bad = bad_deliveries[reason]
        item = next(i for i in json.loads(bad.manifest_bytes)["items"] if i["item_id"] == bad.bad_item_ids[0])
        data = bad.files[item["files"][part]["path"]]
        assert item["files"][part]["sha256"] == hashlib.sha256(data).hexdigest()
        assert not decodes(part, data)
    text = bad_deliveries["not_utf8"]
    path = next(iter(text.files))
    assert text.files[path].decode("gbk")  # really GBK, not random bytes


def test_delivery_failures_have_their_defect(bad_deliveries):
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad_deliveries["malformed_json"].manifest_bytes)
    manifests = {
        reason: json.loads(bad.manifest_bytes)
        for reason, bad in bad_deliveries.items()
        if reason != "malformed_json"
    }
    assert "license" not in manifests["missing_field"]
    assert manifests["unknown_industry"]["industry"] not in LABEL_SETS
    assert manifests["unknown_modality"]["modality"] not in MODALITY_TASKS
    assert not all(ID.fullmatch(item["item_id"]) for item in manifests["invalid_id"]["items"])
    assert manifests["empty_delivery"]["items"] == [] and bad_deliveries["empty_delivery"].files == {}
    mismatch = manifests["client_id_mismatch"]["client_id"]
    assert ID.fullmatch(mismatch) and mismatch != bad_deliveries["client_id_mismatch"].client_id
    for reason in (
        "missing_field",
        "unknown_industry",
        "unknown_modality",
        "client_id_mismatch",
    ):
        assert bad_deliveries[reason].bad_item_ids == []
    assert bad_deliveries["invalid_id"].bad_item_ids == ["I 01"]


def test_bad_delivery_upload_puts_the_manifest_last(bad_deliveries):
    store = DictStore()
    bad = bad_deliveries["sha256_mismatch"]
    key = upload_bad_delivery(store, bad)
    assert key == f"uploads/{bad.client_id}/{bad.delivery_id}/manifest.json" == store.order[-1]
    assert store.objects[key] == bad.manifest_bytes
    assert len(store.order) == len(bad.files) + 1
