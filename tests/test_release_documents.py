"""A release's documents: its Croissant card (checked by mlcroissant, offline) and its quality report.

A tiny release (20 items of text, image and multimodal, real PNG and text files) is written to a
temporary directory; the quality figures are checked against values worked out by hand.
"""

import hashlib
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlcroissant as mlc
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from assets.release.croissant import croissant_data_type, croissant_metadata, validate_croissant
from assets.release.quality_report import quality_report

RELEASED_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
THRESHOLDS = {
    "text_accuracy": 0.95,
    "speech_accuracy": 0.95,
    "cross_modal_consistency": 0.90,
    "image_box_f1": 0.85,
}
ITEMS_PARQUET = "data/items.parquet"
ENCODING = {".png": "image/png", ".txt": "text/plain"}

SCHEMA = pa.schema(
    [
        ("item_key", pa.string()),
        ("client_id", pa.string()),
        ("delivery_id", pa.string()),
        ("item_id", pa.string()),
        ("modality", pa.string()),
        ("text", pa.string()),
        ("image_path", pa.string()),
        ("audio_path", pa.string()),
        ("text_path", pa.string()),
        ("label", pa.string()),
        ("transcript", pa.string()),
        ("boxes_json", pa.string()),
        ("label_image", pa.string()),
        ("label_text", pa.string()),
        ("label_audio", pa.string()),
        ("agreement", pa.float64()),
        ("annotations", pa.int64()),
        ("batch_id", pa.string()),
        ("gate_passed", pa.bool_()),
        ("uploaded_at", pa.timestamp("us", tz="UTC")),
    ]
)


