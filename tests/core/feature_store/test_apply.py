"""``feast apply`` runs when the registry lacks the repo's definitions, and only then."""

from __future__ import annotations

from recops.core.feature_store import apply_features, definitions_fingerprint


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
