"""A synthetic shop with real personal signal (latent preferences), deterministic for a seed.

Model:

- Catalogue: 16 categories (8 consumable), ``clip(items // 20, 32, 200)`` brands, each brand in
  one category. Item popularity is a power law (Zipf, exponent 1) over a random order; price is a
  category base price times a log-normal factor, ending in .99. Titles and descriptions are built
  from the brand, the category name and category words, so TF-IDF has signal.
- Users: category taste ~ Dirichlet(0.3) (concentrated: a few categories dominate), brand taste
  ~ Dirichlet(0.3) over all brands, price sensitivity uniform on 16 levels in [0, 1.5], activity
  (sessions per day) ~ Gamma(0.8) with mean ``SESSIONS_PER_DAY``.
- Browsing: sessions per user per day are Poisson(activity x day weight; weekends 25% busier),
  mostly in the evening. A session picks one category from the user's taste and views
  ``1 + Poisson(2.2)`` items drawn from popularity x brand taste x price fit within it; a view
  becomes ``add_to_cart`` with probability ~0.14 (lower for items priced above their category's
  median) and a cart item is purchased at checkout with probability 0.55.
- Repeat buyers (30% of users) have 1-3 staple consumables (drawn from their taste) which they
  re-buy every 14-42 days (view, add_to_cart, purchase in a short session).

Expected size: about ``0.5 * users * days`` events (browsing ~0.43, replenishment ~0.07 per
user-day; roughly 74% views, 15% add_to_cart, 10% purchases) within ``[start, start + days)``.

Work is vectorised per block of users (``BLOCK_CELLS // items`` users at a time), each block with
its own seeded generator, so memory stays bounded and the output depends only on the arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

SESSIONS_PER_DAY = 0.11
VIEWS_EXTRA_MEAN = 2.2
CART_RATE = 0.14
CHECKOUT_RATE = 0.55
REPEAT_BUYER_SHARE = 0.30
TASTE_ALPHA = 0.3
BLOCK_CELLS = 2_000_000
SENSITIVITY_LEVELS = np.linspace(0.0, 1.5, 16)  # price sensitivity, drawn uniformly from these
DAY = 86_400
EVENT_TYPES = np.array(["view", "add_to_cart", "purchase"], dtype=object)


@dataclass(frozen=True)
class Category:
    """A product category: words for titles / descriptions, base price, consumable or not."""

    name: str
    base_price: float
    consumable: bool
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    keywords: tuple[str, ...]


# fmt: off
CATEGORIES: tuple[Category, ...] = (
    Category("Coffee & Tea", 9.0, True,
        ("coffee beans", "ground coffee", "espresso capsules",
         "green tea", "herbal tea", "cold brew"),
        ("roasted", "arabica", "decaf", "single-origin", "organic", "smooth"),
        ("caffeine", "brew", "aroma", "roast")),
    Category("Snacks", 4.0, True,
        ("granola bars", "trail mix", "potato crisps",
         "dark chocolate", "rice crackers", "protein cookies"),
        ("salted", "crunchy", "gluten-free", "sweet", "spicy", "wholegrain"),
        ("snack", "treat", "flavour", "pantry")),
    Category("Pet Supplies", 18.0, True,
        ("dry dog food", "cat litter", "dog treats", "cat food pouches", "chew toy", "pet shampoo"),
        ("grain-free", "salmon", "chicken", "clumping", "natural", "puppy"),
        ("pet", "dog", "cat", "nutrition")),
    Category("Baby Care", 14.0, True,
        ("nappies", "baby wipes", "baby lotion", "feeding bottle", "teething ring", "baby formula"),
        ("sensitive", "hypoallergenic", "newborn", "fragrance-free", "soft", "gentle"),
        ("baby", "infant", "nursery", "care")),
    Category("Skincare", 22.0, True,
        ("face cream", "serum", "sunscreen", "cleanser", "night cream", "lip balm"),
        ("hydrating", "retinol", "vitamin-c", "spf50", "soothing", "anti-ageing"),
        ("skin", "moisturiser", "glow", "dermatologist")),
    Category("Hair Care", 11.0, True,
        ("shampoo", "conditioner", "hair mask", "hair oil", "styling gel", "dry shampoo"),
        ("argan", "keratin", "volumising", "repairing", "curl", "sulphate-free"),
        ("hair", "scalp", "shine", "salon")),
    Category("Household Cleaning", 7.0, True,
        ("laundry detergent", "dish tablets", "surface spray",
         "bin bags", "fabric softener", "sponges"),
        ("lemon", "eco", "concentrated", "antibacterial", "lavender", "biodegradable"),
        ("cleaning", "home", "stain", "fresh")),
    Category("Vitamins", 15.0, True,
        ("multivitamin", "vitamin d3", "omega-3 capsules",
         "magnesium tablets", "probiotic", "collagen powder"),
        ("vegan", "high-strength", "slow-release", "daily", "chewable", "sugar-free"),
        ("supplement", "health", "immunity", "wellbeing")),
    Category("Kitchenware", 35.0, False,
        ("chef knife", "frying pan", "chopping board", "saucepan", "mixing bowl", "kettle"),
        ("stainless", "non-stick", "cast-iron", "bamboo", "ceramic", "copper"),
        ("kitchen", "cooking", "cookware", "chef")),
    Category("Electronics Accessories", 25.0, False,
        ("usb-c cable", "wireless charger", "power bank",
         "earbuds", "phone case", "bluetooth speaker"),
        ("fast-charge", "braided", "portable", "noise-cancelling", "waterproof", "magnetic"),
        ("gadget", "charging", "battery", "wireless")),
    Category("Toys & Games", 20.0, False,
        ("building blocks", "jigsaw puzzle", "board game",
         "plush bear", "remote control car", "art set"),
        ("educational", "wooden", "family", "colourful", "1000-piece", "creative"),
        ("toy", "kids", "play", "fun")),
    Category("Sportswear", 40.0, False,
        ("running shoes", "yoga leggings", "training shirt", "sports bra", "hoodie", "trail socks"),
        ("breathable", "lightweight", "seamless", "reflective", "moisture-wicking", "thermal"),
        ("sport", "running", "fitness", "gym")),
    Category("Outdoor & Camping", 45.0, False,
        ("tent", "sleeping bag", "hiking backpack", "camping stove", "head torch", "water bottle"),
        ("ultralight", "insulated", "weatherproof", "2-person", "rechargeable", "foldable"),
        ("camping", "hiking", "outdoor", "trail")),
    Category("Stationery", 8.0, False,
        ("notebook", "gel pens", "desk planner", "highlighters", "sketchbook", "fountain pen"),
        ("dotted", "a5", "refillable", "pastel", "recycled", "fine-tip"),
        ("writing", "office", "paper", "journal")),
    Category("Home Decor", 24.0, False,
        ("scented candle", "cushion cover", "photo frame", "vase", "wall clock", "throw blanket"),
        ("linen", "velvet", "rustic", "minimalist", "handmade", "boho"),
        ("decor", "cosy", "interior", "living")),
    Category("Garden", 16.0, False,
        ("plant pots", "seed kit", "garden hose", "pruning shears", "compost", "bird feeder"),
        ("terracotta", "heirloom", "expandable", "ergonomic", "peat-free", "hanging"),
        ("garden", "plants", "grow", "greenhouse")),
)
BRAND_HEADS = (
    "Nor", "Bel", "Cas", "Vel", "Ar", "Lum", "Or", "Kai", "Sol", "Mer", "Tal", "Zen", "Fin", "Ro",
    "Ver", "Ash",
)
BRAND_TAILS = (
    "vik", "amo", "tera", "ora", "io", "ex", "wood", "ly", "ara", "ix", "ton", "ela", "umi", "en",
)
VARIANTS = (
    "", "Classic", "Pro", "Plus", "Mini", "Max", "Original", "Deluxe", "2-Pack", "Family Size",
)
# fmt: on


@dataclass
class Catalog:
    """The generated catalogue plus the arrays the event model needs (items sorted by category)."""

    frame: pd.DataFrame
    category: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    popularity: np.ndarray
    consumable: np.ndarray
    order: np.ndarray
    seg_start: np.ndarray
    seg_end: np.ndarray
    n_brands: int


# --- catalogue --------------------------------------------------------------------------------
def make_catalog(items: int, seed: int) -> Catalog:
    """Generate ``items`` products (depends only on ``items`` and ``seed``)."""
    rng = np.random.default_rng([seed, 0])
    n_cat = len(CATEGORIES)
    n_brands = int(np.clip(items // 20, 2 * n_cat, min(200, len(BRAND_HEADS) * len(BRAND_TAILS))))
    names = [h + t for h in BRAND_HEADS for t in BRAND_TAILS]
    brand_names = np.array(names, dtype=object)[rng.permutation(len(names))[:n_brands]]
    brand_cat = rng.permutation(np.arange(n_brands) % n_cat)
    cat = rng.choice(n_cat, size=items, p=rng.dirichlet(np.full(n_cat, 8.0)))
    brand = np.empty(items, dtype=np.int64)
    for c in range(n_cat):
        members = np.flatnonzero(brand_cat == c)
        where = np.flatnonzero(cat == c)
        brand[where] = rng.choice(members, size=len(where), p=rng.dirichlet(np.ones(len(members))))
    base = np.array([c.base_price for c in CATEGORIES])[cat]
    price = np.round(np.maximum(1.0, np.round(base * rng.lognormal(0.0, 0.45, items))) - 0.01, 2)
    popularity = 1.0 / (1.0 + rng.permutation(items))
    popularity /= popularity.sum()
    width = max(5, len(str(items)))
    frame = pd.DataFrame(
        {
            "item_id": [f"i{i:0{width}d}" for i in range(items)],
            **_item_texts(rng, cat, brand_names[brand]),
            "category": [CATEGORIES[c].name for c in cat],
            "brand": brand_names[brand],
            "price": price.astype(float),
        }
    )
    order = np.argsort(cat, kind="stable")
    counts = np.bincount(cat, minlength=n_cat)
    seg_end = np.cumsum(counts)
    consumable = np.array([c.consumable for c in CATEGORIES])[cat]
    return Catalog(
        frame, cat, brand, price, popularity, consumable, order, seg_end - counts, seg_end, n_brands
    )


def _item_texts(
    rng: np.random.Generator, cat: np.ndarray, brands: np.ndarray
) -> dict[str, list[str]]:
    """Titles and descriptions carrying brand, category and category words."""
    titles, descriptions = [], []
    picks = rng.integers(0, 6, size=(len(cat), 2))
    keys = np.argsort(rng.random((len(cat), 4)), axis=1)[:, :3]
    variants = rng.integers(0, len(VARIANTS), size=len(cat))
    for i, c in enumerate(cat):
        spec = CATEGORIES[c]
        noun, adj = spec.nouns[picks[i, 0]], spec.adjectives[picks[i, 1]]
        words = [spec.keywords[k] for k in keys[i]]
        title = f"{brands[i]} {adj.title()} {noun.title()} {VARIANTS[variants[i]]}".strip()
        titles.append(title)
        descriptions.append(
            f"{adj.capitalize()} {noun} by {brands[i]}. Part of our {spec.name} range: "
            f"{words[0]}, {words[1]} and {words[2]}."
        )
    return {"title": titles, "description": descriptions}


# --- users and events -------------------------------------------------------------------------
def _item_weights(rng: np.random.Generator, catalog: Catalog, size: int) -> np.ndarray:
    """Per-user item weights (rows: users, columns: items in category order)."""
    brand_taste = rng.dirichlet(np.full(catalog.n_brands, TASTE_ALPHA), size=size)
    level = rng.integers(0, len(SENSITIVITY_LEVELS), size=size)
    order = catalog.order
    cat_median = pd.Series(catalog.price).groupby(catalog.category).transform("median").to_numpy()
    rel_price = np.log(catalog.price / cat_median)[order]
    price_fit = np.exp(-SENSITIVITY_LEVELS[:, None] * rel_price) * catalog.popularity[order]
    weights = brand_taste[:, catalog.brand[order]]
    weights *= catalog.n_brands
    weights += 0.2
    weights *= price_fit[level]
    return weights


class _Sampler:
    """Draw items within a category for block users from their weight rows (searchsorted trick)."""

    def __init__(self, weights: np.ndarray, catalog: Catalog) -> None:
        rows, width = weights.shape
        cum = np.zeros((rows, width + 1))
        np.cumsum(weights, axis=1, out=cum[:, 1:])
        cum /= cum[:, -1:]
        self.lo = cum[:, catalog.seg_start]
        self.hi = cum[:, catalog.seg_end]
        self.flat = (cum[:, 1:] + np.arange(rows)[:, None]).ravel()
        self.width = width
        self.catalog = catalog

    def draw(self, rng: np.random.Generator, user: np.ndarray, cat: np.ndarray) -> np.ndarray:
        """Item indices (catalogue order) for each (block user, category) pair."""
        lo, hi = self.lo[user, cat], self.hi[user, cat]
        target = user + lo + rng.random(len(user)) * (hi - lo)
        col = np.searchsorted(self.flat, target, side="right") - user * self.width
        col = np.clip(col, self.catalog.seg_start[cat], self.catalog.seg_end[cat] - 1)
        return self.catalog.order[col]


def _pick_category(rng: np.random.Generator, taste: np.ndarray, user: np.ndarray) -> np.ndarray:
    """One category per row from the users' taste distributions."""
    cum = np.cumsum(taste[user], axis=1)
    u = rng.random(len(user)) * cum[:, -1]
    return np.minimum((cum <= u[:, None]).sum(axis=1), taste.shape[1] - 1)


