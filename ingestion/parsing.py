"""Vectorised field parsing and row checks shared by the loaders.

Each parser returns the parsed values plus ``missing`` / ``invalid`` masks; ``RowChecks`` records,
per row, the *first* failed check (field + reason), so a row is quarantined once under one reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from recops.core import privacy
from recops.ingestion.errors import IngestError
from recops.ingestion.readers import REJECT_COLUMNS, Chunk

QUARANTINE_COLUMNS = ["source_file", *REJECT_COLUMNS]
_INTEGRAL_TEXT = r"^(-?\d+)\.0+$"


# --- columns ----------------------------------------------------------------------------------
column_key = privacy.column_key  # one definition: erasure matches columns the same way


def resolve_columns(
    path: Path,
    columns: Sequence[str],
    required: dict[str, Sequence[str]],
    optional: dict[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """Map logical names to the file's column names, accepting any listed alias.

    Raises ``IngestError`` naming the file and every missing required column.
    """
    by_key = {column_key(c): c for c in columns}
    found: dict[str, str] = {}
    missing: list[str] = []
    for logical, aliases in {**required, **(optional or {})}.items():
        hit = next((by_key[column_key(a)] for a in aliases if column_key(a) in by_key), None)
        if hit is not None:
            found[logical] = hit
        elif logical in required:
            missing.append(" or ".join(repr(a) for a in aliases))
    if missing:
        raise IngestError(
            f"{path}: missing required column(s) {', '.join(missing)}; found {list(columns)}"
        )
    return found


# --- values -----------------------------------------------------------------------------------
TEXT = "string[pyarrow]"


def as_text(values: pd.Series) -> pd.Series:
    """Stripped text (pyarrow strings), NA where null or blank; whole floats lose their ``.0``."""
    if values.dtype == object and ptypes.infer_dtype(values, skipna=True) not in (
        "string",
        "empty",
    ):
        values = values.map(_cell_text, na_action="ignore")
    text = values.astype(TEXT).str.strip()
    return text.where((text != "").fillna(False))


def _cell_text(value: object) -> object:
    """One cell of a mixed object column as text (a whole float ``12345.0`` -> ``"12345"``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def blank_mask(values: pd.Series) -> np.ndarray:
    """True where a value is null or an empty / whitespace-only string."""
    if ptypes.is_numeric_dtype(values.dtype) or ptypes.is_datetime64_any_dtype(values.dtype):
        return values.isna().to_numpy()
    return as_text(values).isna().to_numpy()


def clean_text(values: pd.Series) -> pd.Series:
    """Stripped text, NA where blank (pyarrow strings)."""
    return as_text(values)


def normalize_id(values: pd.Series) -> pd.Series:
    """Identifiers as text: ``12345.0`` (float or text) -> ``"12345"``; blank -> NA."""
    if ptypes.is_float_dtype(values.dtype):
        number = values.to_numpy(dtype=float, na_value=np.nan)
        whole = np.isfinite(number) & (number % 1 == 0)
        out = values.astype(object)
        out[whole] = values[whole].astype("int64").astype(str)
        return out.astype(TEXT).where(np.isfinite(number))
    if ptypes.is_numeric_dtype(values.dtype) or ptypes.is_bool_dtype(values.dtype):
        return values.astype(TEXT)
    return _drop_integral_zeros(as_text(values))


def _drop_integral_zeros(text: pd.Series) -> pd.Series:
    """``"12345.0"`` -> ``"12345"`` (vectorised in pyarrow; pandas would loop in Python here)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fixed = pc.replace_substring_regex(
        pa.array(text.array), pattern=_INTEGRAL_TEXT, replacement=r"\1"
    )
    return pd.Series(pd.arrays.ArrowStringArray(fixed), index=text.index)


def parse_number(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Floats plus ``missing`` and ``invalid`` (non-numeric or non-finite) masks."""
    if ptypes.is_numeric_dtype(values.dtype) and not ptypes.is_bool_dtype(values.dtype):
        parsed = values.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(parsed)
    else:
        text = as_text(values)
        missing = text.isna().to_numpy()
        number = pd.to_numeric(text.astype(object), errors="coerce")
        parsed = np.asarray(number, dtype=float)
    invalid = ~missing & ~np.isfinite(parsed)
    parsed[missing] = np.nan
    return parsed, missing, invalid


def parse_timestamp(
    values: pd.Series, formats: Iterable[str] = (), *, unit: str | None = None
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Naive-UTC timestamps plus ``missing`` and ``invalid`` masks.

    Accepts datetime columns (tz-aware ones are converted to UTC; naive ones are taken as UTC),
    ISO 8601 text (any offset), then each of ``formats`` for what ISO could not parse, and numbers
    as epoch seconds (or ``unit``).
    """
    missing = blank_mask(values)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif ptypes.is_datetime64_dtype(values.dtype):
        parsed = values.astype("datetime64[ns]")
    elif ptypes.is_numeric_dtype(values.dtype) and not ptypes.is_bool_dtype(values.dtype):
        parsed = _from_epoch(values, unit or "s")
    else:
        parsed = _parse_object_timestamps(values, missing, tuple(formats), unit)
    parsed = pd.Series(parsed, index=values.index).astype("datetime64[ns]")
    invalid = ~missing & parsed.isna().to_numpy()
    return parsed, missing, invalid


def _from_epoch(values: pd.Series, unit: str) -> pd.Series:
    number = pd.to_numeric(values, errors="coerce")
    return pd.to_datetime(number, unit=unit, errors="coerce")


def _parse_object_timestamps(
    values: pd.Series, missing: np.ndarray, formats: tuple[str, ...], unit: str | None
) -> pd.Series:
    """Parse a text / mixed column: datetime cells as is, text by ISO 8601 then ``formats``."""
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if values.dtype == object and ptypes.infer_dtype(values, skipna=True) not in (
        "string",
        "empty",
    ):
        is_dt = np.fromiter(
            (isinstance(v, datetime) for v in values), dtype=bool, count=len(values)
        )
        if is_dt.any():
            stamps = pd.to_datetime(values[is_dt].tolist(), utc=True, errors="coerce")
            parsed[is_dt] = stamps.tz_convert("UTC").tz_localize(None)
    else:
        is_dt = np.zeros(len(values), dtype=bool)
    todo = ~missing & ~is_dt
    if not todo.any():
        return parsed
    text = as_text(values[todo])
    if unit is not None:
        parsed[todo] = _from_epoch(text, unit).to_numpy()
        return parsed
    fast = _arrow_iso(text)
    if fast is not None:
        parsed[todo] = fast
        return parsed
    parsed[todo] = _to_utc_naive(pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce"))
    for fmt in formats:
        left = todo & parsed.isna().to_numpy()
        if not left.any():
            break
        stamps = pd.to_datetime(as_text(values[left]), format=fmt, utc=True, errors="coerce")
        parsed[left] = _to_utc_naive(stamps)
    return parsed


def _arrow_iso(text: pd.Series) -> np.ndarray | None:
    """Fast path: pyarrow's ISO 8601 cast when *every* value has an offset, or none has.

    Returns naive-UTC datetime64 values, or None when any value needs the slower pandas parser.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pa.array(text.array)
    for kind in (pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
        try:
            stamps = pc.cast(values, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if kind.tz is not None:
            stamps = stamps.cast(pa.timestamp("ns"))  # same instant, tz dropped: naive UTC
        return stamps.to_numpy(zero_copy_only=False)
    return None


def _to_utc_naive(stamps: pd.Series) -> np.ndarray:
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def parse_enum(
    values: pd.Series, allowed: Sequence[str]
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Lower-cased stripped text plus ``missing`` and ``unknown`` (not in ``allowed``) masks."""
    text = as_text(values).str.lower()
    missing = text.isna().to_numpy()
    unknown = ~missing & ~text.isin(list(allowed)).to_numpy(dtype=bool)
    return text, missing, unknown


# --- row checks -------------------------------------------------------------------------------
class RowChecks:
    """Per-row first failure: ``flag`` only marks rows that have not failed an earlier check."""

    def __init__(self, size: int) -> None:
        self._code = np.zeros(size, dtype=np.int16)
        self._labels: list[tuple[str | None, str]] = []

    def flag(self, mask: np.ndarray | pd.Series, field: str | None, reason: str) -> None:
        """Mark rows in ``mask`` (not yet failed) as failing ``field`` with ``reason``."""
        hit = np.asarray(mask, dtype=bool) & (self._code == 0)
        if not hit.any():
            return
        label = (field, reason)
        if label not in self._labels:
            self._labels.append(label)
        self._code[hit] = self._labels.index(label) + 1

    @property
    def ok(self) -> np.ndarray:
        """Rows that passed every check so far."""
        return self._code == 0

    def quarantine(self, chunk: Chunk) -> pd.DataFrame:
        """Quarantine rows (``QUARANTINE_COLUMNS``) for the failed rows of ``chunk``."""
        bad = ~self.ok
        if not bad.any():
            return empty_quarantine()
        codes = self._code[bad] - 1
        fields = np.array([f for f, _ in self._labels], dtype=object)[codes]
        reasons = np.array([r for _, r in self._labels], dtype=object)[codes]
        return pd.DataFrame(
            {
                "source_file": chunk.source_file,
                "source_row": chunk.rows[bad],
                "field": fields,
                "reason": reasons,
                "raw_record": chunk.raw_records(bad),
            }
        )


def empty_quarantine() -> pd.DataFrame:
    """A quarantine frame with no rows."""
    return pd.DataFrame(columns=QUARANTINE_COLUMNS)


def reader_rejects(chunk: Chunk) -> pd.DataFrame:
    """The chunk's structural rejects as quarantine rows."""
    if chunk.rejects.empty:
        return empty_quarantine()
    out = chunk.rejects.copy()
    out.insert(0, "source_file", chunk.source_file)
    return out[QUARANTINE_COLUMNS]


def concat_frames(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """Concatenate non-empty frames (or an empty frame with ``columns``)."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)
