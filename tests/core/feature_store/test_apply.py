"""``feast apply`` runs when the registry lacks the repo's definitions, and only then; in this process it
registers what Feast's CLI does."""

from __future__ import annotations

from recops.core.feature_store import apply_features, definitions_fingerprint
from recops.core.settings import Settings


def test_an_unchanged_repo_is_not_applied_again(feast_home) -> None:
    again = apply_features(feast_home)
    assert not again.applied
    assert again.feature_views == ["item_features", "user_features", "user_item_features"]
    assert again.feature_services == ["ranker_v1"]


def test_a_lost_registry_or_other_settings_apply_again(feast_home) -> None:
    marker = feast_home.feast_dir / "applied.sha256"
    assert marker.read_text().strip() == definitions_fingerprint(feast_home)
    # the views' TTL follows the snapshot spacing: another spacing is another definition; a
    # setting the definitions do not read is not
    other = feast_home.model_copy(update={"feature_snapshot_days": feast_home.feature_snapshot_days + 1})
    assert definitions_fingerprint(other) != definitions_fingerprint(feast_home)
    unrelated = feast_home.model_copy(update={"promotion_min_ndcg_gain": 0.5})
    assert definitions_fingerprint(unrelated) == definitions_fingerprint(feast_home)
    (feast_home.feast_dir / "registry.db").unlink()
    redone = apply_features(feast_home)
    assert redone.applied and redone.feature_views == ["item_features", "user_features", "user_item_features"]
    assert not apply_features(feast_home).applied


def _registered(settings) -> dict[str, dict]:
    """Every object the registry holds, as its spec (what was declared; no timestamps)."""
    from google.protobuf.json_format import MessageToDict

    from recops.core.feature_store import get_store

    store = get_store(settings)
    listings = {"entity": store.list_entities(), "feature_view": store.list_feature_views(),
                "feature_service": store.list_feature_services(), "data_source": store.list_data_sources()}
    out = {}
    for kind, objects in listings.items():
        for obj in objects:
            proto = obj.to_proto()
            out[f"{kind}:{obj.name}"] = _declared(MessageToDict(getattr(proto, "spec", proto)))
    return out


def _declared(value):
    """``value`` without the registry's timestamps (when each object was written)."""
    if isinstance(value, dict):
        return {k: _declared(v) for k, v in value.items() if not k.endswith("Timestamp")}
    if isinstance(value, list):
        return [_declared(v) for v in value]
    return value


def test_the_in_process_apply_registers_what_feasts_cli_does(tmp_path, monkeypatch, feast_marts) -> None:
    import json
    import sqlite3
    import sys

    homes = {}
    for way in ("cli", "in_process"):
        settings = Settings(home=tmp_path / way / "home", user_salt="test-salt-123", feature_snapshot_days=3)
        feast_marts(settings)
        homes[way] = settings
    cli_applied = apply_features(homes["cli"], in_process=False)
    # the environment says otherwise: the in-process apply reads the settings, not the environment
    monkeypatch.setenv("RECOPS_FEATURE_SNAPSHOT_DAYS", "30")
    monkeypatch.setenv("RECOPS_FEATURE_DATA_DIR", str(tmp_path / "elsewhere"))
    applied = apply_features(homes["in_process"])
    assert applied.applied and cli_applied.applied
    assert applied.feature_views == cli_applied.feature_views == ["item_features", "user_features", "user_item_features"]
    cli, in_process = _registered(homes["cli"]), _registered(homes["in_process"])
    assert sorted(cli) == sorted(in_process) and len(cli) == 9  # 2 entities, 3 views, 1 service, 3 sources
    # the same declarations; only the file sources' paths name each home's own folder
    here, there = str(homes["in_process"].feature_data_dir), str(homes["cli"].feature_data_dir)
    assert json.dumps(in_process, sort_keys=True).replace(here, there) == json.dumps(cli, sort_keys=True)
    view = _registered(homes["in_process"])["feature_view:user_features"]
    assert view["ttl"] == "345600s"  # snapshot_days 3 + 1, from the settings
    assert view["batchSource"]["fileOptions"]["uri"].startswith(str(homes["in_process"].feature_data_dir))
    # Feast created the online store's tables, as its CLI does
    with sqlite3.connect(homes["in_process"].feast_dir / "online_store.db") as db:
        tables = {name for (name,) in db.execute("select name from sqlite_master where type = 'table'")}
    assert {f"{homes['in_process'].feast_project}_{v}" for v in applied.feature_views} <= tables
    # the definitions' modules are not left behind for the next home
    assert not {"data_sources", "entities", "feature_views", "feature_services", "repo_env"} & set(sys.modules)

