"""MovieLens 100K (``u.data``, ``u.item``, ``u.genre``) as an implicit-feedback shop.

- ``u.data`` (tab-separated user, item, rating, unix seconds; no header): one event per line;
  rating >= 4 -> ``purchase``, rating < 4 -> ``view``; ``quantity`` 1, no price, no session.
  ``source_row`` = the line number (1-based). Checks: wrong_column_count, missing_item_id,
  invalid_rating (not a number in 1..5), missing_event_at, invalid_event_at.
- ``u.item`` (pipe-separated, latin-1: id|title|release|video release|IMDb url|19 genre flags):
  one ``raw.items`` row per line; ``category`` = the first flagged genre (in ``u.genre`` order),
  ``description`` = every flagged genre joined by ", ". Checks: wrong_column_count, missing_item_id.
- ``u.genre`` (name|index) names the flags; it is a lookup, not input records.

The batch id covers the three files; ``rows_in`` counts ``u.data`` plus ``u.item`` lines.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from recops.core.settings import Settings
from recops.ingestion.batch import BatchData, existing_files, run_batch
from recops.ingestion.errors import IngestError
from recops.ingestion.parsing import (
    RowChecks,
    clean_text,
    concat_frames,
    normalize_id,
    parse_number,
    parse_timestamp,
    reader_rejects,
)
from recops.ingestion.readers import open_delimited
from recops.ingestion.summary import IngestSummary

DATA_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
ITEM_FIXED = ["movie_id", "title", "release_date", "video_release_date", "imdb_url"]
PURCHASE_RATING = 4
SOURCE = "movielens"


def ingest_movielens(
    settings: Settings, dir: Path, *, ingested_at: datetime | None = None
) -> IngestSummary:
    """Load a MovieLens 100K directory into ``raw.events`` and ``raw.items``."""
    root = Path(dir).resolve()
    if not root.is_dir():
        raise IngestError(f"{root}: not a directory (expected the MovieLens 100K folder)")
    files = existing_files([root / "u.data", root / "u.item", root / "u.genre"])
    return run_batch(
        settings,
        kind=SOURCE,
        source=SOURCE,
        files=files,
        build=lambda: parse_movielens(*files),
        ingested_at=ingested_at,
    )


def read_genres(path: Path) -> list[str]:
    """Genre names ordered by their flag index (``u.genre``: ``name|index``)."""
    pairs: list[tuple[int, str]] = []
    with path.open(encoding="latin-1", newline="") as fh:
        for number, rec in enumerate(csv.reader(fh, delimiter="|"), start=1):
            if not rec or not "".join(rec).strip():
                continue
            if len(rec) != 2 or not rec[1].strip().isdigit():
                raise IngestError(f"{path}: line {number} is not 'name|index': {rec!r}")
            pairs.append((int(rec[1]), rec[0].strip()))
    if not pairs:
        raise IngestError(f"{path}: no genres")
    return [name for _, name in sorted(pairs)]


def parse_movielens(data_path: Path, item_path: Path, genre_path: Path) -> BatchData:
    """Parse the three files into event, item and quarantine rows."""
    genres = read_genres(genre_path)
    events, ev_quarantine, ev_in = _parse_ratings(data_path)
    items, it_quarantine, it_in = _parse_items(item_path, genres)
    quarantine = concat_frames([ev_quarantine, it_quarantine], ev_quarantine.columns)
    return BatchData(events, items, quarantine, ev_in + it_in, len(events) + len(items))


def _parse_ratings(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    table = open_delimited(
        path, delimiter="\t", names=DATA_COLUMNS, encoding="latin-1", quoting=csv.QUOTE_NONE
    )
    frames, quarantine, rows_in = [], [], 0
    for chunk in table.chunks():
        col = chunk.frame
        checks = RowChecks(len(col))
        item_id = normalize_id(col["item_id"])
        checks.flag(item_id.isna().to_numpy(), "item_id", "missing_item_id")
        rating, missing, invalid = parse_number(col["rating"])
        bad_rating = missing | invalid | ~np.isin(rating, [1, 2, 3, 4, 5])
        checks.flag(bad_rating, "rating", "invalid_rating")
        event_at, missing_at, invalid_at = parse_timestamp(col["timestamp"], unit="s")
        checks.flag(missing_at, "timestamp", "missing_event_at")
        checks.flag(invalid_at, "timestamp", "invalid_event_at")
        frame = pd.DataFrame(
            {
                "source_file": chunk.source_file,
                "source_row": chunk.rows,
                "user_id": normalize_id(col["user_id"]),
                "item_id": item_id,
                "event_type": np.where(rating >= PURCHASE_RATING, "purchase", "view").astype(
                    object
                ),
                "event_at": event_at,
                "quantity": 1.0,
            }
        )
        frames.append(frame.loc[checks.ok])
        quarantine.extend([reader_rejects(chunk), checks.quarantine(chunk)])
        rows_in += len(col) + len(chunk.rejects)
    return concat_frames(frames, []), concat_frames(quarantine, quarantine[0].columns), rows_in


def _parse_items(path: Path, genres: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    names = ITEM_FIXED + [f"genre_{i}" for i in range(len(genres))]
    table = open_delimited(
        path, delimiter="|", names=names, encoding="latin-1", quoting=csv.QUOTE_NONE
    )
    frames, quarantine, rows_in = [], [], 0
    for chunk in table.chunks():
        col = chunk.frame
        checks = RowChecks(len(col))
        item_id = normalize_id(col["movie_id"])
        checks.flag(item_id.isna().to_numpy(), "movie_id", "missing_item_id")
        flags = col[names[len(ITEM_FIXED) :]].apply(lambda s: s.str.strip() == "1").to_numpy()
        frame = pd.DataFrame(
            {
                "source_file": chunk.source_file,
                "source_row": chunk.rows,
                "item_id": item_id,
                "title": clean_text(col["title"]),
                "description": _joined_genres(flags, genres),
                "category": _first_genre(flags, genres),
            }
        )
        frames.append(frame.loc[checks.ok])
        quarantine.extend([reader_rejects(chunk), checks.quarantine(chunk)])
        rows_in += len(col) + len(chunk.rejects)
    return concat_frames(frames, []), concat_frames(quarantine, quarantine[0].columns), rows_in


def _first_genre(flags: np.ndarray, genres: list[str]) -> list[str | None]:
    """The first flagged genre of each row (None when no flag is set)."""
    if flags.shape[0] == 0:
        return []
    first = flags.argmax(axis=1)
    return [genres[i] if row.any() else None for i, row in zip(first, flags, strict=True)]


def _joined_genres(flags: np.ndarray, genres: list[str]) -> list[str | None]:
    """Every flagged genre of each row, joined by ", "."""
    names = np.array(genres, dtype=object)
    return [", ".join(names[row]) or None for row in flags]


def newest_rating_at(dir: Path) -> datetime:
    """The newest rating time (naive UTC) of a MovieLens 100K folder."""
    stamps = pd.read_csv(Path(dir) / "u.data", sep="\t", header=None, usecols=[3])[3]
    return pd.Timestamp(int(stamps.max()), unit="s").to_pydatetime()