def _browse(
    rng: np.random.Generator,
    catalog: Catalog,
    sampler: _Sampler,
    taste: np.ndarray,
    days: int,
    day_p: np.ndarray,
) -> dict[str, np.ndarray]:
    """Browsing sessions of one block: views, carts and checkout purchases."""
    size = taste.shape[0]
    activity = SESSIONS_PER_DAY * rng.gamma(0.8, 1 / 0.8, size=size)
    n_sessions = rng.poisson(activity * days)
    s_user = np.repeat(np.arange(size), n_sessions)
    n_s = len(s_user)
    evening = rng.random(n_s) < 0.65
    tod = np.where(evening, rng.normal(20.5, 2.5, n_s), rng.uniform(7, 23, n_s)) * 3600
    s_start = rng.choice(days, size=n_s, p=day_p) * DAY + np.clip(tod, 0, 23 * 3600)
    s_cat = _pick_category(rng, taste, s_user)
    n_views = 1 + rng.poisson(VIEWS_EXTRA_MEAN, size=n_s)
    v_sess = np.repeat(np.arange(n_s), n_views)
    first = np.concatenate([[0], np.cumsum(n_views)[:-1]]).astype(np.int64)
    v_user = s_user[v_sess]
    item = sampler.draw(rng, v_user, s_cat[v_sess])
    gaps = rng.exponential(50.0, len(v_sess)) + 5.0
    gaps[first] = 0.0
    cum = np.cumsum(gaps)
    v_time = s_start[v_sess] + cum - cum[first][v_sess]
    cat_median = pd.Series(catalog.price).groupby(catalog.category).transform("median").to_numpy()
    fit = np.clip((catalog.price[item] / cat_median[item]) ** -0.5, 0.3, 2.5)
    carted = rng.random(len(item)) < np.clip(CART_RATE * fit, 0.02, 0.6)
    bought = carted & (rng.random(len(item)) < CHECKOUT_RATE)
    c_time = v_time + 8.0 + rng.exponential(25.0, len(item))
    s_end = np.maximum.reduceat(np.where(carted, c_time, v_time), first) if n_s else np.zeros(0)
    p_time = s_end[v_sess] + 60.0 + rng.exponential(5.0, len(item))
    qty = 1 + rng.poisson(np.where(catalog.consumable[item], 0.8, 0.2))
    return {
        "user": np.concatenate([v_user, v_user[carted], v_user[bought]]),
        "item": np.concatenate([item, item[carted], item[bought]]),
        "type": np.concatenate(
            [np.zeros(len(item)), np.ones(carted.sum()), np.full(bought.sum(), 2)]
        ).astype(np.int8),
        "time": np.concatenate([v_time, c_time[carted], p_time[bought]]),
        "session": np.concatenate([v_sess, v_sess[carted], v_sess[bought]]),
        "quantity": np.concatenate([np.ones(len(item), dtype=np.int64), qty[carted], qty[bought]]),
        "n_sessions": np.array(n_s),
    }


