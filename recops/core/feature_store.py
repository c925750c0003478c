"""Feature-store access: export the dbt ML marts, `feast apply`, materialize, read features back.

The Feast repo in ``features/`` stays declarative; everything that acts on it lives here. The
``FeatureStore`` is built in-process from a ``RepoConfig`` made from the settings (no
``feature_store.yaml``, no environment); ``feast apply`` too loads the definitions with the
settings' values (Feast's CLI in a child process only for kinds of object it alone collects).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel

from recops.core.constants import FEATURE_SERVICE, ITEM_COL, TIMESTAMP_COL, USER_COL
from recops.core.feature_apply import apply_in_process, apply_with_cli
from recops.core.settings import Settings
from recops.core.timeutil import utc_aware
from recops.core.warehouse import Warehouse

if TYPE_CHECKING:
    from feast import FeatureStore

ML_MARTS = ("ml_user_features", "ml_item_features", "ml_user_item_features")
FEATURE_VIEWS = ("user_features", "item_features", "user_item_features")


class FeatureApplyResult(BaseModel):
    """What ``apply_features`` registered and how many rows each offline source holds."""

    entities: list[str]
    feature_views: list[str]
    feature_services: list[str]
    source_rows: dict[str, int]
    applied: bool = True  # False: the registry already held these definitions (embedded)


def _cast_expr(column: str) -> str:
    if column in (USER_COL, ITEM_COL):
        return f"cast({column} as varchar) as {column}"
    if column == TIMESTAMP_COL or column.endswith("_at"):
        return f"cast({column} as timestamp) as {column}"
    if column.startswith("count_"):
        return f"cast(coalesce({column}, 0) as bigint) as {column}"
    return f"cast({column} as double) as {column}"


def export_feature_tables(settings: Settings) -> dict[str, int]:
    """Write the ML marts as Parquet for Feast's offline store (embedded profile only).

    Columns are cast to the feature views' declared types. Returns the row count per table.
    On the production profile Feast reads the PostgreSQL marts directly and this only counts rows.
    """
    counts: dict[str, int] = {}
    schema = settings.mart_schema
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        for table in ML_MARTS:
            counts[table] = int(wh.scalar(f"select count(*) from {schema}.{table}"))
            if settings.profile == "production":
                continue
            cols = wh.query_df(f"select * from {schema}.{table} limit 0").columns
            settings.feature_data_dir.mkdir(parents=True, exist_ok=True)
            out = settings.feature_data_dir / f"{table}.parquet"
            select = ", ".join(_cast_expr(c) for c in cols)
            wh.execute(f"copy (select {select} from {schema}.{table}) to '{out}' (format parquet)")
    return counts


def repo_config_data(settings: Settings) -> dict[str, Any]:
    """The profile's Feast configuration (what ``features/feature_store*.yaml`` say, with the
    settings' values): file registry and SQLite online store under ``home/feast`` with Feast's
    DuckDB offline store over the exported Parquet files (embedded; its point-in-time joins run in
    DuckDB, where the Dask-based file store re-read and hashed every source per call), or SQL
    registry and offline store on PostgreSQL and Redis online (production)."""
    if settings.profile == "production":
        stores: dict[str, Any] = {
            "registry": {
                "registry_type": "sql",
                "path": settings.postgres_url(driver="postgresql+psycopg"),
                "cache_ttl_seconds": 60,
                "sqlalchemy_config_kwargs": {"pool_pre_ping": True},
            },
            "online_store": {"type": "redis", "connection_string": settings.feast_redis_connection},
            "offline_store": {
                "type": "postgres",
                "host": settings.postgres_host,
                "port": settings.postgres_port,
                "database": settings.postgres_db,
                "db_schema": settings.mart_schema,
                "user": settings.postgres_user,
                "password": settings.postgres_password,
                "sslmode": settings.postgres_sslmode,
            },
        }
    else:
        stores = {
            "registry": {
                "registry_type": "file",
                "path": str(settings.feast_dir / "registry.db"),
                "cache_ttl_seconds": 60,
            },
            "online_store": {"type": "sqlite", "path": str(settings.feast_dir / "online_store.db")},
            "offline_store": {"type": "duckdb"},
        }
    return {
        "project": settings.feast_project,
        "provider": "local",
        "entity_key_serialization_version": 3,
        "auth": {"type": "no_auth"},
        **stores,
    }


def get_store(settings: Settings) -> FeatureStore:
    """A FeatureStore on the active profile, configured in code from the settings."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    if settings.profile == "embedded":
        settings.feast_dir.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(repo_path=settings.feature_repo_path, **repo_config_data(settings))
    return FeatureStore(repo_path=str(settings.feature_repo_path), config=config)


