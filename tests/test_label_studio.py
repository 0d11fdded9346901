"""Label Studio in and out, as plain function calls, against real Label Studio 1.23.2 files: the configs and
tasks annobase writes must be what the tool imported, and its exports must parse to the right rows."""

import copy
import json
import random
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from assets.annotation import label_studio_export as e
from assets.annotation.label_studio_config import labeling_config
from assets.annotation.label_studio_export import ExportRejected, ParsedExport, parse_export
from assets.annotation.label_studio_tasks import build_task, choices_result, rectangle_result, textarea_result

FIXTURES = Path(__file__).resolve().parents[2] / "shared/fixtures/label-studio"
MODALITIES = {  # as the fixture projects were set up: label set, parts
    "text": (["hazard", "normal"], ["text"]),
    "speech": ([], ["audio"]),
    "image": (["statue", "niche"], ["image"]),
    "multimodal": (["hazard", "normal"], ["image", "text"]),
}
ITEMS = "s3://annobase/uploads/demo-client/d-001/items/"
# boxes of the image fixture, in percent as annobase holds them
GOLD_BOXES = [
    {"x": 5, "y": 10, "width": 20, "height": 30, "label": "statue"},
    {"x": 40, "y": 12, "width": 15, "height": 20, "label": "niche"},
]
PRELABEL_BOX = {"x": 6, "y": 11, "width": 19, "height": 29, "label": "statue"}


def fixture(modality: str, kind: str):
    return json.loads((FIXTURES / f"{modality}.{kind}.json").read_text())


def parse(modality: str, export) -> ParsedExport:
    raw = export if isinstance(export, bytes) else json.dumps(export, ensure_ascii=False).encode()
    return parse_export(raw, "b-001", modality, MODALITIES[modality][0])


def by_id(parsed: ParsedExport) -> dict:
    return {row.annotation_id: row for row in parsed.annotations}


# --- the real exports


def test_text_export():
    parsed = parse("text", (FIXTURES / "text.export.json").read_bytes())
    rows = by_id(parsed)
    assert list(rows) == [15, 16, 14, 17]
    assert {row.annotator for row in parsed.annotations} == {1}
    assert {i: rows[i].label for i in rows} == {15: "hazard", 16: "normal", 14: "normal", 17: "normal"}
    assert [i for i in rows if rows[i].ground_truth] == [14]
    assert [rows[i].lead_time for i in rows] == [2.5, 3.5, None, 1.9]
    # the reviewer of task 9 is also one of its annotators: gold and annotation stay separate rows
    assert (rows[14].task_id, rows[14].annotator) == (rows[17].task_id, rows[17].annotator) == (9, 1)
    assert (rows[15].item_id, rows[15].client_id, rows[15].delivery_id) == ("t00000", "demo-client", "d-001")
    assert rows[15].created_at == "2026-11-23T07:01:19.123448Z" and rows[15].batch_id == "b-001"
    assert rows[15].transcript is rows[15].boxes is rows[15].part_labels is None
    # task 8 lists its prediction as id 2; the object is the one embedded in annotations 15 and 16
    [prediction] = parsed.predictions
    assert (prediction.task_id, prediction.item_id) == (8, "t00000")
    assert (prediction.model_version, prediction.score, prediction.label) == ("keywords-v1", 0.9, "hazard")
    assert parsed.cancelled == 0 and parsed.problems == []


def test_speech_export():
    parsed = parse("speech", (FIXTURES / "speech.export.json").read_bytes())
    rows = by_id(parsed)
    assert {i: rows[i].transcript for i in rows} == {
        5: "请立即撤离工作面",
        4: "井下安全第一",
        6: "井下安全第",
        7: "井下安全第一",
    }
    assert [i for i in rows if rows[i].ground_truth] == [4] and rows[4].lead_time is None
    assert rows[7].lead_time == 7.1 and rows[5].item_id == "s00000" and rows[4].task_id == 4
    assert parsed.predictions == [] and parsed.cancelled == 0 and parsed.problems == []


