"""The retrievers' settings as one frozen object (from ``recops.core.settings``), and the factory
of fresh, unfitted retrievers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recops.core.settings import Settings
from recops.training.covisit import CoVisitation
from recops.training.ease import EASE
from recops.training.retrievers import (
    ALS,
    Content,
    ItemCF,
    Popularity,
    Repeat,
    Retriever,
    RetrieverError,
)


class RetrieverConfig(BaseModel):
    """Settings of the retrievers; no defaults here: :meth:`from_settings` takes them from
    ``recops.core.settings.Settings`` (tuned on Online Retail II; module docstring). A half-life of
    None means no time decay (the MovieLens benchmark's random split has no time order)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    popularity_half_life_days: float | None = Field(gt=0)
    popularity_trend_weight: float = Field(ge=0)
    repeat_half_life_days: float = Field(gt=0)
    repeat_popularity_weight: float = Field(ge=0)
    itemcf_half_life_days: float | None = Field(gt=0)
    itemcf_neighbours: int = Field(ge=1)
    itemcf_shrink: float = Field(ge=0)
    itemcf_include_self: bool
    content_half_life_days: float | None = Field(gt=0)
    content_ngram_max: int = Field(ge=1, le=3)
    als_factors: int = Field(ge=1)
    als_regularization: float = Field(ge=0)
    als_alpha: float = Field(gt=0)
    als_iterations: int = Field(ge=1)
    als_weighting: Literal["bm25", "confidence"]
    als_half_life_days: float | None = Field(gt=0)
    ease_lambda: float = Field(gt=0)
    covisit_window_seconds: float = Field(ge=0)
    num_threads: int = Field(ge=1)
    enabled: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> RetrieverConfig:
        """The retriever settings (``popularity_*``, ``repeat_*``, ... and ``retrievers``)."""
        names = [n for n in cls.model_fields if n not in ("num_threads", "enabled")]
        values = {n: getattr(settings, n) for n in names}
        values |= {"num_threads": settings.train_threads, "enabled": tuple(settings.retrievers)}
        return cls(**(values | overrides))

    def build(self, seed: int) -> list[Retriever]:
        """Fresh, unfitted retrievers in ``enabled`` order."""
        makers = {
            "popularity": lambda: Popularity(
                half_life_days=self.popularity_half_life_days,
                trend_weight=self.popularity_trend_weight,
            ),
            "repeat": lambda: Repeat(
                half_life_days=self.repeat_half_life_days, popularity_weight=self.repeat_popularity_weight
            ),
            "itemcf": lambda: ItemCF(
                half_life_days=self.itemcf_half_life_days,
                neighbours=self.itemcf_neighbours,
                shrink=self.itemcf_shrink,
                include_self=self.itemcf_include_self,
            ),
            "als": lambda: ALS(
                factors=self.als_factors,
                regularization=self.als_regularization,
                alpha=self.als_alpha,
                iterations=self.als_iterations,
                weighting=self.als_weighting,
                half_life_days=self.als_half_life_days,
                num_threads=self.num_threads,
                seed=seed,
            ),
            "content": lambda: Content(
                half_life_days=self.content_half_life_days,
                ngram_range=(1, self.content_ngram_max),
            ),
            "ease": lambda: EASE(lambda_=self.ease_lambda),
            "covisit": lambda: CoVisitation(window_seconds=self.covisit_window_seconds),
        }
        unknown = set(self.enabled) - set(makers)
        if unknown:
            raise RetrieverError(f"unknown retrievers {sorted(unknown)}; known: {sorted(makers)}")
        return [makers[name]() for name in self.enabled]
