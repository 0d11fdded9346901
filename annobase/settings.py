"""The base's configuration: industries (with their PII rule), modalities and thresholds, read from TOML.

The packaged `annobase.toml` is the default; `ANNOBASE_CONFIG` names a replacement file, so an
industry is added without a code change.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).with_name("annobase.toml")


@dataclass(frozen=True)
class Modality:
    name: str
    parts: tuple[str, ...]
    min_parts: int
    task: str


PII_RULES = ("mask", "keep")


@dataclass(frozen=True)
class Cleaning:
    pii_industries: tuple[str, ...]  # the industries whose PII rule is "mask"
    near_duplicate_text_jaccard: float
    near_duplicate_image_bits: int
    min_audio_seconds: float
    max_audio_seconds: float
    sample_rates: tuple[int, ...]
    max_audio_channels: int
    min_image_side: int
    max_image_side: int
    name_segmenter: bool = False  # jieba's name tags as well as patterns (annobase.toml says the cost)


@dataclass(frozen=True)
class Annotation:
    batch_size: int
    overlap_share: float
    overlap_annotators: int
    honeypot_share: float


@dataclass(frozen=True)
class IntakeLimits:
    """What one delivery may hold before it is refused unread, each limit with its rejection code."""

    max_manifest_bytes: int
    max_manifest_items: int
    max_label_set: int
    max_text_bytes: int
    # how long a run waits for another run of the same delivery to finish with it
    lease_wait_seconds: float


@dataclass(frozen=True)
class Settings:
    industries: dict[str, str]
    modalities: dict[str, Modality]
    part_extensions: dict[str, tuple[str, ...]]
    max_file_bytes: int
    items_per_task: int
    limits: IntakeLimits
    thresholds: dict[str, float]
    cleaning: Cleaning
    annotation: Annotation


@cache
def load_settings(path: str | None = None) -> Settings:
    """Parse the configuration once per process."""
    raw = tomllib.loads(Path(path or os.environ.get("ANNOBASE_CONFIG") or DEFAULT_CONFIG).read_text())
    rules = {name: spec.get("pii", "keep") for name, spec in raw["industries"].items()}
    if unknown := {name: rule for name, rule in rules.items() if rule not in PII_RULES}:
        raise ValueError(f"industry PII rules must be one of {PII_RULES}, not {unknown}")
    cleaning = dict(raw["cleaning"])
    # a `[cleaning] pii_industries` list (the older form) still masks the industries it names
    masked = [name for name, rule in rules.items() if rule == "mask"] + list(
        cleaning.pop("pii_industries", [])
    )
    return Settings(
        industries={name: spec["title"] for name, spec in raw["industries"].items()},
        modalities={
            name: Modality(name, tuple(spec["parts"]), int(spec["min_parts"]), spec["task"])
            for name, spec in raw["modalities"].items()
        },
        part_extensions={part: tuple(exts) for part, exts in raw["parts"].items()},
        max_file_bytes=int(raw["intake"]["max_file_bytes"]),
        items_per_task=int(raw["intake"]["items_per_task"]),
        limits=IntakeLimits(
            max_manifest_bytes=int(raw["intake"].get("max_manifest_bytes", 64 << 20)),
            max_manifest_items=int(raw["intake"].get("max_manifest_items", 50_000)),
            max_label_set=int(raw["intake"].get("max_label_set", 1_000)),
            max_text_bytes=int(raw["intake"].get("max_text_bytes", 16 << 20)),
            lease_wait_seconds=float(raw["intake"].get("lease_wait_seconds", 900)),
        ),
        thresholds={name: float(value) for name, value in raw["thresholds"].items()},
        cleaning=Cleaning(
            pii_industries=tuple(dict.fromkeys(masked)),
            **{key: tuple(value) if isinstance(value, list) else value for key, value in cleaning.items()},
        ),
        annotation=Annotation(**raw["annotation"]),
    )
