"""Data quality gates (Great Expectations 1.x) and alerts, imported as ``recops.quality``.

Modules (nothing is imported here):

- ``checkpoints``: the gates ``raw_gate``, ``marts_gate``, ``training_set_gate`` (what the
  Airflow tasks call): ``validate_*`` (in ``raw_checks``, ``mart_checks``, ``training_checks``)
  then ``enforce`` (alert, quarantine, raise ``QualityGateError``). On an
  error the raw gate quarantines the failing batch, a later gate every batch of its run (raw rows
  are kept; staging reads only loaded batches), so the next run starts from the last good state.
  The raw gate also checks what the loader rejected (``raw.quarantine``: share of a batch's
  records per reason), events after their batch's ingestion, and optional columns emptied by a
  missing or renamed column in the file.
- ``suites``: the GX suites; every expectation has ``meta["severity"]`` ``error`` or ``warning``.
- alerts (``Alert``, the JSON-lines / webhook / e-mail channels, ``send_alert``) live in the core,
  :mod:`recops.core.alerts`, since every stage raises them.
- ``drift``: population stability index and its sampling-noise level (pure); ``references``:
  per-run drift baselines.
- ``report``: ``quality_report`` (where the Data Docs are, the last run on one screen).
- ``runner``: GX file context under ``settings.quality_dir``, checkpoints and Data Docs.
- ``results``: ``QualityResult``, ``FailedExpectation``, ``QualityGateError`` (no GX import).
"""
