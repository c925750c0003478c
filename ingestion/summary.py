"""The result every loader returns."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class IngestSummary(BaseModel):
    """What one batch did. ``model_dump()`` is JSON-able as is.

    ``rows_*`` count *input records* (data lines of every input file of the batch, catalogue files
    included): each one is either loaded into a raw table or quarantined, so
    ``rows_in == rows_loaded + rows_quarantined``. ``events_loaded`` and ``items_loaded`` count the
    rows written to ``raw.events`` and ``raw.items``; for Online Retail the catalogue is derived
    from the invoice lines, so its items are not input records.
    """

    batch_id: str
    source: str
    files: list[str]
    rows_in: int = Field(ge=0)
    rows_loaded: int = Field(ge=0)
    rows_quarantined: int = Field(ge=0)
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)
    events_loaded: int = Field(default=0, ge=0)
    items_loaded: int = Field(default=0, ge=0)
    served_loaded: int = Field(default=0, ge=0, description="Rows written to raw.served (served lists).")
    status: str = "loaded"
    ingested_at: str = Field(description="ISO timestamp (UTC) shared by every row of the batch.")
    duplicate_batch: bool = False

    @model_validator(mode="after")
    def _accounting(self) -> IngestSummary:
        if self.rows_in != self.rows_loaded + self.rows_quarantined:
            raise ValueError(
                f"rows_in {self.rows_in} != rows_loaded {self.rows_loaded} "
                f"+ rows_quarantined {self.rows_quarantined}"
            )
        if sum(self.quarantine_reasons.values()) != self.rows_quarantined:
            raise ValueError("quarantine_reasons do not add up to rows_quarantined")
        return self
