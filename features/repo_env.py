"""The settings the definitions read: the ``RECOPS_*`` variables of the environment ``feast apply``
runs in, or the values RecOps hands over when it applies in-process
(``recops.core.feature_store.apply_features`` sets ``VALUES`` on its own fresh copy of this module
before it loads the definitions)."""

import os

VALUES: dict[str, str] | None = None


def env(name: str, default: str) -> str:
    """The setting ``name`` (a ``RECOPS_*`` variable), else ``default``."""
    return (os.environ if VALUES is None else VALUES).get(name, default)
