"""Label Studio labeling configs: the XML that tells the annotation tool what to show and what to ask.

Control names are the contract's (CONTRACT.md section 3), declared by each annotation type
(`annotation_types`). The task builder and the export parser use the same `controls`, so what annobase
asks annotators for and what it accepts back cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from annobase.settings import Modality
from annotation_types import annotation_type, modality_spec
from annotation_types.controls import Control

# part -> the Label Studio object tag that shows it; the task's `data` key is the part's name
OBJECT_TAGS = {"text": "Text", "audio": "Audio", "image": "Image"}


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
    check_parts(modality, parts)
    return annotation_type(modality).controls(parts)


def labeling_config(modality: str, label_set: list[str], parts: list[str]) -> str:
    """The `<View>` for a batch: one object tag per part, then its controls, compact as Label Studio's own.

    `label_set` is not used by a control asking for free text (transcription).
    """
    asked = controls(modality, parts)
    kind = annotation_type(modality).kind
    view = ET.Element("View")
    for part in parts:
        ET.SubElement(view, OBJECT_TAGS[part], name=part, value=f"${part}")
    for control in asked:
        kind.write_xml(view, control, label_set)
    # ElementTree escapes ">" in attribute values, so " />" only ever closes an empty tag
    return ET.tostring(view, encoding="unicode").replace(" />", "/>")
