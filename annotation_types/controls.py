"""Label Studio control kinds: how each control is written into a labeling config, how one of its result
values is read back from an export, and how an answer is written as its results (gold, pre-labels).

Annotation types are built from these; a control kind shared by several types (choices for text and for
multimodal parts) is written once. What the readers accept is Label Studio 1.23.2's own output.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from reprlib import repr as short
from xml.etree import ElementTree as ET

# codes of a result that cannot be read (the export parser skips its task with them)
LABEL_OUTSIDE_LABEL_SET = "label_outside_label_set"
MALFORMED_RESULT = "malformed_result"

# Label Studio clamps boxes to the image; this absorbs float rounding at the right and bottom edges
EDGE_TOLERANCE = 1e-6

# characters XML 1.0 cannot hold at all, escaped or not
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class InvalidResult(Exception):
    """A result value that cannot be read; `code` says why, machine-readably."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Control:
    """A control tag: `name` is its results' `from_name`, `to_name` the part it labels, `type` their type."""

    name: str
    to_name: str
    type: str


@dataclass(frozen=True)
class ControlKind:
    """One Label Studio control tag and its results.

    `many`: a control may give any number of results per annotation (one per region), which become
    a list; otherwise exactly one, which becomes the answer itself. `write_xml(view, control,
    label_set)` adds the tag; `read(value, label_set, where)` reads one result's value (raising
    InvalidResult); `results(control, answer, **media)` is the answer as result entries.
    """

    type: str
    many: bool
    labelled: bool  # whether it asks for labels from the label set (a manifest must then send one)
    write_xml: Callable[[ET.Element, Control, list[str]], None]
    read: Callable[[dict, frozenset[str], str], object]
    results: Callable[..., list[dict]]


def checked_labels(label_set: list[str]) -> list[str]:
    if not label_set or len(set(label_set)) != len(label_set):
        raise ValueError(f"label_set must be non-empty and without duplicates, not {label_set!r}")
    for label in label_set:
        if not isinstance(label, str) or not label or XML_ILLEGAL.search(label):
            raise ValueError(f"label {label!r} cannot be a Label Studio choice")
    return label_set


def labelled_tag(tag: str, child: str) -> Callable[[ET.Element, Control, list[str]], None]:
    """A control listing the label set as `<child value=...>` children of `<tag>`."""

    def write(view: ET.Element, control: Control, label_set: list[str]) -> None:
        element = ET.SubElement(view, tag, name=control.name, toName=control.to_name)
        for label in checked_labels(label_set):
            ET.SubElement(element, child, value=label)

    return write


def _write_textarea(view: ET.Element, control: Control, label_set: list[str]) -> None:
    """Free text: the label set is not used."""
    ET.SubElement(
        view, "TextArea", name=control.name, toName=control.to_name, editable="true", maxSubmissions="1"
    )


def label(value: object, label_set: frozenset[str], where: str) -> str:
    if not isinstance(value, str) or value not in label_set:
        raise InvalidResult(
            LABEL_OUTSIDE_LABEL_SET, f"{where}: label {short(value)} is not one of {sorted(label_set)}"
        )
    return value


def number(value: object) -> float | None:
    """`value` as a finite float, or None; JSON booleans, NaN and numbers beyond float are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        result = float(value)
    except OverflowError:
        return None
    return result if math.isfinite(result) else None


def _read_choice(value: dict, label_set: frozenset[str], where: str) -> str:
    choices = value.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        raise InvalidResult(
            MALFORMED_RESULT, f"{where}: choices must hold exactly one label: {short(choices)}"
        )
    return label(choices[0], label_set, where)


def _read_text(value: dict, label_set: frozenset[str], where: str) -> str:
    lines = value.get("text")
    if not isinstance(lines, list) or not lines or not all(isinstance(line, str) for line in lines):
        raise InvalidResult(MALFORMED_RESULT, f"{where}: textarea without text: {short(lines)}")
    return "\n".join(lines)


def _read_box(value: dict, label_set: frozenset[str], where: str) -> dict:
    x, y, width, height = (number(value.get(key)) for key in ("x", "y", "width", "height"))
    if x is None or y is None or width is None or height is None:
        raise InvalidResult(MALFORMED_RESULT, f"{where}: a rectangle lacks numeric x, y, width and height")
    if not (
        0 <= x <= 100
        and 0 <= y <= 100
        and width > 0
        and height > 0
        and x + width <= 100 + EDGE_TOLERANCE
        and y + height <= 100 + EDGE_TOLERANCE
    ):
        raise InvalidResult(
            MALFORMED_RESULT, f"{where}: rectangle {x}, {y}, {width} x {height} is outside 0..100%"
        )
    if number(value.get("rotation", 0)) != 0:
        raise InvalidResult(
            MALFORMED_RESULT, f"{where}: a rotated rectangle cannot be read as an axis-aligned box"
        )
    labels = value.get("rectanglelabels")
    if not isinstance(labels, list) or len(labels) != 1:
        raise InvalidResult(
            MALFORMED_RESULT, f"{where}: a rectangle must carry exactly one label: {short(labels)}"
        )
    return {"x": x, "y": y, "width": width, "height": height, "label": label(labels[0], label_set, where)}


def _choice_results(control: Control, answer: str) -> list[dict]:
    return [
        {
            "from_name": control.name,
            "to_name": control.to_name,
            "type": "choices",
            "value": {"choices": [answer]},
        }
    ]


def _textarea_results(control: Control, answer: str) -> list[dict]:
    return [
        {
            "from_name": control.name,
            "to_name": control.to_name,
            "type": "textarea",
            "value": {"text": [answer]},
        }
    ]


def _rectangle_results(
    control: Control,
    answer: list[dict],
    original_width: int | None = None,
    original_height: int | None = None,
) -> list[dict]:
    """Boxes hold x, y, width, height in percent of the image (the contract's unit) and their label."""
    return [
        {
            "from_name": control.name,
            "to_name": control.to_name,
            "type": "rectanglelabels",
            "original_width": original_width,
            "original_height": original_height,
            "image_rotation": 0,
            "value": {
                "x": box["x"],
                "y": box["y"],
                "width": box["width"],
                "height": box["height"],
                "rotation": 0,
                "rectanglelabels": [box["label"]],
            },
        }
        for box in answer
    ]


CHOICES = ControlKind(
    "choices", False, True, labelled_tag("Choices", "Choice"), _read_choice, _choice_results
)
TEXTAREA = ControlKind("textarea", False, False, _write_textarea, _read_text, _textarea_results)
RECTANGLES = ControlKind(
    "rectanglelabels", True, True, labelled_tag("RectangleLabels", "Label"), _read_box, _rectangle_results
)