def _replenish(
    rng: np.random.Generator, catalog: Catalog, sampler: _Sampler, taste: np.ndarray, days: int
) -> dict[str, np.ndarray]:
    """Repeat buyers re-buying their staple consumables every 14-42 days."""
    size = taste.shape[0]
    repeat = np.flatnonzero(rng.random(size) < REPEAT_BUYER_SHARE)
    n_staples = 1 + rng.binomial(2, 0.5, size=len(repeat))
    st_user = np.repeat(repeat, n_staples)
    staple_taste = taste * np.array([c.consumable for c in CATEGORIES])  # empty categories are 0
    st_user = st_user[staple_taste[st_user].sum(axis=1) > 0]  # tiny catalogues: maybe none
    st_cat = _pick_category(rng, staple_taste, st_user)
    st_item = sampler.draw(rng, st_user, st_cat)
    period = rng.uniform(14, 42, size=len(st_user))
    phase = rng.uniform(0, 1, size=len(st_user)) * period
    k_max = int(np.ceil(days / 14)) + 1
    when = (
        phase[:, None]
        + np.arange(k_max)[None, :] * period[:, None]
        + rng.normal(0, 1.5, size=(len(st_user), k_max))
    ) * DAY
    ok = (when >= 0) & (when < (days * DAY - 3600))
    which, _ = np.nonzero(ok)
    t0 = when[ok]
    n = len(t0)
    user, item = st_user[which], st_item[which]
    t_cart = t0 + 20.0 + rng.exponential(20.0, n)
    t_buy = t_cart + 40.0 + rng.exponential(20.0, n)
    qty = 1 + rng.poisson(0.8, size=n)
    session = np.arange(n)
    return {
        "user": np.tile(user, 3),
        "item": np.tile(item, 3),
        "type": np.repeat(np.array([0, 1, 2], dtype=np.int8), n),
        "time": np.concatenate([t0, t_cart, t_buy]),
        "session": np.tile(session, 3),
        "quantity": np.concatenate([np.ones(n, dtype=np.int64), qty, qty]),
        "n_sessions": np.array(n),
    }


