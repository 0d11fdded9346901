"""The annotation-type registry: every type against its real Label Studio 1.23.2 files, and no other
place of the platform naming a type."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from annobase.settings import load_settings
from annotation_types import (
    accuracy_columns,
    annotation_type,
    configured_types,
    labelled_tasks,
    score_columns,
)
from assets.annotation.label_studio_config import OBJECT_TAGS, labeling_config
from assets.annotation.label_studio_export import parse_export
from simulator.types import simulated

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared/fixtures/label-studio"
TYPES = {f"{kind.modality}+{kind.task}": kind for kind in configured_types()}
# where the base reads its data and decides; the registry itself and the demo's scenario are not
PLATFORM = ("annobase", "assets", "quality_checks", "resources", "sensors", "orchestration")
NOT_PLATFORM = {"annobase/demo.py"}


def fixture_setup(kind) -> tuple[list[str], list[str]]:
    """The label set and parts the type's fixture project was set up with, read from its config."""
    view = ET.fromstring((FIXTURES / f"{kind.fixture}.config.xml").read_text())
    object_tags = {tag: part for part, tag in OBJECT_TAGS.items()}
    parts = [element.get("name") for element in view if element.tag in object_tags]
    controls = [element for element in view if element.tag not in object_tags]
    labels = [child.get("value") for child in controls[0]] if controls else []
    return labels, parts


def test_every_configured_modality_has_its_type_and_simulated_side():
    settings = load_settings()
    assert list(TYPES) == [f"{name}+{spec.task}" for name, spec in settings.modalities.items()]
    for kind in TYPES.values():
        assert simulated(kind.modality, kind.task).modality == kind.modality
        assert kind.gate_metric in settings.thresholds, f"{kind.gate_metric} has no [thresholds] key"
        assert set(kind.metrics) <= set(score_columns())
    assert score_columns() == ("text_accuracy", "speech_accuracy", "image_box_f1", "cross_modal_consistency")
    assert accuracy_columns() == ("text_accuracy", "speech_accuracy", "image_box_f1")
    assert labelled_tasks() == {"classification", "detection"}


def test_unknown_pairs_are_refused():
    with pytest.raises(ValueError, match="not one of"):
        annotation_type("hologram")
    with pytest.raises(ValueError, match="no annotation type"):
        annotation_type("text", "transcription")


@pytest.mark.parametrize("name", TYPES)
def test_labeling_config_is_the_fixtures(name):
    kind = TYPES[name]
    labels, parts = fixture_setup(kind)
    expected = (FIXTURES / f"{kind.fixture}.config.xml").read_text().strip()
    assert labeling_config(kind.modality, labels, parts) == expected


@pytest.mark.parametrize("name", TYPES)
def test_fixture_export_parses_whole(name):
    """Every annotation of the real export is read, none skipped, and written back as results the
    same answer comes out of."""
    kind = TYPES[name]
    labels, parts = fixture_setup(kind)
    raw = (FIXTURES / f"{kind.fixture}.export.json").read_bytes()
    exported = json.loads(raw)
    parsed = parse_export(raw, "b-001", kind.modality, labels)
    assert parsed.problems == []
    submitted = [a for task in exported for a in task["annotations"] if not a["was_cancelled"]]
    assert len(parsed.annotations) == len(submitted) > 0
    assert parsed.cancelled == sum(a["was_cancelled"] for task in exported for a in task["annotations"])
    for row in parsed.annotations:
        answer = getattr(row, kind.answer_field)
        assert answer is not None
        task_parts = parts if not kind.per_part else [p for p in parts if p in answer]
        again = {"id": 1, "completed_by": 2, "result": kind.results(task_parts, answer)}
        back = parse_export(
            json.dumps([{"id": 1, "data": exported[0]["data"], "annotations": [again]}]).encode(),
            "b-001",
            kind.modality,
            labels,
        )
        assert back.problems == [] and getattr(back.annotations[0], kind.answer_field) == answer


def _type_names() -> set[str]:
    """Names that only a type can mean: its modality unless it is also a part, and its task."""
    parts = {part for spec in load_settings().modalities.values() for part in spec.parts}
    return {kind.task for kind in TYPES.values()} | {
        kind.modality for kind in TYPES.values() if kind.modality not in parts
    }


def _names_modality(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "modality") or (
        isinstance(node, ast.Attribute) and node.attr == "modality"
    )


def findings(source: str, where: str) -> list[str]:
    """Type names in `source`'s strings (docstrings hold none exactly) and `modality` compared with a
    string literal."""
    names, found = _type_names(), []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.Constant) and node.value in names:
            found.append(f"{where}:{node.lineno} names {node.value!r}")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_names_modality(side) for side in sides) and any(
                isinstance(side, ast.Constant) and isinstance(side.value, str) for side in sides
            ):
                found.append(f"{where}:{node.lineno} compares a modality with a literal")
    return found


def test_no_platform_code_names_a_type():
    """Outside the registry, the gate, QA, the quality report, deliveries and releases never name one."""
    files = [path for folder in PLATFORM for path in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 40
    found = []
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        if relative not in NOT_PLATFORM:
            found += findings(path.read_text(), relative)
    assert found == []


def test_the_check_sees_a_dispatch_written_the_old_way():
    old = 'GATED = {"speech": "speech_accuracy"}\nif row.modality == "text":\n    pass\n'
    assert sorted(findings(old, "old.py")) == [
        "old.py:1 names 'speech'",
        "old.py:2 compares a modality with a literal",
    ]
    assert findings('"""Only speech and multimodal in prose."""\nparts = ("text", "image")\n', "ok.py") == []
