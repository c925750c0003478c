"""Erasing one customer's traces from quality outputs: GX results and Data Docs pages that quote
the pseudonymised id (examples of a failed expectation), and alert lines. Orchestrated by
:mod:`recops.app.forget`."""

from __future__ import annotations

import os

from recops.core.settings import Settings


def erase_quality_files(settings: Settings, key: str) -> dict[str, int]:
    """GX results and Data Docs keep example values of failed expectations, and alerts quote
    them: delete result files that mention the pseudonymised key (the next validation writes new
    ones) and drop alert lines that do. Upstream of staging no check lists user ids, so the
    original id is not searched here (a short id such as ``1`` would match unrelated text)."""
    needle = key.encode("utf-8")
    files = lines = 0
    roots = [settings.quality_dir] if settings.quality_dir.exists() else []
    candidates = [p for root in roots for p in sorted(root.rglob("*")) if p.is_file()]
    if settings.alerts_path.exists():
        candidates.append(settings.alerts_path)
    for path in candidates:
        if needle not in path.read_bytes():
            continue
        if path.suffix == ".jsonl":
            kept = [x for x in path.read_bytes().splitlines(keepends=True) if needle not in x]
            lines += len(path.read_bytes().splitlines()) - len(kept)
            tmp = path.with_name(f".{path.name}.erasure")
            tmp.write_bytes(b"".join(kept))
            os.replace(tmp, path)
        else:
            path.unlink()
            files += 1
    return {"quality.files": files, "alerts.lines": lines}
