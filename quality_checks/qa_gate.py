"""The quality gate: Great Expectations suites over a batch's QA tables, as asset checks.

`qa_gate` holds a batch to the base's thresholds (text accuracy, speech accuracy, image box F1; a
multimodal batch to each part's label accuracy and then cross-modal consistency, from configuration)
on enough gold: no fewer gold tasks answered than the GB/T 2828.1 review sample of its size
(`assets.quality.gold_sampling`, whose docstring says how threshold and plan combine). Its verdict
names a reason (`insufficient_gold`, `below_threshold`, ...) and the accuracy's 95 % interval.
`qa_tables_valid` holds every QA table to its schema and ranges. The GX validation result is kept in
the store next to each verdict.

A verdict is not an outage. A batch the gate blocks is a business outcome: `qa_gate` fails as a
check on a run that succeeds, and the run is tagged `annobase/verdict=blocked` (or `passed`), so
the runs page tells blocked batches from broken runs and run retries (which retry failed runs
only) never re-judge a verdict. It is not a blocking check because Dagster fails the step, hence
the run, for a failed blocking check; nothing downstream of `qa_results` runs in the QA job anyway,
and what does flow on later (client deliveries, releases) consults `gate_results`, where a batch
whose latest gate failed never passes. `qa_tables_valid` stays blocking: malformed QA tables mean
something broke, and that run should fail.
"""

import json
import warnings
from datetime import UTC, datetime

import dagster as dg

from annobase import ledger
from annobase.settings import load_settings
from annotation_types import annotation_type, score_columns
from assets.evidence import score, stored, table
from assets.partitions import batches_partitions
from assets.quality.gold_sampling import PAIRS_DISAGREE, GoldVerdict, gold_verdict
from assets.quality.qa_results import qa_results
from quality_checks.gx_runner import SuiteOutcome, validate_dataframe
from quality_checks.raw_items_checks import check_metadata, failed_expectations_table
from resources import CatalogResource, ObjectStoreResource

# on the QA run, once the gate judged: `passed` or `blocked` (a business outcome on a run that succeeded)
VERDICT_TAG = "annobase/verdict"


def gate_expectations(
    metric: str, threshold: float, gold_required: int = 1, accuracy: tuple[str, float] | None = None
):
    """`accuracy` (column, threshold): also hold the accuracy on gold and every part's (the
    `min_part_accuracy` column) to it, for multimodal batches gated on consistency."""

    def build(expectations):
        held = [(metric, threshold)] + ([accuracy, ("min_part_accuracy", accuracy[1])] if accuracy else [])
        return [
            *[
                expectation
                for column, bar in held
                for expectation in (
                    expectations.ExpectColumnValuesToNotBeNull(column=column),
                    expectations.ExpectColumnValuesToBeBetween(column=column, min_value=bar, max_value=1.0),
                )
            ],
            expectations.ExpectColumnValuesToBeBetween(column="gold_annotations", min_value=1),
            # enough gold: the review sample of GB/T 2828.1 for the batch's size, reviewed or honeypots
            expectations.ExpectColumnValuesToBeBetween(column="gold_tasks", min_value=max(1, gold_required)),
            expectations.ExpectColumnValuesToBeBetween(column="tasks", min_value=1),
            # a task nobody answered has no consensus: the batch is not finished
            expectations.ExpectColumnValuesToBeBetween(column="unannotated_tasks", min_value=0, max_value=0),
            *[
                expectations.ExpectColumnValuesToBeBetween(column=column, min_value=0.0, max_value=1.0)
                for column in score_columns()
            ],
            expectations.ExpectColumnValuesToBeBetween(
                column="krippendorff_alpha", min_value=-1.0, max_value=1.0
            ),
        ]

    return build


def judge(row, thresholds: dict[str, float]) -> tuple[GoldVerdict, str, float | None]:
    """The batch's verdict from its QA row, the accuracy column it stands on and that column's value."""
    kind = annotation_type(row.modality)
    column = kind.accuracy_metric
    accuracy = _number(row[column])
    consistency = None
    parts = None
    if kind.gate_metric != column:  # gated on the parts' agreement, after each part's accuracy
        parts = json.loads(row.part_accuracy_json) if isinstance(row.part_accuracy_json, str) else {}
        consistency = (_number(row[kind.gate_metric]), thresholds[kind.gate_metric])
    verdict = gold_verdict(
        int(row.gold_tasks or 0),
        int(row.gold_required or 0),
        accuracy,
        thresholds[column],
        part_accuracy=parts,
        consistency=consistency,
    )
    return verdict, column, accuracy


def _number(value) -> float | None:
    return None if value is None or value != value else float(value)


