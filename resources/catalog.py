"""The catalog: DuckDB over Parquet tables kept in the object store.

DuckDB is single-writer across processes, and many runs write the catalog at once, so there is
no shared `.duckdb` file: each run writes its own partition file of a table (schema enforced by
DuckDB from `sql/catalog_tables.sql`), and readers query every partition loaded into an
in-memory DuckDB. A query about one client (a `client_id` parameter) sees only that client's files
of the tables kept per delivery: what it reads grows with the client's history, not the base's, and
no other client's rows are ever read on its behalf.

Readers never see a torn file: each partition file is read whole, in one GET of one object version,
while writers replace it whole (one PUT). Streaming a file in ranges (DuckDB over s3fs) mixed an old
footer with new data, or failed with `FileExpired`, when a run replaced the file mid-read. Rows that
must agree across files name the version they come from (a verdict and the consensus it judged carry
the export's ETag; every intake row its manifest's), and the readers that combine them check it.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg

from annobase.keys import require_id
from annobase.object_store import ObjectStore
from resources.object_store import ObjectStoreResource

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
CATALOG_PREFIX = "catalog/"
# Partition files fetched at once when a table is loaded into memory (the S3 client's pool holds 32)
READ_THREADS = 16
# Tables kept under catalog/{table}/{client_id}/ (one file per delivery, or per batch for `exports`), so
# a client's questions read only its own files; the others are kept per batch, per release or whole.
CLIENT_TABLES = frozenset(
    {
        "deliveries",
        "raw_items",
        "rejections",
        "clean_items",
        "text_lsh",
        "batches",
        "batch_tasks",
        "honeypot_references",
        "exports",
    }
)


@cache
def read_sql(name: str) -> str:
    """A query from `sql/`, by file name without the extension."""
    return (SQL_DIR / f"{name}.sql").read_text()


@cache
def catalog_table_names() -> tuple[str, ...]:
    return tuple(re.findall(r"CREATE TABLE (\w+)", read_sql("catalog_tables")))


@cache
def table_ddl(table: str) -> str:
    """The one CREATE TABLE statement of `sql/catalog_tables.sql` for `table`: a write creates only
    the table it writes (creating all of them took longer than writing the file)."""
    [statement] = re.findall(rf"CREATE TABLE {table} \(.*?\n\);", read_sql("catalog_tables"), re.S)
    return statement


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


@cache
def _view_definitions() -> dict[str, str]:
    return dict(re.findall(r"CREATE VIEW (\w+) AS(.*?);", read_sql("catalog_views"), re.S))


def tables_used(queries: Sequence[str]) -> set[str]:
    """The catalog tables the named queries may read, directly or through the catalog's views: the
    table names their SQL mentions outside comments."""
    views = _view_definitions()
    words = set(re.findall(r"\w+", " ".join(_without_comments(read_sql(name)) for name in queries)))
    pending = words & views.keys()
    while pending:
        mentioned = set(re.findall(r"\w+", _without_comments(views[pending.pop()])))
        pending |= (mentioned & views.keys()) - words
        words |= mentioned
    return words & set(catalog_table_names())


def table_partition_key(table: str, partition: str) -> str:
    """`catalog/{table}/{client_id}/{delivery_id}.parquet` for partition `client_id/delivery_id`."""
    return f"{CATALOG_PREFIX}{table}/{partition}.parquet"


def _arrow_rows(rows: Sequence[dict[str, Any]]):
    """Rows as one Arrow table; rows may differ in keys (a missing one is null)."""
    import pyarrow as pa

    columns = dict.fromkeys(column for row in rows for column in row)
    return pa.table({column: [row.get(column) for row in rows] for column in columns})


_typing = threading.local()


def _typing_connection(table: str):
    """This thread's in-memory DuckDB, where `table` exists as its DDL declares: rows are typed and
    checked there before a write. Opening a database per write cost 12 of its 18 ms."""
    import duckdb

    if not hasattr(_typing, "connection"):
        _typing.connection, _typing.tables = duckdb.connect(), set()
    if table not in _typing.tables:
        _typing.connection.execute(table_ddl(table))
        _typing.tables.add(table)
    return _typing.connection


class Catalog:
    """Writes and queries the catalog tables of one object store."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def write_partition(self, table: str, partition: str, rows: Sequence[dict[str, Any]]) -> str:
        """Replace one partition of `table` with `rows`, typed by the table's DDL; returns its key."""
        import pyarrow.parquet as pq

        if table not in catalog_table_names():
            raise ValueError(f"unknown catalog table {table!r}")
        con = _typing_connection(table)
        con.execute(f"DELETE FROM {table}")
        if rows:
            con.register("incoming", _arrow_rows(rows))
            try:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
            finally:
                con.unregister("incoming")
        arrow_table = con.sql(f"SELECT * FROM {table}").to_arrow_table()
        buffer = io.BytesIO()
        pq.write_table(arrow_table, buffer, compression="zstd")
        key = table_partition_key(table, partition)
        self.store.put(key, buffer.getvalue())
        return key

    def read_partition(self, table: str, partition: str, missing_ok: bool = False):
        """One partition of `table` as a pandas DataFrame; with `missing_ok`, a missing one reads as empty."""
        import pyarrow.parquet as pq

        try:
            data = self.store.get(table_partition_key(table, partition))
        except KeyError:
            if not missing_ok:
                raise
            return _typing_connection(table).execute(f"SELECT * FROM {table} WHERE false").df()
        return pq.read_table(io.BytesIO(data)).to_pandas()

    def connect(self, client_id: str | None = None, tables: Iterable[str] | None = None):
        """An in-memory DuckDB holding every partition of each of `tables` (all when None; with
        `client_id`, only that client's files of the tables kept per delivery), each file read whole,
        plus the views of `sql/catalog_views.sql`. Tables left out are empty."""
        import duckdb

        con = duckdb.connect()
        con.execute(read_sql("catalog_tables"))
        for table in catalog_table_names() if tables is None else tables:
            loaded = self._read_table(self._table_prefix(table, client_id))  # noqa: F841
            if loaded is not None:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM loaded")
        con.execute(read_sql("catalog_views"))
        return con

    def query(self, name: str, **params: Any):
        """Run the named query from `sql/` and return a pandas DataFrame."""
        with self.connect(client_id=params.get("client_id"), tables=tables_used([name])) as con:
            return con.execute(read_sql(name), params or None).df()

    @contextmanager
    def client_snapshot(self, client_id: str, queries: Sequence[str]) -> Iterator[CatalogSnapshot]:
        """The tables `queries` read, for one client, loaded once, so that a run asking the same
        questions for many deliveries of the client reads each file once instead of once per delivery."""
        with self.connect(client_id=client_id, tables=tables_used(queries)) as con:
            yield CatalogSnapshot(con)

    def _table_prefix(self, table: str, client_id: str | None) -> str:
        prefix = f"{CATALOG_PREFIX}{table}/"
        if client_id is not None and table in CLIENT_TABLES:
            prefix += require_id(client_id, "client_id") + "/"
        return prefix

    def _read_table(self, prefix: str):
        """Every Parquet file under `prefix` as one Arrow table (columns missing from older files
        are null), or None when there is none."""
        import pyarrow as pa

        keys = [obj.key for obj in self.store.list(prefix) if obj.key.endswith(".parquet")]
        if not keys:
            return None
        with ThreadPoolExecutor(READ_THREADS) as pool:
            parts = [part for part in pool.map(self._read_file, keys) if part is not None]
        return pa.concat_tables(parts, promote_options="default") if parts else None

    def _read_file(self, key: str):
        """One partition file, read whole; None if it was removed after it was listed."""
        import pyarrow.parquet as pq

        try:
            return pq.read_table(io.BytesIO(self.store.get(key)))
        except KeyError:
            return None


class CatalogSnapshot:
    """Named queries from `sql/` over tables loaded by `Catalog.client_snapshot`."""

    def __init__(self, con):
        self._con = con

    def query(self, name: str, **params: Any):
        return self._con.execute(read_sql(name), params or None).df()

    def add_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Rows written to the catalog after the snapshot was taken, visible to its later queries."""
        if rows:
            added = _arrow_rows(rows)  # noqa: F841
            self._con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM added")

    def query_with(self, name: str, frames: dict[str, Any], **params: Any):
        """A named query that also reads the given DataFrames, each under its name, for this query only."""
        for frame_name, frame in frames.items():
            self._con.register(frame_name, frame)
        try:
            return self.query(name, **params)
        finally:
            for frame_name in frames:
                self._con.unregister(frame_name)


class CatalogResource(dg.ConfigurableResource):
    """The catalog of every item, delivery and rejection, stored next to the data it describes."""

    object_store: ObjectStoreResource

    def open(self) -> Catalog:
        return Catalog(self.object_store.open())
