"""Column names and enums shared by every stage (one place, as in recommenders' constants)."""

from enum import StrEnum

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
FEEDBACK_EVENT_TYPES = ("impression", "click", "add_to_cart", "purchase", "return")
"""What ``POST /feedback`` accepts; ``impression`` there means "seen on screen" (the served-list
log holds the impressions themselves)."""

RAW_SCHEMA = "raw"
RAW_EVENTS = "raw.events"
RAW_ITEMS = "raw.items"
RAW_BATCHES = "raw.batches"
RAW_QUARANTINE = "raw.quarantine"
RAW_SERVED = "raw.served"
AUDIT_ERASURES = "raw.erasures"

RAW_EVENT_COLUMNS = (
    "batch_id", "ingested_at", "source", "source_file", "source_row",
    USER_COL, ITEM_COL, EVENT_TYPE_COL, EVENT_AT_COL, SESSION_COL,
    QUANTITY_COL, PRICE_COL, ORDER_COL, "country", "request_id", "served_rank",
)
RAW_SERVED_COLUMNS = (
    "batch_id", "ingested_at", "source", "source_file", "source_row",
    "request_id", "served_at", "user_key", "model_name", "model_version", "variant", "kind",
    "context_item_id", "k", ITEM_COL, "served_rank", "score", "retrievers",
)
RAW_ITEM_COLUMNS = (
    "batch_id", "ingested_at", "source", "source_file", "source_row",
    ITEM_COL, "title", "description", "category", "brand", PRICE_COL,
)

DATA_DOCS_SITE = "local_site"
"""The GX Data Docs site under ``$RECOPS_HOME/quality/gx/uncommitted/data_docs/``."""

CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
PREVIOUS_ALIAS = "previous"
REJECTED_ALIAS = "rejected"
FEATURE_SERVICE = "ranker_v1"

# what the promotion gate decided for a candidate (XCom, MLflow tags, the DAG's branches)
AWAITING_APPROVAL = "awaiting_approval"
PROMOTED = "promoted"
REJECTED = "rejected"
ALREADY_CHAMPION = "already_champion"
PIPELINE_ACTOR = "recops-pipeline"
PIPELINE_DAG_ID = "recops_pipeline"
ROLLBACK_DAG_ID = "recops_rollback"

# column names that carry the shop's customer id in the sources (ingestion matches them
# case-, space- and underscore-insensitively; erasure finds a customer in quarantine by them)
EVENT_USER_ALIASES = ("user_id", "user", "customer_id")
RETAIL_CUSTOMER_ALIASES = ("Customer ID", "CustomerID")
USER_ID_FIELD_ALIASES = (*EVENT_USER_ALIASES, *RETAIL_CUSTOMER_ALIASES)


class Source(StrEnum):
    """Formats of a run's input file (``none``: use what the warehouse holds)."""

    none = "none"
    events = "events"
    online_retail = "online_retail"
    movielens = "movielens"
    feedback = "feedback"