def test_image_export():
    parsed = parse("image", (FIXTURES / "image.export.json").read_bytes())
    gold, annotator = by_id(parsed)[8], by_id(parsed)[9]
    assert (gold.ground_truth, gold.lead_time, annotator.ground_truth, annotator.lead_time) == (
        True,
        None,
        False,
        21.0,
    )
    assert gold.boxes == GOLD_BOXES
    assert annotator.boxes[0] == {"x": 5.2, "y": 10.1, "width": 20, "height": 30, "label": "statue"}
    assert annotator.boxes[1]["x"] == 70
    [prediction] = parsed.predictions
    assert (prediction.model_version, prediction.score) == ("prelabel-v1", 0.62)
    assert prediction.boxes == [PRELABEL_BOX]
    assert parsed.problems == []


def test_multimodal_export_counts_and_drops_the_cancelled_annotation():
    parsed = parse("multimodal", (FIXTURES / "multimodal.export.json").read_bytes())
    rows = by_id(parsed)
    assert {i: rows[i].part_labels for i in rows} == {
        10: {"image": "hazard", "text": "hazard"},
        11: {"image": "normal", "text": "hazard"},
        12: {"image": "normal", "text": "normal"},
    }
    assert parsed.cancelled == 1 and 13 not in rows
    assert rows[12].item_id == "m00001" and rows[12].label is None
    assert parsed.predictions == [] and parsed.problems == []


def test_completed_by_as_a_user_object():
    export = fixture("text", "export")
    export[0]["annotations"][0]["completed_by"] = {"id": 7, "email": "a@b"}
    assert by_id(parse("text", export))[15].annotator == 7


def test_predictions_exported_as_objects_are_read_too():
    export = fixture("text", "export")
    export[0]["predictions"] = [export[0]["annotations"][0]["prediction"]]
    export[0]["annotations"][0]["prediction"] = export[0]["annotations"][1]["prediction"] = {}
    [prediction] = parse("text", export).predictions
    assert (prediction.model_version, prediction.label) == ("keywords-v1", "hazard")


# --- bad exports


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        '[{"标签": 1}]'.encode("gbk"),
        b"[" * 100_000 + b"]" * 100_000,
        b"[" + b"9" * 5000 + b"]",
    ],
)
def test_unreadable_exports_are_rejected_whole(raw):
    with pytest.raises(ExportRejected) as rejected:
        parse("text", raw)
    assert [reason.code for reason in rejected.value.reasons] == [e.MALFORMED_JSON]


@pytest.mark.parametrize("raw", [b"{}", b'"tasks"', b"null", b'{"tasks": []}'])
def test_exports_that_are_not_task_lists_are_rejected_whole(raw):
    with pytest.raises(ExportRejected) as rejected:
        parse("text", raw)
    assert [reason.code for reason in rejected.value.reasons] == [e.NOT_A_TASK_LIST]


def first_annotation(task: dict) -> dict:
    return task["annotations"][0]


def first_value(task: dict) -> dict:
    return first_annotation(task)["result"][0]["value"]


