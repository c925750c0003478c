"""Time ingestion of UCI Online Retail II (Parquet and CSV) and the synthetic generator.

    uv run python benchmarks/ingest.py            # the full 525,461-line file, 1M synthetic events
    uv run python benchmarks/ingest.py --quick    # a 20,000-line cut, 50k synthetic events

Everything is written under a temporary RECOPS_HOME that is removed afterwards. Prints a table and
the same figures as JSON (seconds, rows per second, peak RSS of the process so far).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from recops.core.settings import Settings
from recops.ingestion import generate_shop, ingest_online_retail

RETAIL_II = Settings().data_dir / "online_retail_ii_2009_2010" / "online_retail_ii_2009_2010.parquet"
QUICK_ROWS = 20_000


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(name: str, rows: int, run: Callable[[], object]) -> dict[str, object]:
    """Run ``run`` once and report its wall time."""
    began = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - began
    out: dict[str, object] = {
        "step": name,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds) if seconds else None,
        "peak_rss_mb": peak_rss_mb(),
    }
    if hasattr(result, "rows_quarantined"):
        out["rows_quarantined"] = result.rows_quarantined  # type: ignore[attr-defined]
    return out


def retail_inputs(work: Path, quick: bool, source: Path) -> tuple[Path, Path, int]:
    """The Parquet file to ingest (the source, or a cut of it) and a CSV copy."""
    frame = pd.read_parquet(source)
    if quick:
        frame = frame.head(QUICK_ROWS)
        parquet = work / "retail_cut.parquet"
        frame.to_parquet(parquet, index=False)
    else:
        parquet = source
    csv = work / "retail.csv"
    frame.to_csv(csv, index=False)
    return parquet, csv, len(frame)


def run(quick: bool, source: Path) -> list[dict[str, object]]:
    """All benchmark steps, each against a fresh warehouse."""
    results = []
    with tempfile.TemporaryDirectory(prefix="recops-bench-") as tmp:
        work = Path(tmp)
        parquet, csv, rows = retail_inputs(work, quick, source)
        for label, path in (("parquet", parquet), ("csv", csv)):
            settings = Settings(home=work / f"home-{label}", profile="embedded")
            results.append(
                timed(
                    f"online_retail_ii {label}",
                    rows,
                    lambda s=settings, p=path: ingest_online_retail(s, p),
                )
            )
        users, days = (1_000, 100) if quick else (20_000, 100)
        holder: dict[str, int] = {}

        def generate() -> None:
            holder["rows"] = len(generate_shop(users, 2_000, days, seed=42)[1])

        step = timed(f"generate_shop users={users} items=2000 days={days}", 0, generate)
        step["rows"] = holder["rows"]
        step["rows_per_second"] = round(holder["rows"] / step["seconds"])  # type: ignore[operator]
        results.append(step)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"a {QUICK_ROWS:,}-line cut")
    parser.add_argument("--source", type=Path, default=RETAIL_II, help="Online Retail II parquet (default: under RECOPS_DATA_DIR)")
    args = parser.parse_args()
    results = run(args.quick, args.source)
    table = Table(title="RecOps ingestion benchmark" + (" (quick)" if args.quick else ""))
    for col in ("step", "rows", "seconds", "rows/s", "peak RSS MB"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for r in results:
        table.add_row(
            str(r["step"]),
            f"{r['rows']:,}",
            f"{r['seconds']:.2f}",
            f"{r['rows_per_second']:,}",
            f"{r['peak_rss_mb']:,}",
        )
    Console().print(table)
    print(json.dumps({"quick": args.quick, "results": results}, indent=2))


if __name__ == "__main__":
    main()
