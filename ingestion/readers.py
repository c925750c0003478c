"""Read CSV, Parquet, Excel and JSON-lines files into chunks that remember where each row came from.

``source_row`` numbering (what ``raw.*.source_row`` and ``raw.quarantine.source_row`` hold):

- CSV / delimited text: the 1-based physical line on which the record starts; the header is line 1,
  so the first data record is line 2 (headerless files such as MovieLens ``u.data`` start at 1).
  Blank lines are skipped but still counted, so numbers always match what an editor shows.
- Excel: the worksheet row number (header = row 1, first data row = 2), i.e. what Excel shows.
- Parquet: the row's ordinal in the file, 1-based (there is no header row).
- JSON lines: the 1-based line number; blank lines are skipped but counted.

Structural failures found while reading (a CSV record with the wrong number of fields, a JSON line
that is not an object) become *rejects*; a file that cannot be read at all raises ``IngestError``.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recops.ingestion.errors import IngestError

CHUNK_ROWS = 500_000
REJECT_COLUMNS = ["source_row", "field", "reason", "raw_record"]
CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass
class Chunk:
    """Rows read from one file (or worksheet): values as read, plus where each row came from."""

    source_file: str
    frame: pd.DataFrame
    rows: np.ndarray
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))
    records: list[str] | None = None  # JSON lines: the original text of each frame row

    def raw_records(self, mask: np.ndarray) -> list[str]:
        """JSON text of the rows selected by ``mask`` (for ``raw.quarantine.raw_record``)."""
        if self.records is not None:
            return [self.records[i] for i in np.flatnonzero(mask)]
        return records_json(self.frame.loc[mask])


@dataclass
class SourceTable:
    """An opened input file: its column names (known before reading rows) and its chunks."""

    path: Path
    columns: list[str]
    _chunks: Callable[[], Iterator[Chunk]]

    def chunks(self) -> Iterator[Chunk]:
        """Yield the file's rows chunk by chunk (at least one chunk, possibly empty)."""
        yield from self._chunks()


def records_json(frame: pd.DataFrame) -> list[str]:
    """One JSON object per row of ``frame`` (NaN -> null, timestamps ISO)."""
    if frame.empty:
        return []
    text = frame.to_json(
        orient="records", lines=True, date_format="iso", force_ascii=False, default_handler=str
    )
    return text.rstrip("\n").split("\n")


def rejects_frame(rows: list[tuple[int, str | None, str, str]]) -> pd.DataFrame:
    """Build a rejects frame from ``(source_row, field, reason, raw_record)`` tuples."""
    return pd.DataFrame(rows, columns=REJECT_COLUMNS)


def open_table(path: Path, *, chunk_rows: int = CHUNK_ROWS) -> SourceTable:
    """Open ``path`` by extension: .csv/.tsv/.txt, .parquet/.pq, .xlsx/.xlsm, .jsonl/.ndjson."""
    path = Path(path).resolve()
    if not path.is_file():
        raise IngestError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return open_delimited(
            path, delimiter="\t" if suffix == ".tsv" else ",", chunk_rows=chunk_rows
        )
    if suffix in PARQUET_SUFFIXES:
        return _open_parquet(path, chunk_rows)
    if suffix in EXCEL_SUFFIXES:
        return _open_excel(path)
    if suffix in JSONL_SUFFIXES:
        return _open_jsonl(path, chunk_rows)
    known = sorted(CSV_SUFFIXES | PARQUET_SUFFIXES | EXCEL_SUFFIXES | JSONL_SUFFIXES)
    raise IngestError(
        f"{path}: unsupported file type {suffix or '(none)'!r}; expected one of {known}"
    )


# --- delimited text ---------------------------------------------------------------------------
def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file decodes as UTF-8, else ``latin-1`` (never fails)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 22):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8-sig"


def unique_names(names: list[str]) -> list[str]:
    """Strip column names and make duplicates unique (``a``, ``a.1``)."""
    seen: dict[str, int] = {}
    out = []
    for raw in names:
        name = str(raw).strip()
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