@pytest.mark.parametrize(
    ("modality", "mutate", "code"),
    [
        ("text", lambda task: task["data"].pop("item_id"), e.MISSING_TASK_DATA),
        ("text", lambda task: task["data"].update(client_id="Demo Client"), e.MISSING_TASK_DATA),
        ("text", lambda task: task["data"].update(delivery_id="../d-001"), e.MISSING_TASK_DATA),
        ("text", lambda task: task.update(data=None), e.MISSING_TASK_DATA),
        ("text", lambda task: task.update(id="8"), e.MISSING_TASK_DATA),
        (
            "text",
            lambda task: first_annotation(task)["result"][0].update(from_name="sentiment"),
            e.UNKNOWN_CONTROL,
        ),
        ("text", lambda task: first_annotation(task)["result"][0].update(to_name="image"), e.UNKNOWN_CONTROL),
        ("text", lambda task: first_value(task).update(choices=["fire"]), e.LABEL_OUTSIDE_LABEL_SET),
        ("text", lambda task: first_value(task).update(choices=["hazard", "normal"]), e.MALFORMED_RESULT),
        ("text", lambda task: first_annotation(task).update(result=[]), e.MALFORMED_RESULT),
        ("text", lambda task: first_annotation(task)["result"][0].update(type="labels"), e.MALFORMED_RESULT),
        ("text", lambda task: first_annotation(task).update(completed_by="alice"), e.MALFORMED_ANNOTATION),
        (
            "text",
            lambda task: first_annotation(task).update(completed_by={"email": "a@b"}),
            e.MALFORMED_ANNOTATION,
        ),
        ("text", lambda task: first_annotation(task).update(lead_time="fast"), e.MALFORMED_ANNOTATION),
        ("text", lambda task: first_annotation(task).update(ground_truth="yes"), e.MALFORMED_ANNOTATION),
        (
            "text",
            lambda task: first_annotation(task)["prediction"]["result"][0]["value"].update(choices=["fire"]),
            e.LABEL_OUTSIDE_LABEL_SET,
        ),
        ("speech", lambda task: first_value(task).pop("text"), e.MALFORMED_RESULT),
        ("speech", lambda task: first_value(task).update(text=[]), e.MALFORMED_RESULT),
        ("image", lambda task: first_value(task).pop("x"), e.MALFORMED_RESULT),
        ("image", lambda task: first_value(task).update(y=-1), e.MALFORMED_RESULT),
        ("image", lambda task: first_value(task).update(x=120), e.MALFORMED_RESULT),
        ("image", lambda task: first_value(task).update(width=96), e.MALFORMED_RESULT),
        ("image", lambda task: first_value(task).update(height=float("nan")), e.MALFORMED_RESULT),
        ("image", lambda task: first_value(task).update(rotation=30), e.MALFORMED_RESULT),
        ("image", lambda task: first_value(task).update(rectanglelabels=["tree"]), e.LABEL_OUTSIDE_LABEL_SET),
        ("multimodal", lambda task: first_annotation(task)["result"].pop(), e.MALFORMED_RESULT),
        (
            "multimodal",
            lambda task: first_annotation(task)["result"][0].update(from_name="label_audio", to_name="audio"),
            e.UNKNOWN_CONTROL,
        ),
        ("multimodal", lambda task: task["data"].pop("text"), e.MISSING_TASK_DATA),
    ],
)
def test_a_bad_task_is_skipped_whole_and_the_others_parse(modality, mutate, code):
    export = fixture(modality, "export")
    task_id = export[0]["id"]
    mutate(export[0])
    parsed = parse(modality, export)
    assert {problem.code for problem in parsed.problems} == {code}
    assert {problem.task_id for problem in parsed.problems} <= {task_id, None}
    untouched = parse(modality, fixture(modality, "export")).annotations
    assert parsed.annotations == [row for row in untouched if row.task_id != task_id]


def test_a_task_id_seen_twice_is_a_problem_the_first_stays():
    export = fixture("text", "export")
    export.append(copy.deepcopy(export[0]))
    parsed = parse("text", export)
    assert [(problem.code, problem.task_id) for problem in parsed.problems] == [(e.DUPLICATE_TASK, 8)]
    assert len(parsed.annotations) == 4


# --- labeling configs and tasks, side by side with what Label Studio imported


@pytest.mark.parametrize("modality", MODALITIES)
def test_labeling_config_is_the_fixtures(modality):
    label_set, parts = MODALITIES[modality]
    assert (
        labeling_config(modality, label_set, parts)
        == (FIXTURES / f"{modality}.config.xml").read_text().strip()
    )


def test_labeling_config_escapes_labels():
    config = labeling_config("text", ['a<b & "c"/>', "d"], ["text"])
    assert [choice.get("value") for choice in ET.fromstring(config).iter("Choice")] == ['a<b & "c"/>', "d"]


@pytest.mark.parametrize(
    ("modality", "label_set", "parts"),
    [
        ("video", ["a"], ["video"]),
        ("text", ["a"], ["audio"]),
        ("multimodal", ["a"], ["image"]),
        ("multimodal", ["a"], ["image", "image"]),
        ("text", [], ["text"]),
        ("image", ["a", "a"], ["image"]),
        ("text", ["bell\x07"], ["text"]),
    ],
)
def test_labeling_config_refuses_what_label_studio_could_not_show(modality, label_set, parts):
    with pytest.raises(ValueError):
        labeling_config(modality, label_set, parts)


