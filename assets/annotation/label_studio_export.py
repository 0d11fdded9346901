"""Reading a finished batch, Label Studio's JSON export (CONTRACT.md section 3), without trusting any of it.

An export that is not a JSON list of tasks raises `ExportRejected`. A task with anything wrong is skipped
whole and recorded as an `ExportProblem`, so a half-read task never reaches a score and one bad task never
costs the batch. Fields annobase does not use (`unique_id`, `drafts`, `meta`, ...) are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from reprlib import repr as short

from annobase.keys import is_valid_id, require_id
from annotation_types import AnnotationType, annotation_type
from annotation_types.controls import (
    LABEL_OUTSIDE_LABEL_SET,  # noqa: F401 (a code of this parser, as the others)
    MALFORMED_RESULT,
    Control,
    InvalidResult,
    number,
)
from assets.annotation.label_studio_config import controls
from assets.annotation.label_studio_tasks import ID_FIELDS
from assets.cleaning.pii import mask_text

# the whole export is rejected
MALFORMED_JSON = "malformed_json"
NOT_A_TASK_LIST = "not_a_task_list"

# only that task is skipped
MISSING_TASK_DATA = "missing_task_data"
DUPLICATE_TASK = "duplicate_task"
MALFORMED_ANNOTATION = "malformed_annotation"
UNKNOWN_CONTROL = "unknown_control"
# and LABEL_OUTSIDE_LABEL_SET, MALFORMED_RESULT: a result its control kind cannot read
STALE_TASK = "stale_task"  # the task answers an earlier cut of the batch (its tasks_version differs)
TASK_NOT_IN_BATCH = "task_not_in_batch"  # an item of another batch (or client), not of this one

# the annotator of a honeypot's reference: annobase itself, which kept it (Label Studio's users start at 1)
REFERENCE_ANNOTATOR = 0


@dataclass(frozen=True)
class ExportProblem:
    """Why a task was skipped (or, without task_id, the export rejected): a code and a sentence."""

    code: str
    detail: str
    task_id: int | None = None

    def __post_init__(self):
        # a detail may quote the task (its text, an answer): masked once, before anyone reads it
        object.__setattr__(self, "detail", mask_text(self.detail))


class ExportRejected(Exception):
    """The whole export is unreadable; `reasons` says why."""

    def __init__(self, reasons: list[ExportProblem]):
        super().__init__("; ".join(f"{reason.code}: {reason.detail}" for reason in reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class AnnotationRow:
    """One submitted annotation; by modality, exactly one of label, transcript, boxes, part_labels is set."""

    batch_id: str
    task_id: int
    annotation_id: int
    item_id: str
    client_id: str
    delivery_id: str
    annotator: int
    ground_truth: bool
    lead_time: float | None
    created_at: str | None
    label: str | None = None
    transcript: str | None = None
    boxes: list[dict] | None = None
    part_labels: dict[str, str] | None = None
    annotator_email: str | None = None  # when the export names the user (an object, not an id)


@dataclass(frozen=True)
class PredictionRow:
    """A task's pre-label, read back with the same rules as annotations."""

    batch_id: str
    task_id: int
    item_id: str
    client_id: str
    delivery_id: str
    model_version: str | None
    score: float | None
    label: str | None = None
    transcript: str | None = None
    boxes: list[dict] | None = None
    part_labels: dict[str, str] | None = None


@dataclass
class ParsedExport:
    batch_id: str
    modality: str
    annotations: list[AnnotationRow] = field(default_factory=list)
    predictions: list[PredictionRow] = field(default_factory=list)
    cancelled: int = 0
    problems: list[ExportProblem] = field(default_factory=list)


@dataclass(frozen=True)
class _Context:
    batch_id: str
    type: AnnotationType
    label_set: frozenset[str]
    tasks_version: str | None
    batch_items: frozenset[str] | None
    references: Mapping[str, list]


def parse_export(
    raw: bytes,
    batch_id: str,
    modality: str,
    label_set: list[str],
    tasks_version: str | None = None,
    batch_items: Collection[str] | None = None,
    references: Mapping[str, list] | None = None,
) -> ParsedExport:
    """Rows for every non-cancelled annotation and every prediction of the tasks that read cleanly.

    With `tasks_version` (the batch's current cut), a task whose data names another version answers
    tasks annotators are no longer shown, and is set aside as stale. With `batch_items` (the item
    keys `client/delivery/item` of the batch's tasks), a task naming any other item is set aside: a
    tool mixing up projects must not score one client's answers as another's batch. `references`
    (item key -> Label Studio result list) are the honeypots' references annobase kept: each such task
    gets its reference as the ground truth row, and any ground truth the tool sent for it is ignored."""
    context = _Context(
        require_id(batch_id, "batch_id"),
        annotation_type(modality),
        frozenset(label_set),
        tasks_version,
        None if batch_items is None else frozenset(batch_items),
        references or {},
    )
    parsed = ParsedExport(batch_id, modality)
    seen: set[int] = set()
    for task in _load(raw):
        _read_task(task, parsed, context, seen)
    return parsed