def release_items() -> pd.DataFrame:
    """8 text items (agreement 1), 6 image items (agreement 0.5), 6 multimodal items (agreement 1, the
    parts of the last two disagreeing), all uploaded 5 days before the release."""
    rows = []
    for n in range(20):
        modality = "text" if n < 8 else "image" if n < 14 else "multimodal"
        client, delivery, item = "jinneng-mine-safety", f"d-{modality}", f"i-{n:06d}"
        files = f"data/files/{client}/{delivery}/{item}"
        parts_agree = n < 18
        rows.append(
            {
                "item_key": f"{client}/{delivery}/{item}",
                "client_id": client,
                "delivery_id": delivery,
                "item_id": item,
                "modality": modality,
                "text": "巷道顶板有裂缝" if modality != "image" else None,
                "image_path": f"{files}.image.png" if modality != "text" else None,
                "audio_path": None,
                "text_path": f"{files}.text.txt" if modality != "image" else None,
                "label": "hazard"
                if modality == "text" or (modality == "multimodal" and parts_agree)
                else None,
                "transcript": None,
                "boxes_json": json.dumps([{"x": 10, "y": 10, "width": 20, "height": 20, "label": "hazard"}])
                if modality == "image"
                else None,
                "label_image": "hazard" if modality == "multimodal" else None,
                "label_text": ("hazard" if parts_agree else "normal") if modality == "multimodal" else None,
                "label_audio": None,
                "agreement": 0.5 if modality == "image" else 1.0,
                "annotations": 3,
                "batch_id": f"b-{modality}",
                "gate_passed": True,
                "uploaded_at": RELEASED_AT - timedelta(days=5),
            }
        )
    return pd.DataFrame(rows)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_release(root: Path, items: pd.DataFrame) -> Path:
    """The release's files, Parquet and croissant.json under `root`; returns the card's path."""
    for n, item in enumerate(items.itertuples()):
        if isinstance(item.image_path, str):
            (root / item.image_path).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (n * 12, 80, 160)).save(root / item.image_path)
        if isinstance(item.text_path, str):
            (root / item.text_path).parent.mkdir(parents=True, exist_ok=True)
            (root / item.text_path).write_text(item.text, encoding="utf-8")
    pq.write_table(pa.Table.from_pandas(items, schema=SCHEMA, preserve_index=False), root / ITEMS_PARQUET)
    media = sorted(path for path in (root / "data/files").rglob("*") if path.is_file())
    card = croissant_metadata(
        name="annobase-energy",
        description="Energy and coal-mine safety: labelled text, images and image-text pairs.",
        license="https://creativecommons.org/licenses/by/4.0/",
        creators=["annobase", "jinneng-mine-safety"],
        version="1.0.0",
        date_published=RELEASED_AT.date().isoformat(),
        citation=None,
        parquet_path=ITEMS_PARQUET,
        parquet_sha256=sha256(root / ITEMS_PARQUET),
        parquet_schema=pq.read_schema(root / ITEMS_PARQUET),
        extra_files=[
            {
                "path": path.relative_to(root).as_posix(),
                "sha256": sha256(path),
                "encoding_format": ENCODING[path.suffix],
            }
            for path in media
        ],
        url="https://data.example.org/datasets/energy/1.0.0",
    )
    path = root / "croissant.json"
    path.write_text(json.dumps(card, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a connection fails the test: the card must be checked without a network."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access while reading a release")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def card_path(tmp_path) -> Path:
    return write_release(tmp_path, release_items())


def edit_card(path: Path, edit) -> Path:
    card = json.loads(path.read_text(encoding="utf-8"))
    edit(card)
    path.write_text(json.dumps(card), encoding="utf-8")
    return path


def test_card_is_valid_and_reads_every_item(card_path, offline):
    assert validate_croissant(card_path) == []

    records = list(mlc.Dataset(jsonld=card_path).records("items"))
    item_keys = pq.read_table(card_path.parent / ITEMS_PARQUET, columns=["item_key"]).column(0).to_pylist()
    assert [record["items/item_key"].decode() for record in records] == item_keys
    first = records[0]
    assert first["items/agreement"] == 1.0 and first["items/annotations"] == 3
    assert first["items/gate_passed"] is True
    assert first["items/uploaded_at"] == pd.Timestamp(RELEASED_AT - timedelta(days=5))


def test_card_describes_every_column_and_every_file(card_path):
    card = json.loads(card_path.read_text(encoding="utf-8"))
    assert card["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    fields = card["recordSet"][0]["field"]
    assert [field["source"]["extract"]["column"] for field in fields] == SCHEMA.names
    types = {field["name"]: field["dataType"] for field in fields}
    assert types["item_key"] == types["boxes_json"] == "sc:Text"
    assert (types["agreement"], types["annotations"]) == ("sc:Float", "sc:Integer")
    assert (types["gate_passed"], types["uploaded_at"]) == ("sc:Boolean", "sc:DateTime")
    files = {entry["contentUrl"]: entry for entry in card["distribution"]}
    assert len(files) == 1 + 12 + 14  # Parquet, 12 PNGs (image and multimodal), 14 texts
    for path, entry in files.items():
        assert entry["@type"] == "cr:FileObject"
        assert entry["sha256"] == sha256(card_path.parent / path)


def test_field_without_its_column_is_reported(card_path, offline):
    def rename_column(card):
        card["recordSet"][0]["field"][15]["source"]["extract"]["column"] = "no_such_column"

    issues = validate_croissant(edit_card(card_path, rename_column))
    assert len(issues) == 1 and 'Column "no_such_column" does not exist' in issues[0]


def test_wrong_checksum_is_reported(card_path, offline):
    def corrupt(card):
        card["distribution"][0]["sha256"] = "0" * 64

    issues = validate_croissant(edit_card(card_path, corrupt))
    assert len(issues) == 1 and "Hash of downloaded file" in issues[0]


def test_structural_errors_and_warnings_are_reported(card_path):
    def damage(card):
        card["recordSet"][0]["field"][0]["dataType"] = "sc:NoSuchType"
        card["version"] = "first"

    issues = validate_croissant(edit_card(card_path, damage))
    assert any("does not specify a valid" in issue for issue in issues)
    assert any("MAJOR.MINOR.PATCH" in issue for issue in issues)


def test_columns_without_a_croissant_type_are_refused():
    assert croissant_data_type(pa.dictionary(pa.int8(), pa.string())) == "sc:Text"
    assert croissant_data_type(pa.date32()) == "sc:Date"
    for arrow_type in (pa.null(), pa.list_(pa.string()), pa.binary()):
        with pytest.raises(ValueError, match="no Croissant dataType"):
            croissant_data_type(arrow_type)


WITHHELD = {"jinneng-mine-safety/d-text/i-withheld": "sha256_mismatch: the image upload is 1a2b…"}


def report_inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    items = release_items().assign(files_present=True, files_verified=True)
    items.loc[[3, 9], "files_present"] = False
    items.loc[5, "uploaded_at"] = RELEASED_AT - timedelta(days=40)
    items.loc[6, "uploaded_at"] = RELEASED_AT - timedelta(days=30)  # on the boundary: still timely
    items.loc[7, ["item_id", "item_key"]] = [
        "I-7",
        "jinneng-mine-safety/d-text/I-7",
    ]  # id outside the pattern
    items.loc[10, "boxes_json"] = "[{'x': 1"  # not JSON
    batches = pd.DataFrame(
        {
            "batch_id": ["b-text", "b-image", "b-multimodal"],
            "modality": ["text", "image", "multimodal"],
            "text_accuracy": [0.96, None, 0.90],
            "speech_accuracy": [None, None, None],
            "image_box_f1": [None, 0.80, None],
            "cross_modal_consistency": [None, None, 0.95],
            "krippendorff_alpha": [0.8, None, 0.6],
            "gold_annotations": [50, 10, 40],
            "annotations": [120, 60, 80],
            "passed": [True, True, True],
        }
    )
    return items, batches


def test_scores_are_weighted_and_held_to_their_thresholds():
    scores = quality_report(*report_inputs(), THRESHOLDS, RELEASED_AT)["scores"]

    text = scores["text_accuracy"]
    assert text["value"] == pytest.approx((0.96 * 50 + 0.90 * 40) / 90)
    assert (text["rows_measured"], text["batches"], text["threshold"]) == (90, 2, 0.95)
    assert text["meets_threshold"] is False
    assert scores["image_box_f1"]["value"] == pytest.approx(0.80)
    assert scores["image_box_f1"]["meets_threshold"] is False
    cross = scores["cross_modal_consistency"]
    assert (cross["value"], cross["rows_measured"], cross["meets_threshold"]) == (
        pytest.approx(0.95),
        6,
        True,
    )
    speech = scores["speech_accuracy"]
    assert speech["value"] is None and speech["meets_threshold"] is None and speech["reason"]
    alpha = scores["krippendorff_alpha"]
    assert (
        alpha["value"] == pytest.approx(0.7)
        and alpha["threshold"] is None
        and alpha["meets_threshold"] is None
    )
    assert (alpha["batches"], alpha["rows_measured"]) == (2, 200)


def test_gbt_36344_indicators_match_hand_computed_values():
    report = quality_report(*report_inputs(), THRESHOLDS, RELEASED_AT, withheld=WITHHELD)
    json.dumps(report)  # the report is written as JSON as it is
    indicators = report["gbt_36344_2018"]

    assert [indicator["name_zh"] for indicator in indicators.values()] == [
        "规范性", "完整性", "准确性", "一致性", "时效性", "可访问性"
    ]  # fmt: skip
    assert indicators["normativity"]["value"] == pytest.approx(18 / 20)  # a bad id, broken boxes JSON
    assert indicators["completeness"]["value"] == pytest.approx(0.9)  # 2 of 20 items miss a file
    assert indicators["accuracy"]["value"] == pytest.approx((0.96 * 50 + 0.80 * 10 + 0.90 * 40) / 100)
    assert indicators["accuracy"]["rows_measured"] == 100
    # 8 text items at 1, 6 image items at 0.5, 4 multimodal at mean(1, 1), 2 at mean(1, 0)
    assert indicators["consistency"]["value"] == pytest.approx((8 + 3 + 4 + 1) / 20)
    assert indicators["timeliness"]["value"] == pytest.approx(19 / 20)  # one item uploaded 40 days before
    # one item of 21 chosen was withheld: its upload was not the bytes intake verified
    assert indicators["accessibility"]["value"] == pytest.approx(20 / 21)
    assert indicators["accessibility"]["rows_measured"] == 21
    assert report["withheld"] == {
        "items": 1,
        "by_reason": {"sha256_mismatch": 1},
        "list": [{"item_key": key, "reason": reason} for key, reason in WITHHELD.items()],
    }
    for indicator in indicators.values():
        assert 0 <= indicator["value"] <= 1 and indicator["rows_measured"] > 0 and indicator["definition"]


def test_incomplete_multimodal_answer_and_timeliness_window():
    items, batches = report_inputs()
    items.loc[14, "label_text"] = None  # a part without its label
    report = quality_report(items, batches, THRESHOLDS, RELEASED_AT, timely_within=timedelta(days=3))
    indicators = report["gbt_36344_2018"]
    assert indicators["completeness"]["value"] == pytest.approx(17 / 20)
    assert indicators["normativity"]["value"] == pytest.approx(17 / 20)
    assert indicators["timeliness"]["value"] == 0.0
    assert "3 days" in indicators["timeliness"]["definition"]


def test_nothing_measured_is_none_with_a_reason():
    items, batches = report_inputs()
    report = quality_report(items.iloc[:0], batches.iloc[:0], THRESHOLDS, RELEASED_AT)
    for measured in [*report["scores"].values(), *report["gbt_36344_2018"].values()]:
        assert measured["value"] is None and measured["rows_measured"] == 0 and measured["reason"]