def consensus_expectations(expectations):
    return [
        expectations.ExpectColumnValuesToNotBeNull(column="item_key"),
        expectations.ExpectColumnValuesToBeBetween(column="agreement", min_value=0.0, max_value=1.0),
        expectations.ExpectColumnValuesToBeBetween(column="annotations", min_value=1),
        expectations.ExpectCompoundColumnsToBeUnique(column_list=["task_id", "part"], ignore_row_if="never"),
    ]


def scorecard_expectations(expectations):
    return [
        expectations.ExpectColumnValuesToBeUnique(column="annotator"),
        expectations.ExpectColumnValuesToBeBetween(column="tasks_done", min_value=1),
        expectations.ExpectColumnValuesToBeBetween(column="gold_accuracy", min_value=0.0, max_value=1.0),
        expectations.ExpectColumnValuesToBeBetween(
            column="agreement_with_consensus", min_value=0.0, max_value=1.0
        ),
        expectations.ExpectColumnValuesToBeBetween(column="median_lead_time", min_value=0.0),
    ]


def _keep_result(store, qa_row, outcome: SuiteOutcome) -> str:
    """The GX result beside the export version it judged, so every round's evidence stays."""
    key = f"quality/{qa_row.batch_id}/{qa_row.export_etag}/gx/{outcome.suite}.json"
    store.put(key, json.dumps(outcome.raw, ensure_ascii=False, indent=1, default=str).encode())
    return key


def record_gate(
    writer,
    context,
    batch_id: str,
    check_name: str,
    outcomes: list[SuiteOutcome],
    qa_row,
    *,
    metric: str | None = None,
    observed: float | None = None,
    threshold: float | None = None,
    annotators_below: list | None = None,
    gx_keys: list[str],
    verdict: GoldVerdict | None = None,
    interval: tuple[float | None, float | None] = (None, None),
) -> None:
    """One `gate_results` row per batch and check, replaced by each run: what later steps consult.

    Written last, after the evidence it names, and keyed by the export version and tasks version of
    the QA row it judged: a verdict that could not be written whole leaves the batch without a verdict
    on its current data, which later steps read as not passed."""
    failed = [f"{f.expectation}({f.column})" for outcome in outcomes for f in outcome.failures]
    passed = all(outcome.success for outcome in outcomes) and (verdict is None or verdict.passed)
    # the verdict enters the ledger before the catalog, where it lets data flow on (write-ahead)
    ledger.record_gate(
        writer.store,
        qa_row,
        check_name,
        passed,
        failed,
        metric,
        observed,
        threshold,
        context.run.run_id,
        reason=None if verdict is None else verdict.reason,
    )
    writer.write_partition(
        "gate_results",
        f"{batch_id}/{check_name}",
        [
            {
                "batch_id": batch_id,
                "check_name": check_name,
                "client_id": qa_row.client_id,
                "delivery_id": qa_row.delivery_id,
                "passed": passed,
                "metric": metric,
                "observed": observed,
                "threshold": threshold,
                "failed_expectations": json.dumps(failed),
                "annotators_below": json.dumps(annotators_below or []),
                "reason": None if verdict is None else verdict.reason,
                "observed_low": interval[0],
                "observed_high": interval[1],
                "export_etag": qa_row.export_etag,
                "tasks_version": qa_row.tasks_version if isinstance(qa_row.tasks_version, str) else None,
                "gx_result_key": ", ".join(gx_keys),
                "dagster_run_id": context.run.run_id,
                "checked_at": datetime.now(UTC),
            }
        ],
    )


