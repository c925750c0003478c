"""Ingestion: loaders per source format into the batch-tracked raw tables, plus the synthetic shop.

Public API (the CLI and the Airflow tasks call these):

- :func:`ingest_events`, :func:`ingest_online_retail`, :func:`ingest_movielens`,
  :func:`ingest_feedback` -> :class:`IngestSummary`
- :func:`newest_event_at` (newest event of a generic events file)
- :func:`generate_shop`, :func:`write_shop` (synthetic data)
- :class:`IngestError` (a file that cannot be read at all; nothing is loaded) and its
  :class:`BatchWriteError` (the warehouse write failed and was rolled back; a retry may succeed)
"""

from recops.ingestion.errors import BatchWriteError, IngestError
from recops.ingestion.events import ingest_events, ingest_feedback, newest_event_at
from recops.ingestion.movielens import ingest_movielens
from recops.ingestion.online_retail import ingest_online_retail
from recops.ingestion.shop_files import write_shop
from recops.ingestion.summary import IngestSummary
from recops.ingestion.synthetic import generate_shop

__all__ = [
    "BatchWriteError",
    "IngestError",
    "IngestSummary",
    "generate_shop",
    "ingest_events",
    "ingest_feedback",
    "ingest_movielens",
    "ingest_online_retail",
    "newest_event_at",
    "write_shop",
]
