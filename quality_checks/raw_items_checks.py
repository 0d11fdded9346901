"""Blocking check on `raw_items`: the catalog rows of a delivery are well formed before anything uses them."""

import warnings

import dagster as dg

from annobase.keys import DeliveryRef
from annobase.settings import load_settings
from assets.intake.raw_items import raw_items
from assets.partitions import deliveries_partitions
from quality_checks.gx_runner import SuiteOutcome, validate_dataframe
from resources import CatalogResource


def raw_items_expectations(ref: DeliveryRef):
    """The suite: identity, hashes, sizes and vocabularies of every raw_items row of one delivery."""
    settings = load_settings()
    parts = sorted({part for modality in settings.modalities.values() for part in modality.parts})

    def build(expectations):
        return [
            expectations.ExpectColumnValuesToNotBeNull(column="item_key"),
            expectations.ExpectCompoundColumnsToBeUnique(column_list=["item_key", "part"]),
            expectations.ExpectColumnValuesToMatchRegex(column="sha256", regex=r"^[0-9a-f]{64}$"),
            expectations.ExpectColumnValuesToBeBetween(column="bytes", min_value=1),
            expectations.ExpectColumnValuesToBeInSet(column="client_id", value_set=[ref.client_id]),
            expectations.ExpectColumnValuesToBeInSet(column="delivery_id", value_set=[ref.delivery_id]),
            expectations.ExpectColumnValuesToBeInSet(column="part", value_set=parts),
            expectations.ExpectColumnValuesToBeInSet(
                column="industry", value_set=sorted(settings.industries)
            ),
            expectations.ExpectColumnValuesToBeInSet(
                column="modality", value_set=sorted(settings.modalities)
            ),
            expectations.ExpectColumnValuesToBeInSet(column="license", value_set=["publishable", "private"]),
            expectations.ExpectColumnValuesToMatchRegex(
                column="upload_key", regex="^" + ref.upload_prefix.replace("-", r"\-") + "items/"
            ),
        ]

    return build


def check_metadata(outcome: SuiteOutcome) -> dict:
    return {
        "suite": outcome.suite,
        "evaluated_rows": outcome.evaluated_rows,
        "failed_expectations": dg.MetadataValue.json(
            [
                {
                    "expectation": failure.expectation,
                    "column": failure.column,
                    "unexpected_count": failure.unexpected_count,
                    "sample": [str(v) for v in failure.sample_unexpected],
                }
                for failure in outcome.failures
            ]
        ),
    }


def raw_items_catalog_rows_valid(context: dg.AssetCheckExecutionContext, catalog: CatalogResource):
    ref = DeliveryRef.from_partition_key(context.partition_key)
    rows = catalog.open().read_partition("raw_items", ref.partition_key)
    outcome = validate_dataframe(rows, "raw_items", raw_items_expectations(ref))
    return dg.AssetCheckResult(passed=outcome.success, metadata=check_metadata(outcome))


# A check per delivery partition is a preview feature in Dagster 1.13; it is what lets the check
# block exactly the delivery it failed on, so it is used knowingly and its warning silenced here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    raw_items_catalog_rows_valid = dg.asset_check(
        asset=raw_items,
        partitions_def=deliveries_partitions,
        blocking=True,
        description="GX suite over the delivery's catalog rows: ids, sha256, sizes, vocabularies.",
    )(raw_items_catalog_rows_valid)
