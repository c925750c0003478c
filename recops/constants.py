"""Column names and enums shared by every stage (one place, as in recommenders' constants)."""

USER_COL = "user_id"
ITEM_COL = "item_id"
SCORE_COL = "score"
RANK_COL = "rank"
RATING_COL = "rating"
LABEL_COL = "label"
EVENT_TYPE_COL = "event_type"
EVENT_AT_COL = "event_at"
SESSION_COL = "session_id"
PRICE_COL = "price_amount"
QUANTITY_COL = "quantity"
ORDER_COL = "order_id"
TIMESTAMP_COL = "event_timestamp"

EVENT_TYPES = ("view", "add_to_cart", "purchase", "return", "impression", "click")
FEEDBACK_EVENT_TYPES = ("impression", "click")

RAW_SCHEMA = "raw"
RAW_EVENTS = "raw.events"
RAW_ITEMS = "raw.items"
RAW_BATCHES = "raw.batches"
RAW_QUARANTINE = "raw.quarantine"
AUDIT_ERASURES = "raw.erasures"

RAW_EVENT_COLUMNS = (
    "batch_id", "ingested_at", "source", "source_file", "source_row",
    USER_COL, ITEM_COL, EVENT_TYPE_COL, EVENT_AT_COL, SESSION_COL,
    QUANTITY_COL, PRICE_COL, ORDER_COL, "country",
)
RAW_ITEM_COLUMNS = (
    "batch_id", "ingested_at", "source", "source_file", "source_row",
    ITEM_COL, "title", "description", "category", "brand", PRICE_COL,
)

CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
PREVIOUS_ALIAS = "previous"
REJECTED_ALIAS = "rejected"
FEATURE_SERVICE = "ranker_v1"
