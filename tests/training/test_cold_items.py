"""Cold items: a product that never sold is in the content retriever's catalogue (and so in the
item-to-item path) with a defined age, as soon as the catalogue knew it, and not before."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recops.core.constants import EVENT_TYPE_COL, ITEM_COL, USER_COL
from recops.training.dataset import HistoryStats
from recops.training.retrievers import Content


def test_a_new_product_close_to_what_a_user_buys_reaches_their_top_k(shop):
    cutoff = shop.end - pd.Timedelta(days=21)
    history = shop.interactions[shop.interactions["event_at"] < cutoff]
    bought = history[history[EVENT_TYPE_COL] == "purchase"]
    user = bought[USER_COL].value_counts().index[0]
    favourite = bought.loc[bought[USER_COL] == user, ITEM_COL].value_counts().index[0]
    text = shop.items.set_index(ITEM_COL).loc[favourite, "item_text"]
    items = shop.items.assign(first_seen_at=shop.start)
    new = pd.DataFrame(
        {
            ITEM_COL: ["NEW-1", "LATER-1"],
            "title": [text, text],
            "item_text": [text, text],
            # NEW-1 loaded 10 days before the cutoff; LATER-1 the day after it
            "first_seen_at": [cutoff - pd.Timedelta(days=10), cutoff + pd.Timedelta(days=1)],
        }
    )
    items = pd.concat([items, new], ignore_index=True)

    content = Content().fit(shop.interactions, items, cutoff)
    top = content.recommend([user], 10)
    assert "NEW-1" in set(top[ITEM_COL]), top
    assert "LATER-1" not in content.item_index  # not known at the cutoff: never a candidate
    assert "NEW-1" in set(content.similar_items(favourite, 5)[ITEM_COL])

    stats = HistoryStats.fit(shop.interactions, items, cutoff)
    pairs = pd.DataFrame({USER_COL: [user, user], ITEM_COL: ["NEW-1", favourite]})
    age = stats.features(pairs)["item_days_since_first_sale"].to_numpy()
    assert age[0] == 10.0  # days since the catalogue first had it
    assert age[1] > 10.0 and not np.isnan(age[1])  # a sold item keeps its first sale's age
