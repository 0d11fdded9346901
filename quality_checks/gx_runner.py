"""Running a Great Expectations 1.x suite on a DataFrame, the way every asset check here does.

Each validation gets its own ephemeral context (GX issue #12209: concurrent validations on shared
ephemeral contexts fail with datasource errors), and GX is imported only here, inside the call,
because its import costs seconds in every process that loads the code location.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    observed: object
    unexpected_count: int | None
    sample_unexpected: list


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    success: bool
    evaluated_rows: int
    expectations: list[ExpectationOutcome]
    raw: dict

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.expectations if not outcome.success]


def validate_dataframe(
    dataframe, suite_name: str, build_expectations: Callable[[object], Sequence]
) -> SuiteOutcome:
    """Validate `dataframe` against the expectations `build_expectations(gx.expectations)` returns."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )
    batch_definition = (
        context.data_sources.add_pandas(suite_name)
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe(suite_name)
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    for expectation in build_expectations(gx.expectations):
        suite.add_expectation(expectation)
    result = batch_definition.get_batch(batch_parameters={"dataframe": dataframe}).validate(suite)
    outcomes = [
        ExpectationOutcome(
            expectation=item.expectation_config.type,
            column=item.expectation_config.kwargs.get("column"),
            success=bool(item.success),
            observed=item.result.get("observed_value"),
            unexpected_count=item.result.get("unexpected_count"),
            sample_unexpected=list(item.result.get("partial_unexpected_list") or [])[:5],
        )
        for item in result.results
    ]
    return SuiteOutcome(suite_name, bool(result.success), len(dataframe), outcomes, result.to_json_dict())
