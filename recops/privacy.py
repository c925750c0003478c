"""Pseudonymisation shared by dbt staging and the API: md5(salt || shop user id), hex."""

from __future__ import annotations

import hashlib
import re


def pseudonymise(user_id: str, salt: str) -> str:
    """The warehouse's user key for a shop user id (same expression as ``stg_raw__events``)."""
    cleaned = re.sub(r"\s+", " ", user_id).strip()
    return hashlib.md5(f"{salt}{cleaned}".encode()).hexdigest()
