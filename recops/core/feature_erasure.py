"""Erasing one customer from the feature store: the offline Parquet sources (embedded profile)
and every online-store entity key of the user (SQLite with ``secure_delete``, or Redis), found by
Feast's own key encoding. Orchestrated by :mod:`recops.app.forget`."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recops.core.constants import USER_COL
from recops.core.feature_store import get_store
from recops.core.privacy import ErasureError, rewrite_sqlite, scrub_parquet
from recops.core.settings import Settings


def _files(root: Path, suffixes: tuple[str, ...] = (".parquet", ".joblib")) -> Iterator[Path]:
    if root.exists():
        yield from sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes)


def erase_feature_sources(settings: Settings, key: str, original: str) -> dict[str, int]:
    """Feast offline sources (embedded profile: Parquet exports of the ML marts)."""
    return {
        f"feast.offline.{p.name}": scrub_parquet(p, {key, original})
        for p in _files(settings.feature_data_dir, (".parquet",))
    }


def erase_online_store(settings: Settings, key: str, store: Any = None) -> dict[str, int]:
    """Delete every online-store entity key of the user (``user`` and each ``user, item`` pair)
    from the feature views joined on ``user_id``. Returns entity keys deleted per feature view."""
    if store is None:
        if settings.profile == "embedded" and not (settings.feast_dir / "registry.db").exists():
            return {}
        store = get_store(settings)
    views = [v for v in store.list_feature_views() if USER_COL in v.join_keys and v.online]
    if not views:
        return {}
    online = store._get_provider().online_store
    kind = type(online).__name__
    if kind == "SqliteOnlineStore":
        return _erase_sqlite(store.config, online, views, key)
    if kind == "RedisOnlineStore":
        return _erase_redis(store.config, online, views, key)
    raise ErasureError(f"forget supports the sqlite and redis online stores, not {kind}")


def _entity_user(serialized: bytes, version: int) -> str | None:
    from feast.infra.key_encoding_utils import deserialize_entity_key

    entity = deserialize_entity_key(bytes(serialized), entity_key_serialization_version=version)
    values = dict(zip(entity.join_keys, entity.entity_values, strict=True))
    value = values.get(USER_COL)
    return None if value is None else value.string_val


def _erase_sqlite(config: Any, online: Any, views: list, key: str) -> dict[str, int]:
    from feast.infra.online_stores.helpers import compute_table_id

    path = Path(online._get_db_path(config))
    if not path.exists():
        return {}
    version = config.entity_key_serialization_version
    versioning = config.registry.enable_online_feature_view_versioning
    counts: dict[str, int] = {}
    con = sqlite3.connect(path)
    try:
        con.execute("pragma secure_delete = on")  # overwrite deleted content with zeros
        tables = {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}
        for view in views:
            table = compute_table_id(config.project, view, versioning)
            if table not in tables:
                counts[f"feast.online.{view.name}"] = 0
                continue
            quoted = '"' + table.replace('"', '""') + '"'
            found = con.execute(
                f"select distinct entity_key from {quoted} where instr(entity_key, ?) > 0",
                (key.encode("utf-8"),),
            ).fetchall()
            keys = [k for (k,) in found if _entity_user(k, version) == key]
            con.executemany(f"delete from {quoted} where entity_key = ?", [(k,) for k in keys])
            counts[f"feast.online.{view.name}"] = len(keys)
        con.commit()
        rewrite_sqlite(con)
    finally:
        con.close()
    return counts


def _erase_redis(config: Any, online: Any, views: list, key: str) -> dict[str, int]:
    client = online._get_client(config.online_store)
    version = config.entity_key_serialization_version
    suffix = config.project.encode("utf-8")
    pattern = b"*" + re.sub(rb"([*?\[\]\\])", rb"\\\1", key.encode("utf-8")) + b"*" + suffix
    doomed = []
    for redis_key in client.scan_iter(match=pattern, count=1000):
        if redis_key.endswith(suffix) and _entity_user(redis_key[: -len(suffix)], version) == key:
            doomed.append(redis_key)
    counts = {f"feast.online.{v.name}": 0 for v in views}
    if doomed:
        with client.pipeline(transaction=False) as pipe:
            for redis_key in doomed:
                pipe.hkeys(redis_key)
            fields = pipe.execute()
        for names in fields:
            for name in names:
                view = (
                    bytes(name)[4:].decode("utf-8", "replace")
                    if bytes(name).startswith(b"_ts:")
                    else None
                )
                if view is not None and f"feast.online.{view}" in counts:
                    counts[f"feast.online.{view}"] += 1
        client.delete(*doomed)
    return counts


