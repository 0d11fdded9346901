"""Quality checks: Great Expectations suites run as Dagster asset checks."""

import dagster as dg

from quality_checks.qa_gate import qa_gate, qa_tables_valid
from quality_checks.raw_items_checks import raw_items_catalog_rows_valid

defs = dg.Definitions(asset_checks=[raw_items_catalog_rows_valid, qa_gate, qa_tables_valid])
