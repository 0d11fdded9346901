"""Label Studio labeling configs: the XML that tells the annotation tool what to show and what to ask.

Control names are the contract's (CONTRACT.md section 3). The task builder and the export parser use the
same `controls`, so what annobase asks annotators for and what it accepts back cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from annobase.settings import Modality, load_settings

# part -> the Label Studio object tag that shows it; the task's `data` key is the part's name
OBJECT_TAGS = {"text": "Text", "audio": "Audio", "image": "Image"}

CHOICES = "choices"
TEXTAREA = "textarea"
RECTANGLES = "rectanglelabels"
# a modality's task -> the control's name (suffixed `_{part}` when the modality has several parts) and type
TASK_CONTROLS = {
    "classification": ("label", CHOICES),
    "transcription": ("transcript", TEXTAREA),
    "detection": ("boxes", RECTANGLES),
}

# characters XML 1.0 cannot hold at all, escaped or not
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Control:
    """A control tag: `name` is its results' `from_name`, `to_name` the part it labels, `type` their type."""

    name: str
    to_name: str
    type: str


def modality_spec(modality: str) -> Modality:
    """The modality's settings; ValueError for a modality the configuration does not know."""
    spec = load_settings().modalities.get(modality)
    if spec is None:
        raise ValueError(f"modality {modality!r} is not one of {sorted(load_settings().modalities)}")
    return spec


def check_parts(modality: str, parts: Sequence[str]) -> Modality:
    """The modality's settings, once `parts` are known to be an item's parts of it (ValueError if not)."""
    spec = modality_spec(modality)
    if (
        any(part not in spec.parts for part in parts)
        or len(set(parts)) != len(parts)
        or len(parts) < spec.min_parts
    ):
        raise ValueError(
            f"parts {list(parts)} do not fit modality {modality!r}: "
            f"at least {spec.min_parts} distinct of {list(spec.parts)}"
        )
    return spec


def controls(modality: str, parts: Sequence[str]) -> list[Control]:
    """The controls an item with these parts is labelled through, in the order of `parts`."""
    spec = check_parts(modality, parts)
    name, kind = TASK_CONTROLS[spec.task]
    if len(spec.parts) == 1:
        return [Control(name, parts[0], kind)]
    return [Control(f"{name}_{part}", part, kind) for part in parts]


def labeling_config(modality: str, label_set: list[str], parts: list[str]) -> str:
    """The `<View>` for a batch: one object tag per part, then its controls, compact as Label Studio's own.

    `label_set` is not used by transcription, which asks for free text.
    """
    asked = controls(modality, parts)
    view = ET.Element("View")
    for part in parts:
        ET.SubElement(view, OBJECT_TAGS[part], name=part, value=f"${part}")
    for control in asked:
        if control.type == TEXTAREA:
            ET.SubElement(
                view,
                "TextArea",
                name=control.name,
                toName=control.to_name,
                editable="true",
                maxSubmissions="1",
            )
            continue
        tag, child = ("Choices", "Choice") if control.type == CHOICES else ("RectangleLabels", "Label")
        element = ET.SubElement(view, tag, name=control.name, toName=control.to_name)
        for label in _checked_labels(label_set):
            ET.SubElement(element, child, value=label)
    # ElementTree escapes ">" in attribute values, so " />" only ever closes an empty tag
    return ET.tostring(view, encoding="unicode").replace(" />", "/>")


def _checked_labels(label_set: list[str]) -> list[str]:
    if not label_set or len(set(label_set)) != len(label_set):
        raise ValueError(f"label_set must be non-empty and without duplicates, not {label_set!r}")
    for label in label_set:
        if not isinstance(label, str) or not label or XML_ILLEGAL.search(label):
            raise ValueError(f"label {label!r} cannot be a Label Studio choice")
    return label_set