CONFIG_REFERENCE = re.compile(r"\$\{(\w+)\}|(?:environ\.get|env)\(\s*[\"'](\w+)")


def definitions_fingerprint(settings: Settings) -> str:
    """SHA-256 of the feature repo's files and of the configuration values they read
    (``${VAR}`` in the YAML, ``env("VAR"`` or ``os.environ.get("VAR"`` in the definitions)."""
    import hashlib
    import json

    env = settings.tool_env()
    digest = hashlib.sha256()
    used: set[str] = set()
    for path in sorted(settings.feature_repo_path.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml", ".yml") and "__pycache__" not in path.parts:
            text = path.read_bytes()
            digest.update(str(path.relative_to(settings.feature_repo_path)).encode() + text)
            used |= {a or b for a, b in CONFIG_REFERENCE.findall(text.decode())}
    digest.update(json.dumps({k: env.get(k) for k in sorted(used)}, sort_keys=True).encode())
    return digest.hexdigest()


def apply_features(settings: Settings, *, in_process: bool = True) -> FeatureApplyResult:
    """``feast apply`` of the declarative repo in ``features/`` (idempotent).

    In this process: the definitions are loaded afresh with the settings' values (they read them
    through ``features/repo_env.py``; the process environment and working directory are left
    alone) and applied by Feast's own apply function (:mod:`recops.core.feature_apply`), which
    saves a child process importing Feast (about 6 s per apply). Feast's CLI in a child process when ``in_process`` is False or the repo
    holds kinds of object collected only by Feast's CLI (streams, labels, permissions). On the
    embedded profile a registry file that already holds these exact definitions (same fingerprint
    of the repo and its configuration, recorded after the last apply) is not applied again.
    """
    settings.feast_dir.mkdir(parents=True, exist_ok=True)  # the file registry's folder
    fingerprint = definitions_fingerprint(settings)
    marker = settings.feast_dir / "applied.sha256"
    current = (
        settings.profile == "embedded"
        and (settings.feast_dir / "registry.db").exists()
        and marker.exists()
        and marker.read_text().strip() == fingerprint
    )
    if not current:
        if not (in_process and apply_in_process(settings, get_store(settings))):
            apply_with_cli(settings)
        marker.write_text(fingerprint + "\n")
    store = get_store(settings)
    return FeatureApplyResult(
        entities=sorted(e.name for e in store.list_entities()),
        feature_views=sorted(v.name for v in store.list_feature_views()),
        feature_services=sorted(s.name for s in store.list_feature_services()),
        source_rows=_source_rows(settings),
        applied=not current,
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


@contextmanager
def _quiet_offline_store() -> Iterator[None]:
    """Without the DeprecationWarning ibis 12 prints on DuckDB 1.5 at every offline-store read."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "fetch_arrow_table", DeprecationWarning)
        yield


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
    start, end = utc_aware(start), utc_aware(end)
    store = get_store(settings)
    ends: dict[datetime, list[str]] = {}
    for name in FEATURE_VIEWS:
        published = store.get_feature_view(name).most_recent_end_time
        view_end = max(end, utc_aware(published)) if published is not None else end
        ends.setdefault(view_end, []).append(name)
    for view_end, views in sorted(ends.items()):
        with _quiet_offline_store():
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
    (join keys, event_timestamp) rows and merged back on them: the user and item views see a few
    thousand rows instead of every pair, and no store can drop duplicate entity rows (Feast's
    Dask file store did, feast-dev/feast#6787). An entity row without a feature row in
    ``[ts - ttl, ts]`` gets nulls (the left merge), whatever the store returns for it.
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
        with _quiet_offline_store():
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


ONLINE_BATCH = 20_000


def pair_keys(settings: Settings) -> pd.DataFrame:
    """Every (user_id, item_id) of the user-item mart, the source of the only pair-keyed view: a
    pair outside it has no row in the online store either."""
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        return wh.query_df(
            f"select distinct {USER_COL}, {ITEM_COL} from {settings.mart_schema}.ml_user_item_features"
        ).astype(str)


def online_features_bulk(
    store: FeatureStore, entity_df: pd.DataFrame, *, pairs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Online ``ranker_v1`` features of many (user_id, item_id) rows: the rows' keys plus one
    column per feature (``<view>__<feature>``), in the input's order. Each view is read once per
    distinct key of its own (a user's features once for all their candidates, an item's once for
    all users), in batches, and joined back. ``pairs`` (:func:`pair_keys`): a pair-keyed view is
    read only for these pairs; the others come back null, as the store answers for them."""
    keys = entity_df[[USER_COL, ITEM_COL]].astype(str).reset_index(drop=True)
    if keys.empty:
        return keys
    out = keys
    for view, join_keys, features in service_views(store):
        unique = keys[join_keys].drop_duplicates().reset_index(drop=True)
        if pairs is not None and set(join_keys) == {USER_COL, ITEM_COL}:
            unique = unique.merge(pairs, on=join_keys)
        parts = []
        for start in range(0, len(unique), ONLINE_BATCH):
            rows = unique.iloc[start : start + ONLINE_BATCH].to_dict("records")
            resp = store.get_online_features(
                features=[f"{view}:{f}" for f in features], entity_rows=rows, full_feature_names=True
            )
            parts.append(pd.DataFrame(resp.to_dict()).drop(columns=join_keys, errors="ignore"))
        if parts:
            values = pd.concat([unique, pd.concat(parts, ignore_index=True)], axis=1)
        else:  # no key of this view can have a row
            values = unique.assign(**{f"{view}__{f}": float("nan") for f in features})
        out = out.merge(values, on=join_keys, how="left", validate="many_to_one")
    return out


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns Feast added (``<view>__<feature>``)."""
    return [c for c in frame.columns if "__" in c]


def prepare_features(settings: Settings) -> dict[str, Any]:
    """Export the ML marts and ``feast apply``: the offline store is ready for point-in-time
    training sets; the online store is untouched (write-audit-publish: it is materialised only
    after the gates, by :func:`publish_online`)."""
    rows = export_feature_tables(settings)
    applied = apply_features(settings)
    return {"rows": rows, "feature_views": applied.feature_views}


def publish_online(settings: Settings, end: datetime, *, start: datetime | None = None) -> dict[str, Any]:
    """Materialise into the online store what is new by ``end``.

    Once every feature view has been materialised before, that is ``[start, end]`` widened back to
    where the views' materialisation ended (a manual or Asset-triggered run has ``start == end``),
    and never more than the feature TTL's worth. A new store, a run without an interval start, and
    a rerun of an interval already published (nothing new: the same values again) get the TTL's
    worth, ``[end - feature_ttl_days, end]``."""
    end = utc_aware(end)
    ttl_start = end - timedelta(days=settings.feature_ttl_days)
    first = ttl_start
    if start is not None:
        store = get_store(settings)
        published = [store.get_feature_view(name).most_recent_end_time for name in FEATURE_VIEWS]
        if all(p is not None for p in published):
            first = min(utc_aware(start), *(utc_aware(p) for p in published))
            first = ttl_start if first >= end else max(first, ttl_start)
    return materialize_interval(settings, first, end)


def refresh_features(settings: Settings, end: datetime) -> dict[str, Any]:
    """:func:`prepare_features` then :func:`publish_online` in one go (tests, benchmarks)."""
    prepared = prepare_features(settings)
    return {**prepared, "materialized": publish_online(settings, end)}
