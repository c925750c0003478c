"""The core layer: settings, constants, time helpers, warehouse, privacy, alerts, feature-store
access and the dbt runner. It imports no stage and no entry point (``tests/test_architecture.py``)."""
