"""Feature stage: export the dbt ML marts, `feast apply`, materialize, and read features back.

The Feast repo in ``features/`` stays declarative; everything that acts on it lives here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from recops.constants import FEATURE_SERVICE, ITEM_COL, TIMESTAMP_COL, USER_COL
from recops.settings import Settings
from recops.warehouse import Warehouse

ML_MARTS = ("ml_user_features", "ml_item_features", "ml_user_item_features")
FEATURE_VIEWS = ("user_features", "item_features", "user_item_features")


class FeatureApplyResult(BaseModel):
    """What ``apply_features`` registered and how many rows each offline source holds."""

    entities: list[str]
    feature_views: list[str]
    feature_services: list[str]
    source_rows: dict[str, int]


def _cast_expr(column: str) -> str:
    if column in (USER_COL, ITEM_COL):
        return f"cast({column} as varchar) as {column}"
    if column == TIMESTAMP_COL or column.endswith("_at"):
        return f"cast({column} as timestamp) as {column}"
    if column.startswith("count_"):
        return f"cast(coalesce({column}, 0) as bigint) as {column}"
    return f"cast({column} as double) as {column}"


def export_feature_tables(settings: Settings) -> dict[str, int]:
    """Write the ML marts as Parquet for Feast's file offline store (embedded profile only).

    Columns are cast to the feature views' declared types. Returns the row count per table.
    On the production profile Feast reads the PostgreSQL marts directly and this only counts rows.
    """
    counts: dict[str, int] = {}
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        for table in ML_MARTS:
            if settings.profile == "production":
                counts[table] = int(wh.scalar(f"select count(*) from public.{table}"))
                continue
            cols = wh.query_df(f"select * from main.{table} limit 0").columns
            settings.feature_data_dir.mkdir(parents=True, exist_ok=True)
            out = settings.feature_data_dir / f"{table}.parquet"
            select = ", ".join(_cast_expr(c) for c in cols)
            wh.execute(f"copy (select {select} from main.{table}) to '{out}' (format parquet)")
            counts[table] = int(wh.scalar(f"select count(*) from main.{table}"))
    return counts


def get_store(settings: Settings):  # -> feast.FeatureStore (feast imported lazily)
    """A FeatureStore on the active profile's ``feature_store*.yaml``."""
    from feast import FeatureStore

    settings.export_tool_env()
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    return FeatureStore(
        repo_path=str(settings.feature_repo_path), fs_yaml_file=settings.feature_store_yaml
    )


def apply_features(settings: Settings) -> FeatureApplyResult:
    """``feast apply`` of the declarative repo in ``features/`` (idempotent).

    Runs Feast's own CLI in a child process: Feast imports the repo's modules relative to the
    working directory, which an Airflow worker must not change for itself.
    """
    env = {**os.environ, **settings.tool_env()}
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    feast_cli = Path(sys.executable).with_name("feast")
    proc = subprocess.run(
        [str(feast_cli), "apply"],
        cwd=settings.feature_repo_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"feast apply failed in {settings.feature_repo_path}:\n{proc.stdout}\n{proc.stderr}"
        )
    store = get_store(settings)
    return FeatureApplyResult(
        entities=sorted(e.name for e in store.list_entities()),
        feature_views=sorted(v.name for v in store.list_feature_views()),
        feature_services=sorted(s.name for s in store.list_feature_services()),
        source_rows=_source_rows(settings),
    )