def fixture_like_tasks() -> dict[str, list[dict]]:
    """The fixtures' tasks.json, built by annobase from the same items, gold and pre-labels."""

    def item(item_id):
        return {"item_id": item_id, "client_id": "demo-client", "delivery_id": "d-001"}

    def box(box):
        return rectangle_result(box, 320, 240)

    return {
        "text": [
            build_task(
                item("t00000"),
                "text",
                {},
                "井下瓦斯浓度超限，立即撤人",
                prediction={
                    "model_version": "keywords-v1",
                    "score": 0.9,
                    "result": [choices_result("label", "text", "hazard")],
                },
            ),
            build_task(
                item("t00001"),
                "text",
                {},
                "交接班检查完成，设备运转平稳",
                gold={"result": [choices_result("label", "text", "normal")]},
            ),
        ],
        "speech": [
            build_task(item("s00000"), "speech", {"audio": ITEMS + "s00000.wav"}),
            build_task(
                item("s00001"),
                "speech",
                {"audio": ITEMS + "s00001.wav"},
                gold={"result": [textarea_result("井下安全第一")]},
            ),
        ],
        "image": [
            build_task(
                item("g00000"),
                "image",
                {"image": ITEMS + "g00000.png"},
                prediction={"model_version": "prelabel-v1", "score": 0.62, "result": [box(PRELABEL_BOX)]},
                gold={"result": [box(gold_box) for gold_box in GOLD_BOXES]},
            )
        ],
        "multimodal": [
            build_task(item("m00000"), "multimodal", {"image": ITEMS + "m00000.png"}, "井下瓦斯浓度超限"),
            build_task(item("m00001"), "multimodal", {"image": ITEMS + "m00001.png"}, "通风系统运行正常"),
        ],
    }


def shape(value):
    """Keys at every level, in order, without the values."""
    if isinstance(value, dict):
        return [(key, shape(inner)) for key, inner in value.items()]
    if isinstance(value, list):
        return [shape(inner) for inner in value]
    return type(value).__name__


@pytest.mark.parametrize("modality", MODALITIES)
def test_built_tasks_are_the_fixtures(modality):
    built, imported = fixture_like_tasks()[modality], fixture(modality, "tasks")
    assert shape(built) == shape(imported)
    assert built == imported


@pytest.mark.parametrize(
    ("parts_urls", "text", "item_id"),
    [({"text": ITEMS + "m.txt"}, None, "m1"), ({"image": ITEMS + "m.png"}, None, "m1"), ({}, "x", "../m1")],
)
def test_build_task_refuses_tasks_that_would_not_read_back(parts_urls, text, item_id):
    with pytest.raises(ValueError):
        build_task({"item_id": item_id, "client_id": "c", "delivery_id": "d"}, "multimodal", parts_urls, text)


def fake_export(tasks: list[dict]) -> list[dict]:
    """What Label Studio exports after importing `tasks`, with predictions in their object form."""
    return [
        {
            "id": 100 + index,
            "annotations": [
                {
                    "id": 500 + 10 * index + number,
                    "completed_by": 3,
                    "was_cancelled": False,
                    "lead_time": None,
                    "created_at": "2026-11-23T07:01:18.393791Z",
                    "prediction": {},
                    **annotation,
                }
                for number, annotation in enumerate(task.get("annotations", []))
            ],
            "predictions": [{"id": 900 + index, **prediction} for prediction in task.get("predictions", [])],
            "data": task["data"],
            "meta": {},
        }
        for index, task in enumerate(tasks)
    ]


