"""Blocking check on `raw_items`: the catalog rows of a delivery are well formed before anything uses them."""

import dagster as dg
import pandas as pd

from annobase.keys import UPLOADS, DeliveryRef
from annobase.settings import load_settings
from assets.evidence import table
from assets.intake.raw_items import raw_items
from assets.partitions import deliveries_of
from quality_checks.gx_runner import SuiteOutcome, validate_dataframe
from resources import CatalogResource
from resources.catalog import Catalog


def raw_items_expectations(refs: list[DeliveryRef]):
    """The suite: identity, hashes, sizes and vocabularies of the raw_items rows of the run's deliveries.

    Each row must sit in its own delivery's partition and point into its own delivery's uploads:
    derived columns make those per-row facts, checked by GX as equal column pairs.
    """
    settings = load_settings()
    parts = sorted({part for modality in settings.modalities.values() for part in modality.parts})

    def build(expectations):
        return [
            expectations.ExpectColumnValuesToNotBeNull(column="item_key"),
            expectations.ExpectCompoundColumnsToBeUnique(column_list=["item_key", "part"]),
            expectations.ExpectColumnValuesToMatchRegex(column="sha256", regex=r"^[0-9a-f]{64}$"),
            expectations.ExpectColumnValuesToBeBetween(column="bytes", min_value=1),
            expectations.ExpectColumnValuesToBeInSet(
                column="client_id", value_set=sorted({ref.client_id for ref in refs})
            ),
            expectations.ExpectColumnPairValuesToBeEqual(
                column_A="catalog_partition", column_B="row_delivery"
            ),
            expectations.ExpectColumnPairValuesToBeEqual(
                column_A="upload_key_prefix", column_B="delivery_upload_prefix"
            ),
            expectations.ExpectColumnValuesToBeInSet(column="part", value_set=parts),
            expectations.ExpectColumnValuesToBeInSet(
                column="industry", value_set=sorted(settings.industries)
            ),
            expectations.ExpectColumnValuesToBeInSet(
                column="modality", value_set=sorted(settings.modalities)
            ),
            expectations.ExpectColumnValuesToBeInSet(column="license", value_set=["publishable", "private"]),
        ]

    return build


def rows_with_their_partition(catalog: Catalog, refs: list[DeliveryRef]) -> pd.DataFrame:
    """The run's raw_items rows, each with the partition it was read from and its expected upload prefix."""
    frames = []
    for ref in refs:
        rows = catalog.read_partition("raw_items", ref.partition_key, missing_ok=True)
        frames.append(rows.assign(catalog_partition=ref.partition_key))
    rows = pd.concat(frames, ignore_index=True)
    prefix = UPLOADS + rows.client_id + "/" + rows.delivery_id + "/items/"
    return rows.assign(
        row_delivery=rows.client_id + "/" + rows.delivery_id,
        delivery_upload_prefix=prefix,
        upload_key_prefix=[
            key[: len(expected)] for key, expected in zip(rows.upload_key, prefix, strict=True)
        ],
    )


def check_metadata(outcome: SuiteOutcome) -> dict:
    """The suite's evidence: each failed expectation with its column, observed value and a sample."""
    return {
        "suite": outcome.suite,
        "evaluated_rows": outcome.evaluated_rows,
        "failed_expectations": failed_expectations_table(outcome.failures),
    }


def failed_expectations_table(failures) -> dg.TableMetadataValue:
    return table(
        [
            {
                "expectation": failure.expectation,
                "column": failure.column,
                "observed": _observed(failure.observed),
                "unexpected_count": failure.unexpected_count,
                "sample": ", ".join(_observed(value) or "null" for value in failure.sample_unexpected),
            }
            for failure in failures
        ],
        {
            "expectation": "string",
            "column": "string",
            "observed": "string",
            "unexpected_count": "int",
            "sample": "string",
        },
    )


def _observed(value) -> str | None:
    if isinstance(value, float):
        return f"{value:.3f}"
    return None if value is None else str(value)[:120]


def raw_items_catalog_rows_valid(context: dg.AssetCheckExecutionContext, catalog: CatalogResource):
    refs = deliveries_of(context)
    rows = rows_with_their_partition(catalog.open(), refs)
    outcome = validate_dataframe(rows, "raw_items", raw_items_expectations(refs))
    return dg.AssetCheckResult(
        passed=outcome.success,
        metadata=check_metadata(outcome),
        description=f"{outcome.evaluated_rows} rows valid"
        if outcome.success
        else f"{len(outcome.failures)} expectations failed: "
        + ", ".join(f"{f.expectation}({f.column})" for f in outcome.failures),
    )


# One validation covers every delivery of a run (a run may take in a range of deliveries); a
# failure blocks that run's cleaning, and the metadata names the failing rows' values.
raw_items_catalog_rows_valid = dg.asset_check(
    asset=raw_items,
    blocking=True,
    description="GX suite over the catalog rows of the run's deliveries: ids, sha256, sizes, vocabularies.",
)(raw_items_catalog_rows_valid)