def _load(raw: bytes) -> list:
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ExportRejected([ExportProblem(MALFORMED_JSON, f"export is not UTF-8: {error}")]) from error
    except (ValueError, RecursionError) as error:  # ValueError also covers ints too long to convert
        raise ExportRejected([ExportProblem(MALFORMED_JSON, f"export is not JSON: {error}")]) from error
    if not isinstance(document, list):
        detail = f"export is a JSON {type(document).__name__}, not a list of tasks"
        raise ExportRejected([ExportProblem(NOT_A_TASK_LIST, detail)])
    return document


def _read_task(task: object, parsed: ParsedExport, context: _Context, seen: set[int]) -> None:
    task_id = task.get("id") if isinstance(task, dict) else None
    if not _is_int(task_id):
        parsed.problems.append(ExportProblem(MISSING_TASK_DATA, f"a task has no integer id: {short(task)}"))
        return
    if task_id in seen:
        parsed.problems.append(
            ExportProblem(DUPLICATE_TASK, f"task {task_id} appears more than once", task_id)
        )
        return
    seen.add(task_id)
    data = task.get("data")
    if not isinstance(data, dict) or not all(is_valid_id(data.get(key)) for key in ID_FIELDS):
        parsed.problems.append(
            ExportProblem(
                MISSING_TASK_DATA, f"data lacks valid {', '.join(ID_FIELDS)}: {short(data)}", task_id
            )
        )
        return
    item_key = f"{data['client_id']}/{data['delivery_id']}/{data['item_id']}"
    if context.batch_items is not None and item_key not in context.batch_items:
        detail = f"item {item_key} is not one of the tasks of batch {context.batch_id}"
        parsed.problems.append(ExportProblem(TASK_NOT_IN_BATCH, detail, task_id))
        return
    if context.tasks_version is not None and data.get("tasks_version") != context.tasks_version:
        detail = f"task answers batch version {short(data.get('tasks_version'))}, not {context.tasks_version}"
        parsed.problems.append(ExportProblem(STALE_TASK, detail, task_id))
        return
    kind = context.type
    parts = [part for part in kind.spec.parts if not kind.per_part or part in data]
    try:
        asked = {control.name: control for control in controls(kind.modality, parts)}
    except ValueError as error:
        parsed.problems.append(ExportProblem(MISSING_TASK_DATA, str(error), task_id))
        return

    ids = {"batch_id": context.batch_id, "task_id": task_id, **{key: data[key] for key in ID_FIELDS}}
    annotations, predictions, problems, cancelled = [], [], [], 0
    entries = task.get("annotations", [])
    if not isinstance(entries, list):
        problems.append(ExportProblem(MALFORMED_ANNOTATION, "annotations is not a list", task_id))
        entries = []
    reference = context.references.get(item_key)
    for entry in entries:
        try:
            row = _annotation(entry, ids, asked, context)
        except InvalidResult as invalid:
            problems.append(ExportProblem(invalid.code, invalid.detail, task_id))
            continue
        if row is None:
            cancelled += 1
        elif not (reference is not None and row.ground_truth):
            annotations.append(row)
    if reference is not None:
        try:
            annotations.append(_reference(reference, ids, asked, context))
        except InvalidResult as invalid:
            problems.append(ExportProblem(invalid.code, invalid.detail, task_id))
    try:
        for prediction in _task_predictions(task.get("predictions", []), entries):
            predictions.append(_prediction(prediction, ids, asked, context))
    except InvalidResult as invalid:
        problems.append(ExportProblem(invalid.code, invalid.detail, task_id))

    if problems:
        parsed.problems.extend(problems)
        return
    parsed.annotations.extend(annotations)
    parsed.predictions.extend(predictions)
    parsed.cancelled += cancelled