def test_round_trip_gold_and_predictions_come_back():
    gold_parts = {"image": "hazard", "audio": "normal", "text": "hazard"}
    tasks = fixture_like_tasks()
    tasks["multimodal"].append(
        build_task(
            {"item_id": "m00002", "client_id": "demo-client", "delivery_id": "d-001"},
            "multimodal",
            {"audio": ITEMS + "m00002.wav", "image": ITEMS + "m00002.png"},
            "瓦斯超限",
            gold={
                "result": [choices_result(f"label_{part}", part, label) for part, label in gold_parts.items()]
            },
        )
    )
    expected = {  # modality: the row field, gold by item, pre-labels
        "text": ("label", {"t00001": "normal"}, [("t00000", "keywords-v1", 0.9, "hazard")]),
        "speech": ("transcript", {"s00001": "井下安全第一"}, []),
        "image": ("boxes", {"g00000": GOLD_BOXES}, [("g00000", "prelabel-v1", 0.62, [PRELABEL_BOX])]),
        "multimodal": ("part_labels", {"m00002": gold_parts}, []),
    }
    for modality, built in tasks.items():
        parsed = parse(modality, fake_export(built))
        field, gold, prelabels = expected[modality]
        assert parsed.problems == [] and all(row.ground_truth for row in parsed.annotations)
        assert {row.item_id: getattr(row, field) for row in parsed.annotations} == gold
        assert [
            (p.item_id, p.model_version, p.score, getattr(p, field)) for p in parsed.predictions
        ] == prelabels


# --- fuzz: whatever the input, a parse or an ExportRejected


FUZZ_NUMBERS = [None, True, False, 0, -1, 7, 1.5, 101, 1e308, 10**400, float("nan"), float("inf")]
FUZZ_STRINGS = ["", "hazard", "statue", "label", "text", "Demo Client", "井"]
FUZZ_VALUES = [*FUZZ_NUMBERS, *FUZZ_STRINGS, [], {}, [1], ["hazard"], {"id": 7}, {"id": "7"}]


def mutate(document, rng: random.Random):
    """One random edit somewhere in the JSON tree: drop, replace, duplicate or wrap a value."""
    if not isinstance(document, dict | list):
        return copy.deepcopy(rng.choice(FUZZ_VALUES))
    slots = []

    def walk(node):
        keys = node.keys() if isinstance(node, dict) else range(len(node))
        for key in list(keys):
            slots.append((node, key))
            if isinstance(node[key], dict | list):
                walk(node[key])

    walk(document)
    if not slots:
        return copy.deepcopy(rng.choice(FUZZ_VALUES))
    node, key = rng.choice(slots)
    action = rng.randrange(4)
    if action == 0:
        del node[key]
    elif action == 1:
        node[key] = copy.deepcopy(rng.choice(FUZZ_VALUES))
    elif action == 2 and isinstance(node, list):
        node.append(copy.deepcopy(node[key]))
    else:
        node[key] = [node[key]] if rng.random() < 0.5 else {"id": node[key]}
    return document


def test_fuzzed_exports_never_escape_as_anything_but_export_rejected():
    rng = random.Random(20261123)
    originals = {modality: (FIXTURES / f"{modality}.export.json").read_bytes() for modality in MODALITIES}
    outcomes = {"parsed": 0, "problems": 0, "rejected": 0}
    for _ in range(2000):
        modality = rng.choice(list(MODALITIES))
        if rng.random() < 0.1:
            raw = bytearray(originals[modality])
            position = rng.randrange(len(raw))
            raw[position : position + rng.randrange(1, 4)] = bytes([rng.randrange(256)])
            raw = bytes(raw)
        else:
            document = json.loads(originals[modality])
            for _ in range(rng.randrange(1, 4)):
                document = mutate(document, rng)
            raw = json.dumps(document, ensure_ascii=False).encode()
        try:
            parsed = parse(modality, raw)
        except ExportRejected as rejected:
            assert rejected.reasons
            outcomes["rejected"] += 1
            continue
        outcomes["problems" if parsed.problems else "parsed"] += 1
        for row in parsed.annotations + parsed.predictions:
            labels = [
                row.label,
                *(box["label"] for box in row.boxes or []),
                *(row.part_labels or {}).values(),
            ]
            assert {label for label in labels if label is not None} <= set(MODALITIES[modality][0])
            assert (row.transcript is not None) == (modality == "speech")
    assert min(outcomes.values()) > 50, outcomes
