"""The same dbt project on PostgreSQL 15: the same raw fixture gives the same marts as DuckDB.

Needs the server of Settings.postgres_host/port (127.0.0.1:5432, user postgres, trust auth).
It creates a throw-away database `recops_test_<random>` and drops it afterwards. When the server
is unreachable the test fails if the CI env var is set, and is skipped otherwise.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from recops.core.dbt import MART_TABLES, mart_row_counts

pytestmark = [pytest.mark.postgres, pytest.mark.integration]
ONLINE_TABLES = ("fct_served_items", "fct_feedback", "online_metrics_daily")


def _normalised(df: pd.DataFrame) -> pd.DataFrame:
    """Sort rows, round floats and render as text so both engines compare cell by cell."""
    df = df.copy()
    for col in df.columns:
        if df[col].map(lambda v: isinstance(v, date)).any():  # psycopg: date objects; DuckDB: datetime64
            df[col] = pd.to_datetime(df[col])
        if pd.api.types.is_float_dtype(df[col]):
            df[col] = df[col].round(9)
        elif pd.api.types.is_datetime64_any_dtype(df[col]):
            df[col] = df[col].dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    df = df.astype(object).where(df.notna(), None).astype(str)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def test_postgres_marts_equal_duckdb_marts(
    postgres_admin, postgres_settings, duckdb_build, raw_fixture
) -> None:
    result = raw_fixture.build(postgres_settings)
    assert result.success and result.target == "postgres"
    assert result.status_counts == duckdb_build.result.status_counts

    pg_counts = mart_row_counts(postgres_settings)
    assert pg_counts == mart_row_counts(duckdb_build.settings)
    assert set(pg_counts) == set(MART_TABLES)
    assert all(n for table, n in pg_counts.items() if table not in ONLINE_TABLES)  # the next test's

    pg = raw_fixture.built(postgres_settings, result)
    for table in MART_TABLES:
        got = pg.query(f"select * from public.{table}")
        want = duckdb_build.query(f"select * from main.{table}")
        assert list(got.columns) == list(want.columns), table
        pd.testing.assert_frame_equal(_normalised(got), _normalised(want), obj=table)


def test_postgres_online_marts_equal_duckdb_online_marts(
    postgres_admin, postgres_settings, online_build, raw_fixture
) -> None:
    """Served lists joined with feedback (interval arithmetic, distinct counts) agree too."""
    result = raw_fixture.build(postgres_settings, online=True)
    assert result.success
    pg = raw_fixture.built(postgres_settings, result)
    for table in ONLINE_TABLES:
        got = pg.query(f"select * from public.{table}")
        want = online_build.query(f"select * from main.{table}")
        assert len(want) > 0, table
        pd.testing.assert_frame_equal(_normalised(got), _normalised(want), obj=table)
