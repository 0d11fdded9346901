"""Asset `annotator_scorecards`: every annotator's record over all batches, refreshed on a schedule."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from assets.evidence import score
from assets.quality.qa_results import qa_results
from resources import CatalogResource

ROLLING_PARTITION = "all"


@dg.asset(
    deps=[dg.AssetDep(qa_results, partition_mapping=dg.AllPartitionMapping())],
    group_name="quality",
    kinds={"duckdb"},
    owners=["team:quality"],
    code_version="1",
)
def annotator_scorecards(context: dg.AssetExecutionContext, catalog: CatalogResource) -> dg.MaterializeResult:
    """One row per annotator: tasks, gold accuracy, agreement with consensus, speed, batches blocked."""
    writer = catalog.open()
    cards = writer.query("annotator_scorecards_rolling")
    now = datetime.now(UTC)
    rows = [
        {
            **{
                key: (None if isinstance(value, float) and pd.isna(value) else value)
                for key, value in card.items()
            },
            "dagster_run_id": context.run.run_id,
            "computed_at": now,
        }
        for card in cards.to_dict("records")
    ]
    writer.write_partition("annotator_scorecards", ROLLING_PARTITION, rows)
    weakest = cards.dropna(subset=["gold_accuracy"]).nsmallest(3, "gold_accuracy")
    return dg.MaterializeResult(
        metadata={
            **quality_over_time(writer),
            "annotators": len(rows),
            "dagster/row_count": len(rows),
            "weakest_gold_accuracy": dg.MetadataValue.md(
                "| annotator | gold accuracy | gold tasks | batches blocked |\n|---|---|---|---|\n"
                + "\n".join(
                    f"| {card.annotator} | {card.gold_accuracy:.3f} | {card.gold_tasks} "
                    f"| {card.batches_blocked} |"
                    for card in weakest.itertuples()
                )
            ),
        }
    )


def quality_over_time(writer) -> dict[str, dg.MetadataValue]:
    """Pass rate per client and industry, and each industry's mean gated scores, as numbers: this asset
    is refreshed hourly, so the UI plots each of them over time (a batch's own scores are one point)."""
    metadata = {}
    for client in writer.query("client_quality").itertuples():
        if client.gated:
            metadata[f"pass_rate {client.client_id}"] = score(client.passed / client.gated)
    for industry in writer.query("industry_quality").itertuples():
        gated = industry.passed + industry.blocked
        if gated:
            metadata[f"pass_rate {industry.industry}"] = score(industry.passed / gated)
        for measure in ("text_accuracy", "speech_accuracy", "cross_modal", "image_box_f1"):
            value = getattr(industry, measure)
            if not pd.isna(value):
                metadata[f"{measure} {industry.industry}"] = score(value)
    return metadata
