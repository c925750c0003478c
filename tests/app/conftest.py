"""Fixtures of the entry-point tests: scans for a customer's traces after ``recops forget``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest


def warehouse_mentions(settings, values: list[str], skip: set[str] = frozenset()) -> dict[str, int]:
    """Rows per ``schema.table`` (tables and views, every text column) holding one of ``values``
    exactly or as a whole token (``u1`` matches ``u1`` and ``["x", "u1"]``, not ``u10``)."""
    from recops.core.warehouse import Warehouse

    pattern = "(^|[^A-Za-z0-9_])(" + "|".join(re.escape(v) for v in values) + ")($|[^A-Za-z0-9_])"
    found: dict[str, int] = {}
    with Warehouse(settings, read_only=True) as wh:
        cols = wh.query_df(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type = 'VARCHAR' and table_schema not in ('information_schema', 'pg_catalog')"
        )
        for (schema, table), group in cols.groupby(["table_schema", "table_name"]):
            name = f"{schema}.{table}"
            if name in skip:
                continue
            where = " or ".join(f'regexp_matches("{c}", ?)' for c in group["column_name"])
            n = int(
                wh.scalar(
                    f'select count(*) from "{schema}"."{table}" where {where}',
                    [pattern] * len(group),
                )
            )
            if n:
                found[name] = n
    return found


def file_mentions(root: Path, key: str, original: str) -> dict[str, str]:
    """Files under ``root`` that still hold the user: Parquet (any text column equal to either id),
    joblib bundles (a retriever or the stats know the key), any other file (the key's bytes, or
    the original id as a whole token). DuckDB files are skipped: scanned through SQL."""
    import joblib

    token = re.compile(rb"(^|[^A-Za-z0-9_])" + re.escape(original.encode()) + rb"($|[^A-Za-z0-9_])")
    hits: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix in (".duckdb", ".wal"):
            continue
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            text = frame.select_dtypes(include=["object", "string"])
            if text.isin([key, original]).any().any():
                hits[str(path)] = "parquet rows"
        elif path.suffix == ".joblib":
            bundle = joblib.load(path)
            if hasattr(bundle, "is_known") and (
                bundle.is_known(key) or key in bundle.stats.user_index
            ):
                hits[str(path)] = "serving bundle knows the user"
        else:
            data = path.read_bytes()
            if key.encode() in data or token.search(data):
                hits[str(path)] = "bytes"
    return hits


@pytest.fixture(scope="session")
def traces() -> Callable:
    """``traces.warehouse(settings, values, skip)`` and ``traces.files(root, key, original)``."""
    from types import SimpleNamespace

    return SimpleNamespace(warehouse=warehouse_mentions, files=file_mentions)
