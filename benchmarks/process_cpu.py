"""Where a command's CPU time goes, by kind of process (a whole-pipeline run, `feast apply`, an
Airflow task process, the API, ...): how the suite's time was taken apart.

    uv run python benchmarks/process_cpu.py -- make test         # the whole suite (about 15 min)
    uv run python benchmarks/process_cpu.py --quick              # `recops --help`, to try it out

Samples every process of the machine from ``/proc`` (every 0.3 s) while the command runs and keeps
each process's last user + system CPU time, so a process that lives less than a sample is missed
and each one's last 0.3 s may be; processes already running count only what they use meanwhile.
Prints a table and the same figures as JSON, with the machine's busy share over the command
(``/proc/stat``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

TICK = os.sysconf("SC_CLK_TCK")
KINDS = (  # (substring of the command line, kind): the first that matches
    ("recops.app.dag_runner", "recops run: the DAG run (dag.test)"),
    ("bin/feast apply", "feast apply"),
    ("airflow db migrate", "airflow db migrate"),
    ("airflow worker --", "Airflow task process"),
    ("celery", "Celery worker"),
    ("airflow scheduler", "Airflow scheduler"),
    ("airflow api-server", "Airflow api-server"),
    ("airflow dag-processor", "Airflow dag-processor"),
    ("airflow triggerer", "Airflow triggerer"),
    ("recops serve", "recops serve (API)"),
    ("bin/recops", "recops CLI (other commands)"),
    ("postgres: ", "PostgreSQL"),
    ("bin/postgres", "PostgreSQL"),
    ("huey", "MLflow server job workers"),
    ("mlflow server", "MLflow server"),
    ("mlflow.server", "MLflow server"),
    ("chrom", "Chromium"),
    ("exec(eval(sys.stdin.readline()))", "pytest-xdist worker (in-process tests)"),
    ("pytest", "pytest"),
)


def kind_of(cmdline: str) -> str:
    return next((kind for needle, kind in KINDS if needle in cmdline), "other")


def busy_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the machine since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def sample_once(seen: dict[tuple[str, str], list]) -> None:
    """Set ``[cmdline, cpu seconds]`` per (pid, start time) of every process now running."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            rest = stat[stat.rfind(")") + 2 :].split()
            cpu, key = (int(rest[11]) + int(rest[12])) / TICK, (pid, rest[19])
            if key not in seen:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                seen[key] = [raw.replace(b"\0", b" ").decode(errors="replace"), cpu]
            seen[key][1] = cpu
        except (OSError, IndexError, ValueError):  # the process ended meanwhile
            continue


def sample(seen: dict[tuple[str, str], list], stop: threading.Event) -> None:
    while not stop.is_set():
        sample_once(seen)
        stop.wait(0.3)


def measure(command: list[str]) -> dict[str, object]:
    baseline: dict[tuple[str, str], list] = {}
    sample_once(baseline)  # what the processes already running had used before the command
    seen: dict[tuple[str, str], list] = {}
    stop = threading.Event()
    before, started = busy_ticks(), time.perf_counter()
    with open(os.devnull, "wb") as quiet:
        sampler = threading.Thread(target=sample, args=(seen, stop), daemon=True)
        sampler.start()
        try:
            returncode = subprocess.run(command, stdout=quiet, stderr=subprocess.STDOUT, check=False).returncode
        finally:
            stop.set()
            sampler.join()
    after, seconds = busy_ticks(), time.perf_counter() - started
    cpu, count = Counter(), Counter()
    own = str(os.getpid())
    for key, (cmdline, used) in seen.items():
        used -= baseline.get(key, [None, 0.0])[1]
        if key[0] != own and used > 0:
            cpu[kind_of(cmdline)] += used
            count[kind_of(cmdline)] += 1
    return {
        "command": command, "returncode": returncode, "seconds": round(seconds, 1),
        "busy_share": round((after[0] - before[0]) / max(after[1] - before[1], 1), 3),
        "cpu_seconds": round(sum(cpu.values()), 1),
        "kinds": [{"kind": k, "processes": count[k], "cpu_seconds": round(v, 1)} for k, v in cpu.most_common()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="measure `recops --help`")
    parser.add_argument("command", nargs="*", help="the command to measure (after --)")
    args = parser.parse_args()
    command = [str(Path(sys.executable).with_name("recops")), "--help"] if args.quick else args.command
    if not command:
        parser.error("give a command after --, or --quick")
    figures = measure(command)
    table = Table(title=f"CPU by process kind: {' '.join(command)} ({figures['seconds']} s, "
                        f"machine {figures['busy_share']:.0%} busy, exit {figures['returncode']})")
    for column in ("kind", "processes", "CPU s"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for row in figures["kinds"]:
        table.add_row(row["kind"], str(row["processes"]), f"{row['cpu_seconds']:,.1f}")
    table.add_row("all", "", f"{figures['cpu_seconds']:,.1f}")
    Console().print(table)
    print(json.dumps(figures))
    return 0 if figures["returncode"] == 0 and (figures["cpu_seconds"] > 0 or not args.quick) else 1


if __name__ == "__main__":
    sys.exit(main())
