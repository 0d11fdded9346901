"""A release's quality report (`quality_report.json`): its scores against the base's thresholds and the six
GB/T 36344-2018 data-quality indicators.

Every number says what it measured and over how many rows, and is None with a reason when nothing could
be measured, so a reader never takes an empty release for a perfect one. The scores come from the
batches' quality runs; the indicators from the released items themselves.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from annobase.keys import is_valid_id
from annobase.settings import Modality, load_settings
from annotation_types import accuracy_columns, annotation_type

SCHEMA = "annobase.quality-report/1"

GBT_36344_2018_NAMES = {
    "normativity": "规范性",
    "completeness": "完整性",
    "accuracy": "准确性",
    "consistency": "一致性",
    "timeliness": "时效性",
    "accessibility": "可访问性",
}


def _measure(value: float | None, rows: int, reason: str) -> dict:
    """A value with its row count; the reason is kept only when there was nothing to measure."""
    if value is None or rows == 0:
        return {"value": None, "rows_measured": 0, "reason": reason}
    return {"value": float(value), "rows_measured": int(rows), "reason": None}


def _mean(values: pd.Series, reason: str) -> dict:
    """Mean of the measured values (NaN = not measured)."""
    measured = values.dropna().astype(float)
    return _measure(measured.mean() if len(measured) else None, len(measured), reason)


def _weighted(values: pd.Series, weights: pd.Series, reason: str) -> tuple[dict, int]:
    """Batch scores averaged over the batches that have one, each weighted by the rows it was measured on.

    Returns the measure and how many batches it covers.
    """
    values = pd.to_numeric(values, errors="coerce")
    weights = pd.to_numeric(weights, errors="coerce").fillna(0)
    used = values.notna() & (weights > 0)
    total = weights[used].sum()
    value = (values[used] * weights[used]).sum() / total if total > 0 else None
    return _measure(value, total, reason), int(used.sum())


def _texts(items: pd.DataFrame, column: str) -> np.ndarray:
    """Per item, whether `column` holds a string (a missing column holds none)."""
    if column not in items:
        return np.zeros(len(items), dtype=bool)
    return np.fromiter((isinstance(value, str) for value in items[column].tolist()), bool, len(items))


def _values(items: pd.DataFrame, column: str) -> np.ndarray:
    return items[column].to_numpy(object) if column in items else np.full(len(items), None, dtype=object)


def _json_lists(values: np.ndarray) -> np.ndarray:
    """Per value, whether it parses as a JSON list."""

    def parses(value: str) -> bool:
        try:
            return isinstance(json.loads(value), list)
        except ValueError:
            return False

    return np.fromiter((parses(value) for value in values), bool, len(values))


def _ids_conform(items: pd.DataFrame) -> np.ndarray:
    """Per item, whether its ids match the id pattern and its item_key is client_id/delivery_id/item_id."""
    ids = [_values(items, column) for column in ("client_id", "delivery_id", "item_id")]
    conform = np.ones(len(items), dtype=bool)
    for values in ids:
        conform &= np.fromiter((is_valid_id(value) for value in values), bool, len(values))
    keys = _values(items, "item_key")
    conform[conform] = keys[conform] == np.array(
        ["/".join(parts) for parts in zip(*(values[conform] for values in ids), strict=True)], dtype=object
    )
    return conform


def _answers(items: pd.DataFrame, modalities: Mapping[str, Modality]) -> tuple[np.ndarray, np.ndarray]:
    """Per item: whether its consensus answer is present (the task's column, or a label for every part
    the item has, a part being had when its file was copied into the release), and whether it is also
    well-formed (boxes_json a JSON list, at least min_parts parts). Items of an unconfigured modality
    have neither. Column by column, a modality at a time: per-item records cost seconds per 100,000."""
    answered, well_formed = np.zeros(len(items), dtype=bool), np.zeros(len(items), dtype=bool)
    modality = _values(items, "modality")
    for name, spec in modalities.items():
        rows = modality == name
        if not rows.any():
            continue
        kind = annotation_type(name, spec.task)
        if kind.per_part:
            has = np.array([_texts(items, f"{part}_path")[rows] for part in spec.parts])
            labelled = np.array([_texts(items, f"label_{part}")[rows] for part in spec.parts])
            present = has.any(axis=0) & (labelled | ~has).all(axis=0)
            answered[rows] = present
            well_formed[rows] = present & (has.sum(axis=0) >= spec.min_parts)
        else:
            column = kind.release_answer
            present = _texts(items, column)[rows]
            answered[rows] = present
            if kind.release_json:
                shaped = present.copy()
                shaped[present] = _json_lists(_values(items, column)[rows][present])
                well_formed[rows] = shaped
            else:
                well_formed[rows] = present
    return answered, well_formed


def _cross_modal(items: pd.DataFrame, modalities: Mapping[str, Modality]) -> np.ndarray:
    """Per item, 1 when a multi-part item's labelled parts agree, 0 when they differ; NaN with fewer
    than two labels and for single-part items."""
    consistency = np.full(len(items), np.nan)
    modality = _values(items, "modality")
    for name, spec in modalities.items():
        rows = modality == name
        if not rows.any() or not annotation_type(name, spec.task).per_part:
            continue
        labels = [_values(items, f"label_{part}")[rows] for part in spec.parts]
        labelled = [_texts(items, f"label_{part}")[rows] for part in spec.parts]
        first, found = np.full(int(rows.sum()), None, dtype=object), np.zeros(int(rows.sum()), dtype=bool)
        for values, present in zip(labels, labelled, strict=True):
            first = np.where(~found & present, values, first)
            found |= present
        agree = np.all(
            [~present | (values == first) for values, present in zip(labels, labelled, strict=True)], axis=0
        )
        consistency[rows] = np.where(np.sum(labelled, axis=0) >= 2, agree.astype(float), np.nan)
    return consistency


def _flag(items: pd.DataFrame, column: str) -> pd.Series:
    """A boolean column where anything but True (False, null) counts as not established."""
    return items[column].eq(True).fillna(False).astype(float)


def _scores(items: pd.DataFrame, batches: pd.DataFrame, thresholds: Mapping[str, float]) -> dict:
    gold = batches["gold_annotations"]
    items_per_batch = batches["batch_id"].map(items["batch_id"].value_counts())
    weighted = {
        name: _weighted(batches[name], gold, f"no batch of the release has {name} measured on gold")
        for name in accuracy_columns()
    }
    weighted["cross_modal_consistency"] = _weighted(
        batches["cross_modal_consistency"],
        items_per_batch,
        "no released multimodal item with two labelled parts",
    )
    scores = {name: {**measure, "batches": count} for name, (measure, count) in weighted.items()}
    alphas = pd.to_numeric(batches["krippendorff_alpha"], errors="coerce")
    measured = alphas.notna()
    scores["krippendorff_alpha"] = {
        **_measure(
            alphas[measured].mean() if measured.any() else None,
            int(pd.to_numeric(batches["annotations"][measured], errors="coerce").fillna(0).sum()),
            "no batch has tasks labelled by two annotators with two distinct labels",
        ),
        "batches": int(measured.sum()),
    }
    for name, score in scores.items():
        threshold = thresholds.get(name)
        score["threshold"] = threshold
        score["meets_threshold"] = (
            None if threshold is None or score["value"] is None else bool(score["value"] >= threshold)
        )
    return scores


def _accuracy(batches: pd.DataFrame, modalities: Mapping[str, Modality]) -> dict:
    """Each batch's own measure against gold (by its modality's task), weighted by its gold annotations."""
    measures = [
        batch[annotation_type(batch["modality"], modalities[batch["modality"]].task).accuracy_metric]
        if batch["modality"] in modalities
        else None
        for _, batch in batches.iterrows()
    ]
    measure, _ = _weighted(
        pd.Series(measures, index=batches.index, dtype=object),
        batches["gold_annotations"],
        "no batch has annotations on gold tasks",
    )
    return measure


def quality_report(
    items: pd.DataFrame,
    batches: pd.DataFrame,
    thresholds: Mapping[str, float],
    released_at: datetime,
    *,
    withheld: Mapping[str, str] | None = None,
    timely_within: timedelta = timedelta(days=30),
    modalities: Mapping[str, Modality] | None = None,
) -> dict:
    """The report of one release, as a JSON-able dict.

    `items`: one row per released item (release Parquet columns plus `files_present`); `batches`: one
    row per batch of the release with its quality-run scores; `withheld`: the items chosen for the
    release but kept out of it because a file was not the bytes intake verified (item_key -> reason).
    `scores` hold the batch measures against `thresholds` (accuracies weighted by gold annotations,
    cross-modal consistency by released items, Krippendorff's alpha a plain mean over batches, in
    [-1, 1] and without a threshold). `modalities` defaults to the configured ones.
    """
    modalities = load_settings().modalities if modalities is None else modalities
    withheld = dict(withheld or {})
    released = pd.Timestamp(released_at)
    released = released.tz_localize("UTC") if released.tzinfo is None else released
    items = items.reset_index(drop=True)
    no_items = "the release has no items"

    agreement = pd.to_numeric(items["agreement"], errors="coerce").astype(float)
    consistency = pd.concat([agreement, pd.Series(_cross_modal(items, modalities))], axis=1).mean(axis=1)
    answered, well_formed = _answers(items, modalities)
    conforms = _ids_conform(items) & well_formed
    uploaded = pd.to_datetime(items["uploaded_at"], utc=True)
    timely = (released - uploaded <= timely_within).astype(float).where(uploaded.notna())
    days = timely_within / timedelta(days=1)

    indicators = {
        "normativity": (
            "Share of items whose record conforms to the release schema: client, delivery and item ids "
            "match [a-z0-9][a-z0-9_-]{0,63}, item_key is client_id/delivery_id/item_id, the modality is "
            "configured, and its answer is present and well-formed (label, transcript, boxes_json parsing "
            "as a JSON list, or a label for each of at least min_parts parts).",
            _mean(pd.Series(conforms, dtype=float), no_items),
        ),
        "completeness": (
            "Share of items whose every listed file is present in the release (files_present) and whose "
            "consensus answer (the task's column, or a label for every part the item has) is non-null.",
            _mean(_flag(items, "files_present") * answered, no_items),
        ),
        "accuracy": (
            "Mean of each batch's own measure against gold (label accuracy for classification, 1 - CER for "
            "transcription, box F1 at IoU 0.5 for detection), weighted by its annotations on gold tasks; "
            "rows are those annotations.",
            _accuracy(batches, modalities),
        ),
        "consistency": (
            "Mean over items of each item's consistency: the share of its annotators agreeing with the "
            "consensus, averaged with its cross-modal consistency (1 if its parts' consensus labels agree, "
            "else 0) for multimodal items with two labelled parts, either alone where only one exists.",
            _mean(consistency, "no item has an agreement or two labelled parts"),
        ),
        "timeliness": (
            f"Share of items released within {days:g} days of their upload (released_at - uploaded_at), "
            "over the items with a known upload time.",
            _mean(timely, "no item has an upload time"),
        ),
        "accessibility": (
            "Share of the items chosen for the release whose every file, hashed as it was written into "
            "the release (read back after a server-side copy), has the sha256 intake recorded for it; "
            "the others are withheld from the release (listed under `withheld`).",
            _measure(
                len(items) / (len(items) + len(withheld)) if len(items) else None,
                len(items) + len(withheld),
                no_items,
            ),
        ),
    }
    return {
        "schema": SCHEMA,
        "released_at": released.isoformat(),
        "items": len(items),
        "batches": len(batches),
        "scores": _scores(items, batches, thresholds),
        "withheld": {
            "items": len(withheld),
            "by_reason": dict(sorted(Counter(reason.split(":")[0] for reason in withheld.values()).items())),
            "list": [{"item_key": key, "reason": reason} for key, reason in sorted(withheld.items())],
        },
        "gbt_36344_2018": {
            name: {"name_zh": GBT_36344_2018_NAMES[name], "definition": definition, **measured}
            for name, (definition, measured) in indicators.items()
        },
    }
