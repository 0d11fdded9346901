"""The quality gate: Great Expectations suites over a batch's QA tables, as blocking asset checks.

`qa_gate` holds a batch to the base's thresholds (text accuracy, speech accuracy, cross-modal
consistency, image box F1, from configuration) and `qa_tables_valid` holds every QA table to its
schema and ranges. A failed gate blocks the batch's downstream steps in the same run, and its row
in `gate_results` is what later steps (client deliveries, releases) consult, so a batch whose
latest gate failed never flows on. The GX validation result is kept in the store next to it.
"""

import json
import warnings
from datetime import UTC, datetime

import dagster as dg

from annobase import ledger
from annobase.settings import load_settings
from assets.evidence import score, stored, table
from assets.partitions import batches_partitions
from assets.quality.qa_results import qa_results
from quality_checks.gx_runner import SuiteOutcome, validate_dataframe
from quality_checks.raw_items_checks import check_metadata, failed_expectations_table
from resources import CatalogResource, ObjectStoreResource

GATED_METRIC = {
    "text": "text_accuracy",
    "speech": "speech_accuracy",
    "multimodal": "cross_modal_consistency",
    "image": "image_box_f1",
}
SCORE_COLUMNS = ("text_accuracy", "speech_accuracy", "image_box_f1", "cross_modal_consistency")


def gate_expectations(metric: str, threshold: float):
    def build(expectations):
        return [
            expectations.ExpectColumnValuesToNotBeNull(column=metric),
            expectations.ExpectColumnValuesToBeBetween(column=metric, min_value=threshold, max_value=1.0),
            expectations.ExpectColumnValuesToBeBetween(column="gold_annotations", min_value=1),
            expectations.ExpectColumnValuesToBeBetween(column="tasks", min_value=1),
            # a task nobody answered has no consensus: the batch is not finished
            expectations.ExpectColumnValuesToBeBetween(column="unannotated_tasks", min_value=0, max_value=0),
            *[
                expectations.ExpectColumnValuesToBeBetween(column=column, min_value=0.0, max_value=1.0)
                for column in SCORE_COLUMNS
            ],
            expectations.ExpectColumnValuesToBeBetween(
                column="krippendorff_alpha", min_value=-1.0, max_value=1.0
            ),
        ]

    return build


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
) -> None:
    """One `gate_results` row per batch and check, replaced by each run: what later steps consult.

    Written last, after the evidence it names, and keyed by the export version and tasks version of
    the QA row it judged: a verdict that could not be written whole leaves the batch without a verdict
    on its current data, which later steps read as not passed."""
    failed = [f"{f.expectation}({f.column})" for outcome in outcomes for f in outcome.failures]
    passed = all(outcome.success for outcome in outcomes)
    # the verdict enters the ledger before the catalog, where it lets data flow on (write-ahead)
    ledger.record_gate(
        writer.store, qa_row, check_name, passed, failed, metric, observed, threshold, context.run.run_id
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
    metric = GATED_METRIC[row.modality]
    threshold = load_settings().thresholds[metric]
    outcome = validate_dataframe(result, "qa_gate", gate_expectations(metric, threshold))
    cards = writer.read_partition("scorecards", batch_id)
    below = cards[cards.gold_accuracy < threshold].sort_values("gold_accuracy")
    annotators_below = [
        {"annotator": int(card.annotator), "gold_accuracy": round(float(card.gold_accuracy), 4)}
        for card in below.itertuples()
    ]
    observed = None if row[metric] != row[metric] else float(row[metric])
    gx_key = _keep_result(store, row, outcome)
    record_gate(
        writer,
        context,
        batch_id,
        "qa_gate",
        [outcome],
        row,
        metric=metric,
        observed=observed,
        threshold=threshold,
        annotators_below=annotators_below,
        gx_keys=[gx_key],
    )
    return dg.AssetCheckResult(
        passed=outcome.success,
        metadata={
            **check_metadata(outcome),
            "metric": metric,
            "observed": score(observed),
            "threshold": score(threshold),
            "annotators_below_threshold": table(
                annotators_below, {"annotator": "int", "gold_accuracy": "float"}
            ),
            "gx_result": stored(store, gx_key),
        },
        description=gate_summary(outcome, metric, observed, threshold, len(annotators_below)),
    )


def gate_summary(outcome: SuiteOutcome, metric: str, observed, threshold: float, below: int) -> str:
    """The verdict in one line, as the check's page and the asset's partition show it."""
    measured = f"{metric} {observed:.3f}" if observed is not None else f"{metric} not measured (no gold)"
    if outcome.success:
        return f"passed: {measured} meets the threshold {threshold:.3f}"
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
        blocking=True,
        description="GX: the batch meets the base's threshold for its modality (configuration).",
    )(qa_gate)
    qa_tables_valid = dg.asset_check(
        asset=qa_results,
        partitions_def=batches_partitions,
        blocking=True,
        description="GX: consensus and scorecard tables have their schema and ranges.",
    )(qa_tables_valid)
