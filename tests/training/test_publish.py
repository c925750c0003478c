"""Publishing a version for serving, on the synthetic shop (no registry): the published records
hold exactly the offline frame's features in the booster's order, and the API's request path
(:mod:`recops.serving.recommender`) ranks them as the offline path does; reasons, the repeat
buyer, the cold-start fallback, exclusions, availability, item-to-item."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest

from recops.core.candidate_store import SqliteCandidateStore
from recops.core.servable import ServingMeta, UserCandidates
from recops.serving.model_state import LoadedModel
from recops.serving.recommender import COLD, PERSONAL, recommend, similar_items
from recops.serving.scorer import BoosterScorer, CompiledScorer
from recops.training.dataset import attach_store_features, candidate_frame
from recops.training.publish import known_users, serving_meta, user_records
from recops.training.train import fit_serving_bundle, rank_candidates

VERSION = "7"


@pytest.fixture(scope="module")
def twins(shop):
    """Two users with the same history, except that ``twin_a`` bought ``item`` five times."""
    base = shop.interactions[shop.interactions["user_id"] == "U0000"]
    group = shop.user_group["U0000"]
    item = next(i for i, g in sorted(shop.item_group.items()) if g != group)
    extra = pd.DataFrame(
        {
            "user_id": "twin_a",
            "item_id": item,
            "event_type": "purchase",
            "event_at": shop.end - pd.Timedelta(days=1) - pd.to_timedelta(np.arange(5) * 9, unit="D"),
        }
    )
    frames = [shop.interactions, base.assign(user_id="twin_a"), base.assign(user_id="twin_b"), extra]
    return pd.concat(frames, ignore_index=True), item


@pytest.fixture(scope="module")
def bundle(trained, shop, twins):
    cfg, _ = trained
    return fit_serving_bundle(cfg, twins[0], shop.items)


@pytest.fixture(scope="module")
def catalogue(shop) -> pd.DataFrame:
    return shop.items[["item_id", "title", "price_amount"]].assign(is_available=True)


def _publish(bundle, booster, catalogue, fetch, store) -> ServingMeta:
    users = known_users(bundle)
    meta = serving_meta(bundle, VERSION, booster.feature_name(), catalogue, len(users))
    store.write_users(VERSION, user_records(bundle, booster.feature_name(), users, meta.item_positions(), fetch))
    store.write_meta(meta)
    return meta


@pytest.fixture(scope="module")
def served(trained, bundle, catalogue, feature_fetcher, tmp_path_factory):
    """(LoadedModel, store) of the bundle published into a real SQLite candidate store."""
    _, result = trained
    folder = tmp_path_factory.mktemp("published")
    store = SqliteCandidateStore(folder / "candidates.db")
    _publish(bundle, result.booster, catalogue, feature_fetcher, store)
    meta = store.read_meta(VERSION)
    model_file = folder / "model.txt"
    result.booster.save_model(str(model_file))
    model = LoadedModel("champion", VERSION, meta, BoosterScorer(model_file), meta.item_positions(),
                        pd.Timestamp.now(tz="UTC").to_pydatetime(), meta.published_at)
    return model, store


def _ids(model: LoadedModel, ranked) -> list[str]:
    return [str(model.meta.items[i]) for i in ranked.items]


def test_published_features_are_the_offline_frame_in_booster_order(trained, bundle, served, feature_fetcher):
    _, result = trained
    model, store = served
    users = ["U0001", "U0007", "twin_a"]
    frame = attach_store_features(candidate_frame(bundle.retrievers, bundle.stats, users, bundle.n_candidates),
                                  feature_fetcher)
    names = result.booster.feature_name()
    for user in users:
        record = store.read_user(VERSION, user)
        rows = frame[frame["user_id"] == user]
        assert [str(model.meta.items[i]) for i in record.items] == rows["item_id"].tolist()
        # float32 retriever scores sum in another order in another block of users: 1e-7 apart
        np.testing.assert_allclose(record.features, rows[names].to_numpy(dtype=np.float64), rtol=1e-6)


def test_served_ranking_equals_the_offline_ranking(trained, bundle, served, feature_fetcher):
    _, result = trained
    model, store = served
    users = known_users(bundle)[:25]
    frame = attach_store_features(candidate_frame(bundle.retrievers, bundle.stats, users, bundle.n_candidates),
                                  feature_fetcher)
    offline = rank_candidates(result.booster, result.booster.feature_name(), frame)
    for user in users:
        ranked = recommend(model, store, str(user), 10)
        expected = offline[offline["user_id"] == user].head(10)
        assert ranked.kind == PERSONAL
        assert _ids(model, ranked) == expected["item_id"].tolist()
        np.testing.assert_allclose(ranked.scores, expected["score"].to_numpy(), rtol=0, atol=1e-6)


def test_compiled_and_plain_scores_agree(trained, served, tmp_path):
    _, result = trained
    model, store = served
    compiled = CompiledScorer(_saved(result.booster, tmp_path), tmp_path, "sha-test")
    record = store.read_user(VERSION, "U0003")
    np.testing.assert_allclose(compiled.predict(record.features), model.scorer.predict(record.features),
                               rtol=0, atol=1e-9)
    assert compiled.feature_names == model.scorer.feature_names


def _saved(booster, folder):
    path = folder / "model.txt"
    booster.save_model(str(path))
    return path


def test_repeat_buyer_gets_the_item_ranked_higher_than_an_identical_user(served, twins):
    model, store = served
    _, item = twins

    def position(user):
        ranked = recommend(model, store, user, 20)
        ids = _ids(model, ranked)
        return (ids.index(item) if item in ids else 20), ranked

    pos_a, ranked_a = position("twin_a")
    pos_b, _ = position("twin_b")
    assert pos_a < 10 and pos_a < pos_b
    assert "bought before" in ranked_a.reasons[pos_a]


def test_reasons_name_retrievers_and_bought_items(served):
    model, store = served
    ranked = recommend(model, store, "U0001", 10)
    known = {"bought before", "popular now", "similar to items you bought", "matches your taste (ALS)"}
    titles = {t for t in model.meta.titles if t}
    assert len(ranked.items) == 10 and list(ranked.scores) == sorted(ranked.scores, reverse=True)
    for reasons in ranked.reasons:
        assert reasons
        for reason in reasons:
            if reason.startswith("customers who bought "):
                assert reason.removeprefix("customers who bought ").removesuffix(" also bought this") in titles
            else:
                assert reason in known


def test_unknown_user_falls_back_to_popularity_and_context(bundle, served):
    model, store = served
    plain = recommend(model, store, "stranger", 5)
    assert plain.kind == COLD and all(r == ["popular now"] for r in plain.reasons)
    assert _ids(model, plain) == bundle.retrievers[0].top_items(5)["item_id"].tolist()
    context = recommend(model, store, "stranger", 6, context=model.positions["I0001"])
    assert any("similar to the item you are viewing" in r for r in context.reasons)


def test_excluded_and_unavailable_items_are_never_returned(served):
    model, store = served
    first = _ids(model, recommend(model, store, "U0001", 10))
    excluded = [model.positions[i] for i in first[:3]]
    again = _ids(model, recommend(model, store, "U0001", 10, exclude=excluded))
    assert not set(first[:3]) & set(again) and again[:7] == first[3:]
    hidden = model.meta.available.copy()
    hidden[model.positions[first[3]]] = False
    meta = ServingMeta(**{**model.meta.__dict__, "available": hidden})
    restricted = LoadedModel(**{**model.__dict__, "meta": meta})
    assert first[3] not in _ids(restricted, recommend(restricted, store, "U0001", 10))
    assert first[3] not in _ids(restricted, recommend(restricted, store, "stranger", 50))


def test_similar_items_fuse_copurchase_and_text(served):
    model, _ = served
    item = model.positions["I0002"]
    ranked = similar_items(model, item, 8)
    assert len(ranked.items) == 8 and item not in ranked.items.tolist()
    assert {"customers who bought this also bought", "similar description"} & {r for rs in ranked.reasons for r in rs}


def test_bundle_and_records_survive_a_round_trip(bundle, served):
    model, store = served
    buffer = io.BytesIO()
    joblib.dump(bundle, buffer)
    buffer.seek(0)
    assert joblib.load(buffer).is_known("U0001")
    record = store.read_user(VERSION, "U0001")
    again = UserCandidates.from_bytes(record.to_bytes())
    np.testing.assert_array_equal(again.features, record.features)
    assert ServingMeta.from_bytes(model.meta.to_bytes()).items.tolist() == model.meta.items.tolist()