def _block_events(
    catalog: Catalog, seed: int, block: int, size: int, days: int, day_p: np.ndarray
) -> list[dict[str, np.ndarray]]:
    """Events of one block of users (block-local user and session numbers)."""
    rng = np.random.default_rng([seed, 1, block])
    taste = rng.dirichlet(np.full(len(CATEGORIES), TASTE_ALPHA), size=size)
    taste *= np.bincount(catalog.category, minlength=len(CATEGORIES)) > 0
    taste /= taste.sum(axis=1, keepdims=True)
    sampler = _Sampler(_item_weights(rng, catalog, size), catalog)
    browse = _browse(rng, catalog, sampler, taste, days, day_p)
    refill = _replenish(rng, catalog, sampler, taste, days)
    refill["session"] = refill["session"] + int(browse["n_sessions"])
    return [browse, refill]


def user_preferences(users: int, items: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """The shop's latent preferences: (user ids, item ids, users x items probabilities that a
    browsing session of the user picks the item), from the same seeded draws as
    :func:`generate_shop`, so a simulated shopper behaves like the generated one."""
    catalog = make_catalog(items, seed)
    block = max(1, min(users, BLOCK_CELLS // items))
    rows = []
    for b, lo in enumerate(range(0, users, block)):
        size = min(block, users - lo)
        rng = np.random.default_rng([seed, 1, b])
        taste = rng.dirichlet(np.full(len(CATEGORIES), TASTE_ALPHA), size=size)
        taste *= np.bincount(catalog.category, minlength=len(CATEGORIES)) > 0
        taste /= taste.sum(axis=1, keepdims=True)
        weights = np.empty((size, items))
        weights[:, catalog.order] = _item_weights(rng, catalog, size)
        within = pd.DataFrame(weights.T).groupby(catalog.category).transform("sum").to_numpy().T
        rows.append(taste[:, catalog.category] * weights / within)
    user_w = max(6, len(str(users)))
    user_ids = [f"u{i:0{user_w}d}" for i in range(users)]
    return user_ids, catalog.frame["item_id"].tolist(), np.vstack(rows)


def _day_weights(days: int, start: date) -> np.ndarray:
    """Relative traffic per day (weekends 25% busier)."""
    weekday = (np.arange(days) + start.weekday()) % 7
    weights = np.where(weekday >= 5, 1.25, 1.0)
    return weights / weights.sum()


def generate_shop(
    users: int, items: int, days: int, seed: int, start: date = date(2026, 1, 1)
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate ``(catalog, events)`` for a synthetic shop (see the module docstring).

    catalog: item_id, title, description, category, brand, price.
    events: user_id, item_id, event_type (view/add_to_cart/purchase), event_at (UTC),
    session_id, price, quantity; sorted by event_at. About ``0.5 * users * days`` events.
    """
    if users < 1 or items < len(CATEGORIES) or days < 1:
        raise ValueError(f"need users >= 1, items >= {len(CATEGORIES)}, days >= 1")
    catalog = make_catalog(items, seed)
    block = max(1, min(users, BLOCK_CELLS // items))
    day_p = _day_weights(days, start)
    parts: list[dict[str, np.ndarray]] = []
    user_offset = session_offset = 0
    for b, lo in enumerate(range(0, users, block)):
        size = min(block, users - lo)
        for part in _block_events(catalog, seed, b, size, days, day_p):
            part["user"] = part["user"] + user_offset
            part["session"] = part["session"] + session_offset
            session_offset += int(part["n_sessions"])
            parts.append(part)
        user_offset += size
    events = _assemble(parts, catalog, users, session_offset, days, start)
    return catalog.frame.copy(), events


def _assemble(
    parts: list[dict[str, np.ndarray]],
    catalog: Catalog,
    users: int,
    sessions: int,
    days: int,
    start: date,
) -> pd.DataFrame:
    """Concatenate block arrays into the events frame, sorted by time."""
    cols = {
        k: np.concatenate([p[k] for p in parts])
        for k in ("user", "item", "type", "time", "session", "quantity")
    }
    seconds = np.clip(np.floor(cols["time"]), 0, days * DAY - 1).astype(np.int64)
    order = np.argsort(seconds, kind="stable")
    epoch = int((pd.Timestamp(start) - pd.Timestamp("1970-01-01")).total_seconds())
    user_w, sess_w = max(6, len(str(users))), max(8, len(str(sessions)))
    user_labels = np.array([f"u{i:0{user_w}d}" for i in range(users)], dtype=object)
    item_labels = catalog.frame["item_id"].to_numpy(dtype=object)
    session = cols["session"][order]
    uniq, inverse = np.unique(session, return_inverse=True)
    sess_labels = np.array([f"s{i:0{sess_w}d}" for i in uniq], dtype=object)
    item = cols["item"][order]
    return pd.DataFrame(
        {
            "user_id": user_labels[cols["user"][order]],
            "item_id": item_labels[item],
            "event_type": EVENT_TYPES[cols["type"][order]],
            "event_at": pd.to_datetime(epoch + seconds[order], unit="s", utc=True),
            "session_id": sess_labels[inverse],
            "price": catalog.price[item].astype(float),
            "quantity": cols["quantity"][order].astype(np.int64),
        }
    )
