"""Fixtures for the ingestion tests: a throw-away RECOPS_HOME and small files cut at test time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from recops.core.settings import Settings
from recops.core.warehouse import Warehouse

ORIGINAL_NAMES = {"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with an empty RECOPS_HOME under tmp_path (embedded DuckDB warehouse)."""
    return Settings(home=tmp_path / "home", profile="embedded")


@pytest.fixture
def query(settings: Settings) -> Callable[[str], pd.DataFrame]:
    """Run a read query against the test warehouse."""

    def run(sql: str) -> pd.DataFrame:
        with Warehouse(settings, read_only=True) as wh:
            return wh.query_df(sql)

    return run


@pytest.fixture(scope="session")
def retail_ii_path(dataset) -> Path:
    """The shared UCI Online Retail II 2009-2010 file (fails in CI when absent)."""
    return dataset("online_retail_ii_2009_2010/online_retail_ii_2009_2010.parquet")


@pytest.fixture(scope="session")
def movielens_dir(dataset) -> Path:
    """The shared MovieLens 100K folder (fails in CI when absent)."""
    return dataset("movielens_100k")


@pytest.fixture(scope="session")
def retail_cut(retail_ii_path: Path) -> pd.DataFrame:
    """~300 real Online Retail II lines: the first 240 plus returns, guest lines, non-product
    codes, zero prices, negative adjustments and bad-debt ("A") invoices (II layout, file order)."""
    full = pd.read_parquet(retail_ii_path)
    invoice, code = full["Invoice"], full["StockCode"]
    returns = invoice.str.startswith("C")
    picks = [
        full.index[:240],
        full.index[returns][:15],
        full.index[full["Customer ID"].isna() & ~returns & (full["Price"] > 0)][:10],
        full.index[~code.str.match(r"\d{5}") & ~returns][:10],
        full.index[~returns & (full["Price"] == 0)][:5],
        full.index[~returns & (full["Quantity"] <= 0)][:5],
        full.index[invoice.str.startswith("A")],
    ]
    index = sorted(set().union(*[set(p) for p in picks]))
    return full.loc[index].reset_index(drop=True)


@pytest.fixture
def write_retail(tmp_path: Path) -> Callable[[pd.DataFrame, str, str], Path]:
    """Write a cut in a layout ('ii' | 'original') and format ('csv' | 'xlsx' | 'parquet').

    Dates: ISO text in the II CSV / Parquet, ``m/d/Y H:M`` text in the original CSV, a timestamp
    column in the original Parquet, date cells in Excel. Customer ids stay floats (``12345.0`` in
    CSV).
    """

    def write(frame: pd.DataFrame, layout: str, fmt: str) -> Path:
        out = frame.copy()
        if layout == "original":
            out = out.rename(columns=ORIGINAL_NAMES)
        stamps = pd.to_datetime(out["InvoiceDate"])
        if fmt == "xlsx":  # as in the UCI workbooks: date cells, numeric codes as numbers
            out["InvoiceDate"] = stamps
            for col in (out.columns[0], "StockCode"):
                out[col] = [int(v) if v.isdigit() else v for v in out[col]]
        elif layout == "original" and fmt == "parquet":  # a timestamp column, not text
            out["InvoiceDate"] = stamps
        elif layout == "original":
            out["InvoiceDate"] = [
                f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}" for t in stamps
            ]
        path = tmp_path / f"retail_{layout}.{fmt}"
        if fmt == "csv":
            out.to_csv(path, index=False)
        elif fmt == "xlsx":
            out.to_excel(path, index=False)
        else:
            out.to_parquet(path, index=False)
        return path

    return write
