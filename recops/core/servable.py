"""What the API serves from, as plain arrays: the request-time contract between training (which
writes it when a version is published) and serving (which only reads it).

- :class:`ServingMeta`, one per model version: the booster's feature order, the item vocabulary
  with titles, prices and availability, the popularity list (the cold-start fallback), each
  item's co-purchase and text neighbours (cold visitors with a context item, item-to-item), and
  the retrievers' reason texts.
- :class:`UserCandidates`, one per known user and version: the user's candidate items with every
  feature the booster reads, already in the booster's order, plus which retrievers found each
  candidate and the bought item that explains an item-to-item find (the reasons).

No pandas, no training code: a request reads one record, builds nothing, scores one matrix.
"""

from __future__ import annotations

import io
import json
import zlib
from dataclasses import dataclass, field

import numpy as np

FORMAT_VERSION = 1
NO_ITEM = -1


@dataclass(frozen=True)
class UserCandidates:
    """One user's candidates: ``items`` (vocabulary positions), ``features`` (n x F, booster
    order), ``found`` (bit r set: retriever r found it), ``anchors`` (the bought item behind an
    item-to-item find, or ``NO_ITEM``)."""

    items: np.ndarray
    features: np.ndarray
    found: np.ndarray
    anchors: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.items)
        if self.features.ndim != 2 or self.features.shape[0] != n or len(self.found) != n or len(self.anchors) != n:
            raise ValueError(f"inconsistent candidate arrays: {n} items, features {self.features.shape}")

    def to_bytes(self) -> bytes:
        n, f = self.features.shape
        head = np.array([FORMAT_VERSION, n, f], dtype=np.int32).tobytes()
        body = b"".join(
            (
                self.items.astype("<i4", copy=False).tobytes(),
                self.found.astype("u1", copy=False).tobytes(),
                self.anchors.astype("<i4", copy=False).tobytes(),
                self.features.astype("<f8", copy=False).tobytes(),
            )
        )
        return head + zlib.compress(body, 1)

    @classmethod
    def from_bytes(cls, blob: bytes) -> UserCandidates:
        version, n, f = np.frombuffer(blob[:12], dtype="<i4")
        if version != FORMAT_VERSION:
            raise ValueError(f"candidate record format {version}, expected {FORMAT_VERSION}")
        body = zlib.decompress(blob[12:])
        items = np.frombuffer(body, dtype="<i4", count=n)
        found = np.frombuffer(body, dtype="u1", count=n, offset=4 * n)
        anchors = np.frombuffer(body, dtype="<i4", count=n, offset=5 * n)
        features = np.frombuffer(body, dtype="<f8", count=n * f, offset=9 * n).reshape(n, f)
        return cls(items=items, features=features, found=found, anchors=anchors)


@dataclass(frozen=True)
class ServingMeta:
    """Version-wide serving data (see the module docstring). ``neighbours_*`` are
    (n_items x M) vocabulary positions (``NO_ITEM`` pads) with matching ``*_scores``."""

    version: str
    feature_names: list[str]
    retrievers: list[str]
    reasons: dict[str, str]
    items: np.ndarray
    titles: list[str | None]
    prices: np.ndarray
    available: np.ndarray
    popular: np.ndarray
    popular_scores: np.ndarray
    neighbours_cf: np.ndarray
    neighbours_cf_scores: np.ndarray
    neighbours_text: np.ndarray
    neighbours_text_scores: np.ndarray
    as_of: str
    published_at: str
    users: int = 0
    extra: dict = field(default_factory=dict)

    ARRAYS = (
        "items", "prices", "available", "popular", "popular_scores", "neighbours_cf",
        "neighbours_cf_scores", "neighbours_text", "neighbours_text_scores",
    )

    def to_bytes(self) -> bytes:
        header = {
            "format": FORMAT_VERSION,
            "version": self.version,
            "feature_names": self.feature_names,
            "retrievers": self.retrievers,
            "reasons": self.reasons,
            "titles": self.titles,
            "as_of": self.as_of,
            "published_at": self.published_at,
            "users": self.users,
            "extra": self.extra,
        }
        buf = io.BytesIO()
        arrays = {name: getattr(self, name) for name in self.ARRAYS}
        arrays["items"] = np.asarray(arrays["items"], dtype=str)
        np.savez_compressed(buf, **arrays)
        head = json.dumps(header).encode()
        return len(head).to_bytes(8, "little") + head + buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> ServingMeta:
        size = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8 : 8 + size])
        if header.pop("format") != FORMAT_VERSION:
            raise ValueError("serving meta of another format version")
        with np.load(io.BytesIO(blob[8 + size :]), allow_pickle=False) as data:
            arrays = {name: data[name] for name in cls.ARRAYS}
        return cls(**header, **arrays)

    def item_positions(self) -> dict[str, int]:
        """Item id -> vocabulary position."""
        return {str(item): i for i, item in enumerate(self.items)}
