"""Asset `annotator_scorecards`: every annotator's record over all batches, refreshed on a schedule."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

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
