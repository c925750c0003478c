"""Training stage: retrievers -> point-in-time LTR frame -> LightGBM LambdaRank -> protocol v1.

Modules: ``events`` (purchase signal, decay), ``metrics``, ``evaluation`` (protocol v1),
``retrievers``, ``dataset`` (candidates, labels, features), ``ranker``, ``train`` (entry points and
the serving bundle), ``artifacts`` (run folder, champion re-scoring), ``registry`` (MLflow).
Nothing is imported here, so importing the package stays cheap.
"""