def _source_rows(settings: Settings) -> dict[str, int]:
    if settings.profile == "production":
        return {}
    return {
        table: int(
            pd.read_parquet(
                settings.feature_data_dir / f"{table}.parquet", columns=[TIMESTAMP_COL]
            ).shape[0]
        )
        for table in ML_MARTS
        if (settings.feature_data_dir / f"{table}.parquet").exists()
    }


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def materialize_interval(settings: Settings, start: datetime, end: datetime) -> dict[str, str]:
    """Load the newest feature row of each entity with a timestamp in ``[start, end]`` into the
    online store; idempotent on rerun and on backfill.

    Rerunning an interval writes the same values. A backfill (``end`` earlier than what a view
    has already been materialized to, per the registry's materialization intervals) would make
    Feast overwrite newer online values with older ones (the SQLite store upserts blindly), so
    it is widened to end where the view's materialization already ends: the online store keeps
    the newest values it ever published and gains any entity the earlier interval adds.
    Nothing later than the newest interval already published is read.
    """
    if end <= start:
        raise ValueError(f"materialize interval is empty: start={start} end={end}")
    start, end = _utc(start), _utc(end)
    store = get_store(settings)
    ends: dict[datetime, list[str]] = {}
    for name in FEATURE_VIEWS:
        published = store.get_feature_view(name).most_recent_end_time
        view_end = max(end, _utc(published)) if published is not None else end
        ends.setdefault(view_end, []).append(name)
    for view_end, views in sorted(ends.items()):
        store.materialize(start_date=start, end_date=view_end, feature_views=views)
    newest = max(ends)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        **({"widened_to": newest.isoformat()} if newest > end else {}),
    }


def service_views(
    store, service_name: str = FEATURE_SERVICE
) -> list[tuple[str, list[str], list[str]]]:
    """(view name, join keys, feature names) of every feature view the service reads."""
    service = store.get_feature_service(service_name)
    out = []
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        keys = [projection.join_key_map.get(c.name, c.name) for c in view.entity_columns]
        out.append((projection.name_to_use(), keys, [f.name for f in projection.features]))
    return out


def historical_features(settings: Settings, entity_df: pd.DataFrame, store=None) -> pd.DataFrame:
    """Point-in-time correct features of ``ranker_v1`` for (user_id, item_id, event_timestamp) rows.

    The result has exactly the input's rows, in order, plus one column per feature
    (``<view>__<feature>``). Each feature view of the service is queried on its *own* distinct
    (join keys, event_timestamp) rows and merged back on them: Feast's file (Dask) offline store
    drops entity rows that share one view's join keys and timestamp (feast-dev/feast#6787), so
    one call with (user, item, ts) rows would lose most of them; per view the rows are distinct
    by construction, and the user and item views see a few thousand rows instead of every pair.
    An entity row whose only feature rows lie outside ``[ts - ttl, ts]`` also comes back missing
    from that store (not as nulls): the left merge turns it into nulls, as the other stores do.
    """
    keys = [USER_COL, ITEM_COL, TIMESTAMP_COL]
    missing = [c for c in keys if c not in entity_df.columns]
    if missing:
        raise ValueError(f"entity_df lacks columns {missing}")
    store = store or get_store(settings)
    out = entity_df.copy()
    out[TIMESTAMP_COL] = pd.to_datetime(out[TIMESTAMP_COL], utc=True)
    for view, join_keys, features in service_views(store):
        on = [*join_keys, TIMESTAMP_COL]
        unique = out[on].drop_duplicates().reset_index(drop=True)
        feats = store.get_historical_features(
            entity_df=unique, features=[f"{view}:{f}" for f in features], full_feature_names=True
        ).to_df()
        feats[TIMESTAMP_COL] = pd.to_datetime(feats[TIMESTAMP_COL], utc=True)
        columns = [f"{view}__{f}" for f in features]
        out = out.merge(feats[on + columns], on=on, how="left", validate="many_to_one")
    out[TIMESTAMP_COL] = out[TIMESTAMP_COL].dt.tz_convert(None)
    return out


def online_features(store, user_id: str, item_ids: list[str]) -> pd.DataFrame:
    """Online ``ranker_v1`` features for one user and candidate items (one row per item)."""
    service = store.get_feature_service(FEATURE_SERVICE)
    rows = [{USER_COL: user_id, ITEM_COL: item} for item in item_ids]
    resp = store.get_online_features(features=service, entity_rows=rows, full_feature_names=True)
    return pd.DataFrame(resp.to_dict())


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns Feast added (``<view>__<feature>``)."""
    return [c for c in frame.columns if "__" in c]


def feature_repo_path(settings: Settings) -> Path:
    return settings.feature_repo_path
