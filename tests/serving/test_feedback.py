"""The API's feedback files: appended JSON lines, and erasure of a customer's lines."""

from __future__ import annotations

import json

from recops.core.settings import Settings
from recops.serving.feedback import erase_feedback_files, erase_served_files


def test_feedback_files_lose_the_users_lines(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    settings.feedback_dir.mkdir(parents=True)
    lines = [
        {"user_id": "13085", "item_id": "i1", "event_type": "click"},
        {"user_id": "130850", "item_id": "i1", "event_type": "click"},
    ]
    mixed = settings.feedback_dir / "feedback-20240101.jsonl"
    mixed.write_text("".join(json.dumps(x) + "\n" for x in lines))
    only = settings.feedback_dir / "feedback-20240102.jsonl"
    only.write_text(json.dumps(lines[0]) + "\n")
    assert erase_feedback_files(settings, "13085") == {"feedback.lines": 2}
    assert [json.loads(x)["user_id"] for x in mixed.read_text().splitlines()] == ["130850"]
    assert not only.exists()  # an empty feedback file would fail the next ingestion




def test_served_files_lose_the_users_lists_pending_and_ingested(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    ingested = settings.served_dir / "ingested"
    ingested.mkdir(parents=True)

    def served(key: str | None, request: str) -> str:
        return json.dumps({"request_id": request, "user_key": key, "kind": "personal", "items": []}) + "\n"

    pending = settings.served_dir / "served-1-2-1.jsonl"
    pending.write_text(served("abc", "r1") + served("abcd", "r2") + served(None, "r3"))
    done = ingested / "served-0-2-1.jsonl"
    done.write_text(served("abc", "r0"))
    assert erase_served_files(settings, "abc") == {"served.lines": 2}
    assert [json.loads(x)["request_id"] for x in pending.read_text().splitlines()] == ["r2", "r3"]
    assert not done.exists()
    assert erase_served_files(settings, "abc") == {"served.lines": 0}  # a rerun finds nothing
