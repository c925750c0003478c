"""Reading rows with shared strings (DuckDB and PostgreSQL): same frame as the plain read, each
column's equal strings one object, NULLs kept, nullable integers as DuckDB gives them; the
learners' read of the interactions."""

from __future__ import annotations

import pandas as pd

from recops.core.marts import LEARNER_COLUMNS, interactions_and_items
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse

ROWS_SQL = """
    select 'b1' as batch_id, 'u' || (i % 3)::varchar as user_id,
           case when i % 2 = 0 then null else 'x' || (i % 2)::varchar end as note,
           cast(i as bigint) as n,
           case when i % 4 = 0 then null else cast(i as integer) end as rank,
           i * 0.5 as price
    from {source}
    order by i
"""


def test_shared_strings_read_equals_the_plain_read_with_one_object_per_value(wh_settings) -> None:
    with Warehouse(wh_settings) as wh:
        source = "range(12) r(i)" if wh.kind == "duckdb" else "generate_series(0, 11) r(i)"
        sql = ROWS_SQL.format(source=source)
        plain = wh.query_df(sql)
        shared = wh.query_df(sql, shared_strings=True)

    pd.testing.assert_frame_equal(shared, plain)
    assert shared["user_id"].tolist()[:4] == ["u0", "u1", "u2", "u0"]
    # the same value is the same object; the plain read makes a string per row
    assert shared.at[0, "user_id"] is shared.at[3, "user_id"]
    assert shared.at[0, "batch_id"] is shared.at[11, "batch_id"]
    assert shared["note"].isna().sum() == 6 and shared.at[0, "note"] is None
    assert shared.at[1, "note"] is shared.at[3, "note"]
    if wh.kind == "duckdb":  # an integer column with NULLs is nullable, as DuckDB's df() gives it
        assert str(shared["rank"].dtype) == "Int32" and shared["rank"].isna().sum() == 3
        assert shared["n"].dtype == "int64"


def test_learners_read_their_columns_of_the_interactions_with_shared_strings(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    with Warehouse(settings) as wh:
        wh.execute(
            """
            create table main.fct_interactions as
            select md5(i::varchar) as event_id, 'u' || (i % 2)::varchar as user_id,
                   'i' || (i % 3)::varchar as item_id, 'purchase' as event_type,
                   timestamp '2024-01-01' + to_days(i) as event_at, 's' || i::varchar as session_id,
                   1.0 as quantity, 2.5 as price_amount, 'o' || i::varchar as order_id,
                   'events' as source
            from range(6) r(i);
            create table main.dim_items as select 'i' || i::varchar as item_id, 'hat' as title
            from range(3) r(i);
            """
        )
    interactions, items = interactions_and_items(settings)
    assert tuple(interactions.columns) == LEARNER_COLUMNS
    assert interactions["user_id"].tolist() == ["u0", "u1", "u0", "u1", "u0", "u1"]
    assert interactions.at[0, "user_id"] is interactions.at[2, "user_id"]
    assert interactions["event_at"].iloc[5] == pd.Timestamp("2024-01-06")
    assert interactions["price_amount"].tolist() == [2.5] * 6
    assert items["item_id"].tolist() == ["i0", "i1", "i2"] and items.at[0, "title"] is items.at[2, "title"]
