"""Erasing one customer from the warehouse (``recops forget``): raw events, quarantined records
that name them, every table with a ``user_id`` column, a suppression row, the audit row, and the
storage compaction that makes deleted values unrecoverable. Orchestrated by
:mod:`recops.app.forget`."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from recops.core.constants import AUDIT_ERASURES, RAW_EVENTS, RAW_QUARANTINE, RAW_SERVED, USER_COL
from recops.core.privacy import ErasureError, record_mentions, user_field_keys, user_salt
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse

SUPPRESSED_USERS = "raw.suppressed_users"


def _clean_sql(column: str) -> str:
    """Staging's ``clean_text`` (the same expression on DuckDB and PostgreSQL)."""
    return f"nullif(trim(regexp_replace({column}, '\\s+', ' ', 'g')), '')"


def _user_tables(wh) -> list[str]:
    """Every base table with a ``user_id`` column, as ``schema.table`` (raw.events excluded)."""
    frame = wh.query_df(
        "select c.table_schema, c.table_name from information_schema.columns c "
        "join information_schema.tables t on t.table_schema = c.table_schema "
        "and t.table_name = c.table_name and t.table_catalog = c.table_catalog "
        "where lower(c.column_name) = ? and t.table_type = 'BASE TABLE' "
        "and c.table_schema not in ('information_schema', 'pg_catalog') "
        "order by 1, 2",
        [USER_COL],
    )
    names = [f"{s}.{t}" for s, t in frame.itertuples(index=False)]
    return [n for n in names if n != RAW_EVENTS]


def _delete_where(wh, table: str, where: str, params: list[Any]) -> int:
    count = int(wh.scalar(f"select count(*) from {table} where {where}", params))
    if count:
        wh.execute(f"delete from {table} where {where}", params)
    return count


def _erase_quarantine(wh, original: str) -> int:
    sql = f"select batch_id, source_file, source_row, raw_record from {RAW_QUARANTINE}"
    params: list[Any] = []
    if json.dumps(original, ensure_ascii=False)[1:-1] == original:
        # the id is stored verbatim in any record that holds it: a cheap superset first
        sql += " where strpos(raw_record, ?) > 0"
        params = [original]
    candidates = wh.query_df(sql, params or None)
    fields = user_field_keys()
    hits = candidates[[record_mentions(r, original, fields) for r in candidates["raw_record"]]]
    deleted = 0
    for batch_id, source_file, source_row, raw_record in hits.drop_duplicates().itertuples(
        index=False
    ):
        row_sql = (
            "batch_id = ? and source_file = ? and raw_record = ? and coalesce(source_row, -1) = ?"
        )
        row = -1 if pd.isna(source_row) else int(source_row)
        deleted += _delete_where(
            wh, RAW_QUARANTINE, row_sql, [batch_id, source_file, raw_record, row]
        )
    return deleted


_SALT_IN_VIEW = re.compile(r"md5\(\(*'((?:[^']|'')*)'(?:::\w+)?\s*\|\|")


def check_salt(settings: Settings, wh) -> None:
    """Refuse to erase with another salt than the one the warehouse was built with: the
    pseudonymised key would match nothing downstream of raw. dbt bakes the salt into the
    ``stg_raw__events`` view; no view yet (no dbt run) means nothing to compare."""
    if settings.profile == "production":
        sql = wh.scalar(
            "select definition from pg_views where viewname = 'stg_raw__events' "
            "and schemaname = 'public'"
        )
    else:
        sql = wh.scalar(
            "select sql from duckdb_views() where view_name = 'stg_raw__events' "
            "and schema_name = 'main'"
        )
    found = _SALT_IN_VIEW.search(sql or "")
    if found and found.group(1).replace("''", "'") != user_salt(settings):
        raise ErasureError(
            "RECOPS_USER_SALT differs from the salt the warehouse was built with: set the "
            "pipeline's salt and run forget again (nothing was erased)"
        )


def erase_warehouse(
    settings: Settings, original: str, key: str, erased_at: datetime
) -> dict[str, int]:
    """Delete the customer from raw, quarantine and every table with a ``user_id`` column, and
    add the suppression row, in one transaction. Returns rows deleted per table."""
    counts: dict[str, int] = {}
    with Warehouse(settings) as wh:
        check_salt(settings, wh)
        wh.ensure_raw_schema()
        with wh.transaction():
            counts[RAW_EVENTS] = _delete_where(
                wh, RAW_EVENTS, f"{_clean_sql(USER_COL)} = ?", [original]
            )
            counts[RAW_QUARANTINE] = _erase_quarantine(wh, original)
            counts[RAW_SERVED] = _delete_where(wh, RAW_SERVED, "user_key = ?", [key])
            for table in _user_tables(wh):
                counts[table] = _delete_where(wh, table, f"{USER_COL} in (?, ?)", [key, original])
            wh.append_df(
                SUPPRESSED_USERS,
                pd.DataFrame({"user_key": [key], "suppressed_before": [erased_at]}),
            )
    return counts


def record_erasure(settings: Settings, erasure: dict[str, Any]) -> None:
    """Append the audit row (no customer id in it) to ``raw.erasures``."""
    row = pd.DataFrame(
        {
            "erasure_id": [erasure["erasure_id"]],
            "requested_by": [erasure["requested_by"]],
            "erased_at": [erasure["erased_at"]],
            "row_counts": [json.dumps(erasure["row_counts"], sort_keys=True)],
        }
    )
    with Warehouse(settings) as wh:
        wh.ensure_raw_schema()
        wh.append_df(AUDIT_ERASURES, row)


def reclaim_storage(settings: Settings, tables: Iterable[str]) -> str:
    """Make deleted values unrecoverable from the database files (see the module docstring)."""
    if settings.profile == "production":
        with Warehouse(settings) as wh:
            for table in tables:
                wh.execute(f"vacuum {table}")
        return "postgres: vacuum"
    compact_duckdb(settings.warehouse_path)
    return "duckdb: rewritten into a fresh file"


def compact_duckdb(path: Path) -> None:
    """Copy a DuckDB database into a fresh file and swap it in (DuckDB leaves deleted rows in
    free blocks; a copy writes only live data)."""
    import duckdb

    path = Path(path)
    if not path.exists():
        return
    fresh = path.with_name(f".{path.stem}.compact{path.suffix}")
    fresh.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        source = con.execute("select current_database()").fetchone()[0]
        con.execute("attach '" + str(fresh).replace("'", "''") + "' as recops_compact")
        con.execute(f'copy from database "{source}" to recops_compact')
        con.execute("detach recops_compact")
    except BaseException:
        con.close()
        fresh.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(fresh, path)
    Path(f"{path}.wal").unlink(missing_ok=True)