def qa_gate(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource, object_store: ObjectStoreResource
) -> dg.AssetCheckResult:
    batch_id = context.partition_key
    writer, store = catalog.open(), object_store.open()
    result = writer.read_partition("qa_results", batch_id)
    row = result.iloc[0]
    thresholds = load_settings().thresholds
    verdict, column, accuracy = judge(row, thresholds)
    metric = annotation_type(row.modality).gate_metric
    if metric == column:
        outcome = validate_dataframe(
            result, "qa_gate", gate_expectations(metric, thresholds[metric], int(row.gold_required))
        )
    else:  # gated on agreement across parts: each part's accuracy on gold, then the agreement
        parts = json.loads(row.part_accuracy_json) if isinstance(row.part_accuracy_json, str) else {}
        framed = result.assign(min_part_accuracy=min(parts.values(), default=None))
        outcome = validate_dataframe(
            framed,
            "qa_gate",
            gate_expectations(
                metric, thresholds[metric], int(row.gold_required), (column, thresholds[column])
            ),
        )
    cards = writer.read_partition("scorecards", batch_id)
    below = cards[cards.gold_accuracy < thresholds[column]].sort_values("gold_accuracy")
    # when every part is accurate and the parts still disagree, the client's data does: nobody is named
    annotators_below = (
        []
        if verdict.reason == PAIRS_DISAGREE
        else [
            {
                "annotator": int(card.annotator),
                "email": email if isinstance(email := getattr(card, "annotator_email", None), str) else None,
                "gold_accuracy": round(float(card.gold_accuracy), 4),
            }
            for card in below.itertuples()
        ]
    )
    interval = (_number(row.accuracy_low), _number(row.accuracy_high))
    gx_key = _keep_result(store, row, outcome)
    record_gate(
        writer,
        context,
        batch_id,
        "qa_gate",
        [outcome],
        row,
        metric=column,
        observed=accuracy,
        threshold=thresholds[column],
        annotators_below=annotators_below,
        gx_keys=[gx_key],
        verdict=verdict,
        interval=interval,
    )
    passed = outcome.success and verdict.passed
    context.instance.add_run_tags(context.run.run_id, {VERDICT_TAG: "passed" if passed else "blocked"})
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            **check_metadata(outcome),
            "reason": verdict.reason,
            "verdict": verdict.detail,
            "metric": column,
            "observed": score(accuracy) if accuracy is not None else "not measured (no gold)",
            "observed_95_interval": dg.MetadataValue.json(
                [None if b is None else round(b, 4) for b in interval]
            ),
            "threshold": score(thresholds[column]),
            "gold_tasks": int(row.gold_tasks or 0),
            "gold_required": int(row.gold_required),
            **(
                {"part_accuracy": dg.MetadataValue.json(parts), metric: _number(row[metric])}
                if metric != column
                else {}
            ),
            "annotators_below_threshold": table(
                annotators_below, {"annotator": "int", "email": "string", "gold_accuracy": "float"}
            ),
            "gx_result": stored(store, gx_key),
        },
        description=gate_summary(
            outcome, verdict, column, accuracy, thresholds[column], len(annotators_below)
        ),
    )


def gate_summary(
    outcome: SuiteOutcome, verdict: GoldVerdict, metric: str, observed, threshold: float, below: int
) -> str:
    """The verdict in one line, as the check's page and the asset's partition show it."""
    measured = f"{metric} {observed:.3f}" if observed is not None else f"{metric} not measured (no gold)"
    if outcome.success and verdict.passed:
        return f"passed: {measured} meets the threshold {threshold:.3f}"
    if outcome.success:
        return f"blocked: {verdict.reason}: {verdict.detail}"
    failed = ", ".join(f"{f.expectation}({f.column})" for f in outcome.failures)
    crew = f"; {below} annotators under it on gold" if below else ""
    return f"blocked: {measured} against the threshold {threshold:.3f}{crew}; failed {failed}"


def qa_tables_valid(
    context: dg.AssetCheckExecutionContext, catalog: CatalogResource, object_store: ObjectStoreResource
) -> dg.AssetCheckResult:
    """One after the other, each in its own GX context (GX #12209)."""
    writer, store = catalog.open(), object_store.open()
    outcomes = [
        validate_dataframe(
            writer.read_partition("consensus", context.partition_key), "consensus", consensus_expectations
        ),
        validate_dataframe(
            writer.read_partition("scorecards", context.partition_key), "scorecards", scorecard_expectations
        ),
    ]
    row = writer.read_partition("qa_results", context.partition_key).iloc[0]
    keys = [_keep_result(store, row, outcome) for outcome in outcomes]
    record_gate(writer, context, context.partition_key, "qa_tables_valid", outcomes, row, gx_keys=keys)
    return dg.AssetCheckResult(
        passed=all(outcome.success for outcome in outcomes),
        metadata={
            **{
                f"{outcome.suite}_failed": failed_expectations_table(outcome.failures) for outcome in outcomes
            },
            **{
                f"{outcome.suite}_gx_result": stored(store, key)
                for outcome, key in zip(outcomes, keys, strict=True)
            },
        },
        description="; ".join(
            f"{outcome.suite}: {outcome.evaluated_rows} rows valid"
            if outcome.success
            else f"{outcome.suite}: " + ", ".join(f"{f.expectation}({f.column})" for f in outcome.failures)
            for outcome in outcomes
        ),
    )


# Per-batch checks are a preview feature in Dagster 1.13, used knowingly: a batch is gated on its
# own (QA runs are one batch each), and the results are also kept in the catalog (`gate_results`).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    qa_gate = dg.asset_check(
        asset=qa_results,
        partitions_def=batches_partitions,
        # a verdict, not a failure: see the module's docstring
        blocking=False,
        description="GX: the batch meets the base's threshold for its modality (configuration); a "
        "failure is a verdict (run tagged annobase/verdict=blocked), not a failed run.",
    )(qa_gate)
    qa_tables_valid = dg.asset_check(
        asset=qa_results,
        partitions_def=batches_partitions,
        blocking=True,
        description="GX: consensus and scorecard tables have their schema and ranges.",
    )(qa_tables_valid)