def open_delimited(
    path: Path,
    *,
    delimiter: str = ",",
    names: list[str] | None = None,
    encoding: str | None = None,
    quoting: int = csv.QUOTE_MINIMAL,
    chunk_rows: int = CHUNK_ROWS,
) -> SourceTable:
    """Open delimited text; ``names`` given means the file has no header line."""
    path = Path(path).resolve()
    encoding = encoding or detect_encoding(path)
    if names is None:
        with path.open(newline="", encoding=encoding) as fh:
            try:
                header = next(csv.reader(fh, delimiter=delimiter, quoting=quoting), None)
            except csv.Error as exc:
                raise IngestError(f"{path}: cannot read the header line: {exc}") from exc
        if not header or not any(h.strip() for h in header):
            raise IngestError(f"{path}: empty file or blank header line; expected a header row")
        columns = unique_names(header)
    else:
        columns = list(names)

    def chunks() -> Iterator[Chunk]:
        return _iter_delimited(
            path,
            columns,
            encoding,
            delimiter,
            quoting,
            has_header=names is None,
            chunk_rows=chunk_rows,
        )

    return SourceTable(path, columns, chunks)


def _iter_delimited(
    path: Path,
    columns: list[str],
    encoding: str,
    delimiter: str,
    quoting: int,
    *,
    has_header: bool,
    chunk_rows: int,
) -> Iterator[Chunk]:
    """Parse records with the csv module, keeping each record's starting line number.

    A record with extra fields that are all empty (a trailing delimiter) is accepted; any other
    field-count mismatch is rejected as ``wrong_column_count``.
    """
    width = len(columns)
    good: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[int, str | None, str, str]] = []
    with path.open(newline="", encoding=encoding) as fh:
        reader = csv.reader(fh, delimiter=delimiter, quoting=quoting)
        if has_header:
            next(reader, None)
        prev = reader.line_num
        try:
            for rec in reader:
                start, prev = prev + 1, reader.line_num
                size = len(rec)
                if size == width:
                    good.append(rec)
                    lines.append(start)
                elif size == 0:
                    continue
                elif size > width and not any(rec[width:]):
                    good.append(rec[:width])
                    lines.append(start)
                else:
                    raw = json.dumps(rec, ensure_ascii=False)
                    bad.append((start, None, "wrong_column_count", raw))
                if len(good) >= chunk_rows:
                    yield _text_chunk(path, columns, good, lines, bad)
                    good, lines, bad = [], [], []
        except csv.Error as exc:
            raise IngestError(f"{path}: line {reader.line_num}: {exc}") from exc
    yield _text_chunk(path, columns, good, lines, bad)


def _text_chunk(
    path: Path,
    columns: list[str],
    good: list[list[str]],
    lines: list[int],
    bad: list[tuple[int, str | None, str, str]],
) -> Chunk:
    frame = pd.DataFrame(good, columns=columns, dtype=object)
    return Chunk(str(path), frame, np.asarray(lines, dtype=np.int64), rejects_frame(bad))


# --- parquet ----------------------------------------------------------------------------------
def _open_parquet(path: Path, chunk_rows: int) -> SourceTable:
    """Open a Parquet file; rows are numbered by their 1-based ordinal."""
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise IngestError(f"{path}: not a readable Parquet file: {exc}") from exc
    columns = list(pfile.schema_arrow.names)

    def chunks() -> Iterator[Chunk]:
        offset = 0
        try:
            for batch in pfile.iter_batches(batch_size=chunk_rows):
                frame = batch.to_pandas()
                rows = np.arange(offset + 1, offset + len(frame) + 1, dtype=np.int64)
                offset += len(frame)
                yield Chunk(str(path), frame, rows)
        except Exception as exc:
            raise IngestError(
                f"{path}: cannot read Parquet rows after row {offset}: {exc}"
            ) from exc
        if offset == 0:
            empty = pfile.schema_arrow.empty_table().to_pandas()
            yield Chunk(str(path), empty, np.zeros(0, dtype=np.int64))

    return SourceTable(path, columns, chunks)