def _annotation(
    entry: object, ids: dict, asked: dict[str, Control], context: _Context
) -> AnnotationRow | None:
    """The annotation's row; None when it was cancelled (skipped by its annotator)."""
    annotation_id = entry.get("id") if isinstance(entry, dict) else None
    if not _is_int(annotation_id):
        raise InvalidResult(MALFORMED_ANNOTATION, f"an annotation has no integer id: {short(entry)}")
    where = f"annotation {annotation_id}"
    cancelled = entry.get("was_cancelled", False)
    ground_truth = entry.get("ground_truth", False)
    if not isinstance(cancelled, bool) or not isinstance(ground_truth, bool):
        raise InvalidResult(
            MALFORMED_ANNOTATION, f"{where}: was_cancelled and ground_truth must be true or false"
        )
    if cancelled:
        return None
    annotator, email = entry.get("completed_by"), None
    if isinstance(annotator, dict):  # some versions (and expanded exports) give the user, not the id
        annotator, email = annotator.get("id"), annotator.get("email")
        email = email if isinstance(email, str) and email else None
    if not _is_int(annotator):
        raise InvalidResult(
            MALFORMED_ANNOTATION, f"{where}: completed_by is not a user id: {short(annotator)}"
        )
    lead_time, created_at = entry.get("lead_time"), entry.get("created_at")
    if lead_time is not None and number(lead_time) is None:
        raise InvalidResult(
            MALFORMED_ANNOTATION, f"{where}: lead_time {short(lead_time)} is not a finite number"
        )
    if created_at is not None and not isinstance(created_at, str):
        raise InvalidResult(MALFORMED_ANNOTATION, f"{where}: created_at {short(created_at)} is not a string")
    return AnnotationRow(
        **ids,
        annotation_id=annotation_id,
        annotator=annotator,
        annotator_email=email,
        ground_truth=ground_truth,
        lead_time=number(lead_time),
        created_at=created_at,
        **_answer(entry.get("result"), asked, context, where),
    )


def _reference(result: list, ids: dict, asked: dict[str, Control], context: _Context) -> AnnotationRow:
    """A honeypot's kept reference as its task's ground truth row."""
    return AnnotationRow(
        **ids,
        annotation_id=-ids["task_id"],
        annotator=REFERENCE_ANNOTATOR,
        ground_truth=True,
        lead_time=None,
        created_at=None,
        **_answer(result, asked, context, f"the honeypot reference of task {ids['task_id']}"),
    )


def _task_predictions(listed: object, annotations: list) -> list[dict]:
    """The task's predictions as objects.

    Label Studio 1.23 exports `task.predictions` as prediction ids; the objects themselves appear only as
    `annotation.prediction` on annotations started from them, so ids are resolved there, each id once.
    """
    if not isinstance(listed, list):
        raise InvalidResult(MALFORMED_ANNOTATION, "predictions is not a list")
    embedded: dict[int, dict] = {}
    for entry in annotations:
        prediction = entry.get("prediction") if isinstance(entry, dict) else None
        if isinstance(prediction, dict) and _is_int(prediction.get("id")):
            embedded.setdefault(prediction["id"], prediction)
    found, seen = [], set()
    for prediction in listed:
        if _is_int(prediction):
            prediction = embedded.get(prediction)
            if prediction is None:
                continue
        if not isinstance(prediction, dict):
            raise InvalidResult(
                MALFORMED_ANNOTATION, f"a prediction is neither an object nor an id: {short(prediction)}"
            )
        prediction_id = prediction.get("id")
        if _is_int(prediction_id):
            if prediction_id in seen:
                continue
            seen.add(prediction_id)
        found.append(prediction)
    return found


def _prediction(prediction: dict, ids: dict, asked: dict[str, Control], context: _Context) -> PredictionRow:
    model_version, score = prediction.get("model_version"), prediction.get("score")
    where = f"prediction {short(prediction.get('id'))} of model {short(model_version)}"
    if model_version is not None and not isinstance(model_version, str):
        raise InvalidResult(MALFORMED_ANNOTATION, f"{where}: model_version is not a string")
    if score is not None and number(score) is None:
        raise InvalidResult(MALFORMED_ANNOTATION, f"{where}: score {short(score)} is not a number")
    return PredictionRow(
        **ids,
        model_version=model_version,
        score=number(score),
        **_answer(prediction.get("result"), asked, context, where),
    )


def _answer(result: object, asked: dict[str, Control], context: _Context, where: str) -> dict:
    """A result list normalised to the row fields of its modality."""
    if not isinstance(result, list):
        raise InvalidResult(MALFORMED_RESULT, f"{where}: result is not a list")
    found: dict[str, list] = {name: [] for name in asked}
    for entry in result:
        if not isinstance(entry, dict):
            raise InvalidResult(MALFORMED_RESULT, f"{where}: a result entry is not an object: {short(entry)}")
        from_name, to_name = entry.get("from_name"), entry.get("to_name")
        control = asked.get(from_name) if isinstance(from_name, str) else None
        if control is None or to_name != control.to_name:
            raise InvalidResult(
                UNKNOWN_CONTROL,
                f"{where}: control {short(from_name)} -> {short(to_name)} is not one of "
                + ", ".join(f"{known.name} -> {known.to_name}" for known in asked.values()),
            )
        value = entry.get("value")
        if entry.get("type") != control.type or not isinstance(value, dict):
            raise InvalidResult(MALFORMED_RESULT, f"{where}: {control.name} needs a {control.type} value")
        found[control.name].append(context.type.kind.read(value, context.label_set, where))
    try:
        return context.type.answer({control: found[control.name] for control in asked.values()})
    except ValueError as error:
        raise InvalidResult(MALFORMED_RESULT, f"{where}: {error}") from error


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
