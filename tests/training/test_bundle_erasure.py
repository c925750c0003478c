"""Erasing a customer from a fitted serving bundle (real retrievers, fitted here)."""

from __future__ import annotations

import pandas as pd

from recops.core.settings import Settings
from recops.training.erasure import scrub_bundle


def test_serving_bundle_forgets_the_user_and_keeps_everyone_else() -> None:
    from recops.ingestion import generate_shop
    from recops.training.dataset import candidate_frame
    from recops.training.publish import known_users
    from recops.training.train import TrainConfig, fit_serving_bundle

    def candidates(user: str) -> pd.DataFrame:
        """What the published candidate set of ``user`` is built from (every retriever's rank)."""
        return candidate_frame(bundle.retrievers, bundle.stats, [user], bundle.n_candidates).reset_index(drop=True)

    catalog, events = generate_shop(users=60, items=40, days=40, seed=3)
    interactions = events.rename(columns={"price": "price_amount"})
    items = catalog.rename(columns={"price": "price_amount"})
    bundle = fit_serving_bundle(TrainConfig.from_settings(Settings()), interactions, items)
    buyers = interactions.loc[interactions["event_type"] == "purchase", "user_id"].value_counts()
    gone, kept = buyers.index[0], buyers.index[1]
    before = candidates(kept)
    assert bundle.is_known(gone) and gone in known_users(bundle)

    changed = scrub_bundle(bundle, gone)

    assert changed == 5  # repeat, itemcf, als, content and the history stats knew the user
    assert not bundle.is_known(gone) and gone not in known_users(bundle)  # nothing is published for them
    after = candidates(gone)
    personal = [c for c in after.columns if c.endswith("_rank") and not c.startswith("popularity")]
    assert len(personal) == 4 and (after[personal] > bundle.n_candidates).all().all()  # popularity alone finds items
    pd.testing.assert_frame_equal(candidates(kept), before)
    for retriever in bundle.retrievers:
        assert gone not in retriever.user_index
    als = next(r for r in bundle.retrievers if r.name == "als")
    assert als.user_factors.shape[0] == len(als.user_index)
    assert bundle.stats.counts.shape[0] == len(bundle.stats.user_index)
    assert gone not in bundle.stats.user_mean_price.index