# --- excel ------------------------------------------------------------------------------------
def _open_excel(path: Path) -> SourceTable:
    """Open a workbook; every worksheet must carry the same header.

    With several worksheets (the UCI Online Retail II workbook has one per year) each row's
    ``source_file`` is ``<path>#<sheet name>``.
    """
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, InvalidFileException, KeyError ...
        raise IngestError(f"{path}: not a readable Excel workbook: {exc}") from exc
    try:
        sheets = [_read_sheet(ws) for ws in book.worksheets]
    finally:
        book.close()
    sheets = [s for s in sheets if s is not None]
    if not sheets:
        raise IngestError(f"{path}: the workbook has no worksheet with a header row")
    columns = sheets[0][1]
    for name, cols, _, _ in sheets[1:]:
        if cols != columns:
            raise IngestError(
                f"{path}: worksheet {name!r} has columns {cols}, the first worksheet {columns}"
            )
    multi = len(sheets) > 1

    def chunks() -> Iterator[Chunk]:
        for name, cols, values, rows in sheets:
            source = f"{path}#{name}" if multi else str(path)
            frame = pd.DataFrame(values, columns=cols, dtype=object)
            yield Chunk(source, frame, np.asarray(rows, dtype=np.int64))

    return SourceTable(path, columns, chunks)


def _read_sheet(ws: object) -> tuple[str, list[str], list[list[object]], list[int]] | None:
    """Header, data rows and their worksheet row numbers; None for an empty sheet."""
    it = ws.iter_rows(values_only=True)  # type: ignore[attr-defined]
    header = next(it, None)
    if header is None:
        return None
    keep = [i for i, h in enumerate(header) if h is not None and str(h).strip()]
    if not keep:
        return None
    columns = unique_names([str(header[i]) for i in keep])
    values: list[list[object]] = []
    rows: list[int] = []
    for number, row in enumerate(it, start=2):
        picked = [row[i] if i < len(row) else None for i in keep]
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in picked):
            continue
        values.append(picked)
        rows.append(number)
    return ws.title, columns, values, rows  # type: ignore[attr-defined]


# --- json lines -------------------------------------------------------------------------------
def _open_jsonl(path: Path, chunk_rows: int) -> SourceTable:
    """Open JSON lines; columns are the union of keys, so they are known only after reading."""
    encoding = detect_encoding(path)
    parsed = list(_iter_jsonl(path, encoding, chunk_rows))
    columns: list[str] = []
    for chunk in parsed:
        columns.extend(c for c in chunk.frame.columns if c not in columns)

    def chunks() -> Iterator[Chunk]:
        for chunk in parsed:
            yield Chunk(
                chunk.source_file,
                chunk.frame.reindex(columns=columns),
                chunk.rows,
                chunk.rejects,
                chunk.records,
            )

    return SourceTable(path, columns, chunks)


def _iter_jsonl(path: Path, encoding: str, chunk_rows: int) -> Iterator[Chunk]:
    """Parse one JSON object per line; anything else is rejected as ``malformed_json``."""
    objs: list[dict[str, object]] = []
    texts: list[str] = []
    lines: list[int] = []
    bad: list[tuple[int, str | None, str, str]] = []
    with path.open(encoding=encoding) as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                bad.append((number, None, "malformed_json", json.dumps(text, ensure_ascii=False)))
                continue
            objs.append(obj)
            texts.append(text)
            lines.append(number)
            if len(objs) >= chunk_rows:
                yield _json_chunk(path, objs, texts, lines, bad)
                objs, texts, lines, bad = [], [], [], []
    yield _json_chunk(path, objs, texts, lines, bad)


def _json_chunk(
    path: Path,
    objs: list[dict[str, object]],
    texts: list[str],
    lines: list[int],
    bad: list[tuple[int, str | None, str, str]],
) -> Chunk:
    frame = pd.DataFrame.from_records(objs) if objs else pd.DataFrame()
    frame = frame.astype(object)
    return Chunk(str(path), frame, np.asarray(lines, dtype=np.int64), rejects_frame(bad), texts)
