"""The warehouse: DuckDB on the embedded profile, PostgreSQL on the production profile.

One small interface (``query_df``, ``execute``, ``append_df``) so ingestion, quality and training
read and write the same tables whichever profile is active.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pandas as pd

from recops.core.constants import RAW_SCHEMA
from recops.core.settings import Settings

RAW_DDL = f"""
create schema if not exists {RAW_SCHEMA};
create table if not exists {RAW_SCHEMA}.batches (
    batch_id varchar primary key, source varchar not null, files varchar not null,
    rows_in bigint not null, rows_loaded bigint not null, rows_quarantined bigint not null,
    quarantine_reasons varchar not null, status varchar not null, status_reason varchar,
    ingested_at timestamp not null
);
create table if not exists {RAW_SCHEMA}.events (
    batch_id varchar not null, ingested_at timestamp not null, source varchar not null,
    source_file varchar not null, source_row bigint not null,
    user_id varchar, item_id varchar not null, event_type varchar not null,
    event_at timestamp not null, session_id varchar, quantity double precision,
    price_amount double precision, order_id varchar, country varchar
);
create table if not exists {RAW_SCHEMA}.items (
    batch_id varchar not null, ingested_at timestamp not null, source varchar not null,
    source_file varchar not null, source_row bigint not null,
    item_id varchar not null, title varchar, description varchar, category varchar,
    brand varchar, price_amount double precision
);
create table if not exists {RAW_SCHEMA}.quarantine (
    batch_id varchar not null, source_file varchar not null, source_row bigint,
    field varchar, reason varchar not null, raw_record varchar, quarantined_at timestamp not null
);
create table if not exists {RAW_SCHEMA}.served (
    batch_id varchar not null, ingested_at timestamp not null, source varchar not null,
    source_file varchar not null, source_row bigint not null,
    request_id varchar not null, served_at timestamp not null, user_key varchar,
    model_name varchar, model_version varchar not null, variant varchar not null,
    kind varchar not null, context_item_id varchar, k integer,
    item_id varchar not null, served_rank integer not null, score double precision,
    retrievers varchar
);
alter table {RAW_SCHEMA}.batches add column if not exists gate_status varchar;
alter table {RAW_SCHEMA}.batches add column if not exists gated_at timestamp;
alter table {RAW_SCHEMA}.batches add column if not exists gated_run_id varchar;
create table if not exists {RAW_SCHEMA}.batch_releases (
    batch_id varchar not null, released_at timestamp not null, released_by varchar not null,
    reason varchar not null, origin varchar not null, previous_status varchar not null,
    previous_reason varchar
);
alter table {RAW_SCHEMA}.events add column if not exists request_id varchar;
alter table {RAW_SCHEMA}.events add column if not exists served_rank integer;
create table if not exists {RAW_SCHEMA}.erasures (
    erasure_id varchar primary key, requested_by varchar not null, erased_at timestamp not null,
    row_counts varchar not null
);
create table if not exists {RAW_SCHEMA}.suppressed_users (
    user_key varchar not null, suppressed_before timestamp not null
);
"""


class Warehouse:
    """A connection to the active profile's warehouse. Use as a context manager."""

    def __init__(self, settings: Settings, *, read_only: bool = False) -> None:
        self.settings = settings
        self.read_only = read_only
        self.kind = "postgres" if settings.profile == "production" else "duckdb"
        self._con: Any = None

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Warehouse:
        if self.kind == "duckdb":
            import duckdb

            path = self.settings.warehouse_path
            if not self.read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.exists():
                raise FileNotFoundError(f"{path}: no warehouse yet (load data first: recops ingest ...)")
            self._con = duckdb.connect(str(path), read_only=self.read_only)
            # pattern-checked by Settings; DuckDB spills to disk beyond it
            self._con.execute(f"set memory_limit = '{self.settings.duckdb_memory_limit}'")
        else:
            import psycopg2

            self._con = psycopg2.connect(self.settings.postgres_dsn)
            self._con.autocommit = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    # -- statements -----------------------------------------------------------------------
    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> None:
        """Run one or more statements (no result)."""
        if self.kind == "duckdb":
            self._con.execute(sql, params) if params else self._con.execute(sql)
        else:
            with self._con.cursor() as cur:
                cur.execute(sql.replace("?", "%s") if params else sql, params)

    def query_df(
        self,
        sql: str,
        params: list[Any] | tuple[Any, ...] | None = None,
        *,
        shared_strings: bool = False,
    ) -> pd.DataFrame:
        """Run a query and return its rows as a DataFrame.

        ``shared_strings``: equal strings of a column are one Python object (same values and
        dtypes otherwise). Text columns then cost a pointer per row instead of a string each;
        for reads of many rows (the raw-batch gate, the learners' history of interactions).
        """
        if self.kind == "duckdb":
            if shared_strings:
                return _arrow_frame(self._con.sql(sql, params=params or None).to_arrow_table())
            rel = self._con.execute(sql, params) if params else self._con.execute(sql)
            return rel.df()
        with self._con.cursor() as cur:
            cur.execute(sql.replace("?", "%s") if params else sql, params)
            cols = [c.name for c in cur.description]
            frame = pd.DataFrame(cur.fetchall(), columns=cols)
        return _share_strings(frame) if shared_strings else frame

    def scalar(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> Any:
        df = self.query_df(sql, params)
        return None if df.empty else df.iat[0, 0]

    def table_exists(self, schema: str, table: str) -> bool:
        sql = "select count(*) from information_schema.tables where table_schema = ? and table_name = ?"
        return bool(self.scalar(sql, [schema, table]))

    def append_df(self, table: str, df: pd.DataFrame) -> int:
        """Append ``df`` to an existing ``schema.table`` (columns by name). Returns rows written."""
        if df.empty:
            return 0
        cols = ", ".join(df.columns)
        if self.kind == "duckdb":
            self._con.register("_recops_append", df)
            try:
                self._con.execute(f"insert into {table} ({cols}) select {cols} from _recops_append")
            finally:
                self._con.unregister("_recops_append")
            return len(df)
        import io

        buf = io.StringIO()
        df.to_csv(buf, index=False, header=False, na_rep="\\N")
        buf.seek(0)
        with self._con.cursor() as cur:
            cur.copy_expert(
                f"copy {table} ({cols}) from stdin with (format csv, null '\\N')", buf
            )
        return len(df)

    def ensure_raw_schema(self) -> None:
        """Create the raw schema and its append-only tables if they are missing."""
        for stmt in RAW_DDL.split(";"):
            if stmt.strip():
                self.execute(stmt)

    @property
    def location(self) -> str:
        """Where this warehouse lives, for messages (never a password)."""
        if self.kind == "duckdb":
            return str(self.settings.warehouse_path)
        s = self.settings
        return f"PostgreSQL {s.postgres_host}:{s.postgres_port}/{s.postgres_db}"

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing block: a failure inside loads nothing.

        A failure of the database itself (a full disk, a file size limit, a server restarted or
        gone) is raised as :class:`WarehouseWriteError` naming the warehouse; the transaction is
        rolled back (or never committed), so none of the block's writes remain.
        """
        if self.kind == "duckdb":
            import duckdb

            driver_error: type[Exception] = duckdb.Error
            begin, commit, rollback = (
                lambda: self._con.execute("begin transaction"),
                lambda: self._con.execute("commit"),
                lambda: self._con.execute("rollback"),
            )
        else:
            import psycopg2

            driver_error = psycopg2.Error

            def begin() -> None:
                self._con.autocommit = False

            commit, rollback = self._con.commit, self._con.rollback
        try:
            begin()
            try:
                yield
            except BaseException:
                with suppress(Exception):  # a dead connection or an invalidated database cannot roll back
                    rollback()
                raise
            commit()
        except driver_error as exc:
            raise WarehouseWriteError(f"{self.location}: the write failed and was rolled back: {exc}") from exc
        finally:
            if self.kind != "duckdb":
                with suppress(Exception):
                    self._con.autocommit = True


class WarehouseWriteError(RuntimeError):
    """The warehouse refused or lost a write (disk full, server gone); nothing of it was kept."""


def create_postgres_database(settings: Settings, name: str | None = None) -> None:
    """Create the production database (``settings.postgres_db`` by default) if missing."""
    import psycopg2

    name = name or settings.postgres_db
    admin = settings.model_copy(update={"postgres_db": "postgres"})
    con = psycopg2.connect(admin.postgres_dsn)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{name}"')
    finally:
        con.close()


def drop_postgres_database(settings: Settings, name: str) -> None:
    """Drop database ``name`` (terminating its connections) if it exists."""
    import psycopg2

    admin = settings.model_copy(update={"postgres_db": "postgres"})
    con = psycopg2.connect(admin.postgres_dsn)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
    finally:
        con.close()


def _arrow_frame(table: Any) -> pd.DataFrame:
    """An Arrow table as DuckDB's ``df()`` gives it, with each column's equal strings shared
    (Arrow's ``deduplicate_objects``): an integer column with NULLs is a nullable ``Int``, a
    decimal a float, a date a timestamp. Other than text, numbers, booleans and times: TypeError."""
    import pyarrow as pa

    plain = (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_boolean,
        pa.types.is_timestamp,
    )
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
        elif pa.types.is_date(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.timestamp("us")))
        elif not any(is_type(field.type) for is_type in plain):
            raise TypeError(f"column {field.name}: {field.type} is not read with shared strings")
    frame = table.to_pandas(deduplicate_objects=True)
    for i, field in enumerate(table.schema):
        if pa.types.is_integer(field.type) and table.column(i).null_count:
            dtype = pd.api.types.pandas_dtype(f"Int{field.type.bit_width}")
            frame[field.name] = table.column(i).to_pandas(types_mapper={field.type: dtype}.get)
    return frame


def _share_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with each text column's equal values made one object (NULLs stay None)."""
    import numpy as np

    for column in frame.select_dtypes(include="object").columns:
        if pd.api.types.infer_dtype(frame[column], skipna=True) != "string":
            continue
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        values = np.asarray(uniques, dtype=object)[codes]
        values[codes < 0] = None
        frame[column] = values
    return frame
