"""How evidence reads in the Dagster UI: tables with a schema, store paths, rounded scores.

The UI renders a `MetadataValue.table` as a table and a path as a copyable address, where JSON is a
pop-up to open; a score to three places is what an operator compares with a threshold.
"""

from __future__ import annotations

import dagster as dg

SCORE_PLACES = 3


def table(rows: list[dict], columns: dict[str, str]) -> dg.TableMetadataValue:
    """`rows` as a table of `columns` (name -> 'string', 'int', 'float' or 'bool'), in that order."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({name: _cell(row.get(name)) for name in columns}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns.items()]),
    )


def _cell(value):
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else round(value, SCORE_PLACES)
    return str(value)


def score(value: float | None) -> dg.MetadataValue:
    """A score to three places (Dagster plots numeric metadata over a partitioned asset's runs)."""
    return (
        dg.MetadataValue.float(round(float(value), SCORE_PLACES))
        if value is not None
        else dg.MetadataValue.text("not measured")
    )


def stored(store, key: str) -> dg.MetadataValue:
    """A store key as the address its readers use (`s3://bucket/key` or a local path)."""
    return dg.MetadataValue.path(store.url(key))
