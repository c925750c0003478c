"""The entry-point layer: the ``recops`` CLI, the DAG task adapters, the demo, the Airflow runtime
and services. It drives the stages (``recops.ingestion``, ``recops.quality``, ``recops.training``,
``recops.serving``), which never import it back."""
