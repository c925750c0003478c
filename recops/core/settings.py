"""One typed settings object for every path, URI, secret and threshold (env prefix ``RECOPS_``).

Nothing here touches the disk, the network or ``os.environ``: building a ``Settings`` only reads
the environment, and a child process gets the same settings through :meth:`Settings.as_env`
passed as its ``env=``.
"""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlparse

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recops.core.constants import DATA_DOCS_SITE

REPO_ROOT = Path(__file__).resolve().parents[2]
KNOWN_RETRIEVERS = ("popularity", "repeat", "itemcf", "als", "content", "ease", "covisit")


class Settings(BaseSettings):
    """Every path, URI and threshold RecOps uses. Derived paths live under ``home``."""

    model_config = SettingsConfigDict(env_prefix="RECOPS_", extra="ignore", validate_default=True)

    # --- where things are -------------------------------------------------------------------
    home: Path = Field(default=REPO_ROOT / ".recops", description="All embedded state.")
    profile: Literal["embedded", "production"] = "embedded"
    repo_root: Path = REPO_ROOT
    data_dir: Path = Field(
        default=REPO_ROOT.parent / "shared" / "datasets",
        description="Public data sets (tests, benchmarks, `make data`).",
    )
    inbox_dir: Path | None = Field(
        default=None, description="Where shops drop files (<source>/<file>); default $RECOPS_HOME/inbox."
    )

    # --- production services -----------------------------------------------------------------
    postgres_host: str = "127.0.0.1"
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_user: str = "postgres"
    postgres_password: str = ""
    postgres_db: str = Field(default="recops", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    postgres_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    redis_url: str = "redis://127.0.0.1:6379/0"
    feast_project: str = Field(default="recops", pattern=r"^[A-Za-z0-9][A-Za-z0-9_]*$")
    mlflow_tracking_uri_override: str | None = Field(default=None, alias="RECOPS_MLFLOW_TRACKING_URI")

    # --- privacy -----------------------------------------------------------------------------
    user_salt: str | None = Field(
        default=None,
        min_length=8,
        description="Salt of the user pseudonyms. Unset: the embedded profile generates one per home "
        "($RECOPS_HOME/user_salt, mode 600; recops.core.privacy.user_salt); production requires it.",
    )

    # --- schedules ---------------------------------------------------------------------------
    pipeline_schedule: str = Field(
        default="0 3 * * *", description="Cron (UTC) of recops_pipeline's daily run; empty: none."
    )
    pipeline_on_new_data: bool = Field(default=True, description="Also run recops_pipeline when new batches land.")
    ingest_schedule: str = Field(default="*/10 * * * *", description="Cron of recops_ingest (the inbox); empty: none.")
    monitor_schedule: str = Field(default="0 6 * * *", description="Cron of recops_monitor; empty: none.")
    monitor_ctr_drop: float = Field(
        default=0.2, gt=0, lt=1, description="Alert when the champion's CTR falls this share below its trailing 7 days."
    )

    # --- pipeline ----------------------------------------------------------------------------
    holdout_days: int = Field(default=28, ge=1, le=365, description="Default cutoff: newest event minus this.")
    label_window_days: int = Field(default=28, ge=1, le=365)
    label_windows: int = Field(default=2, ge=1, le=12, description="Training label windows before the cutoff.")
    feature_snapshot_days: int = Field(default=7, ge=1, le=90)
    feature_ttl_days: int = Field(default=400, ge=1)
    candidates_per_retriever: int = Field(default=50, ge=10, le=1000)
    k: int = Field(default=10, ge=1, le=100)
    curve_max_k: int = Field(default=20, ge=1, le=100, description="Largest K of the metric-by-K curves.")
    seed: int = 42
    evaluation_window_days: int | None = Field(default=None, ge=1, le=365, description="Protocol v1 test window (days); empty: open.")
    duckdb_memory_limit: str = Field(
        default="4GB", pattern=r"^[0-9]+(\.[0-9]+)?(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory DuckDB may hold (dbt and warehouse reads; embedded); beyond it, it spills to disk.",
    )
    training_partition_users: int = Field(
        default=5_000, ge=100, description="Users per partition of the training-set assembly (bounds its memory)."
    )

    # --- tuning (`recops tune`; training/tuning.py) -----------------------------------------
    tuning_folds: int = Field(default=2, ge=1, le=8, description="Closed folds before the cutoff.")
    tuning_window_days: int = Field(default=28, ge=1, le=365)  # each fold's test window
    tuning_step_days: int = Field(default=14, ge=1, le=365)  # between fold cutoffs
    tuned_settings_file: Path | None = Field(default=None, description="What `recops tune` chose, applied by training; default $RECOPS_HOME/tuning/tuned_settings.json.")

    # --- retrievers (training/retrievers.py) ---------------------------------------------------
    # Defaults, where `recops tune` (training/tuning.py) starts its search; the settings it chooses
    # on closed folds go to the tuned-settings file, which the pipeline applies over these.
    popularity_half_life_days: float = Field(default=14.0, gt=0)
    popularity_trend_weight: float = Field(default=0.5, ge=0)
    repeat_half_life_days: float = Field(default=180.0, gt=0)
    # closed folds before 2010-11-01, repeat alone, weight 0 / 0.5 / 1 / 2: NDCG@10 0.2935 / 0.3313 / 0.3375 / 0.3428
    repeat_popularity_weight: float = Field(default=2.0, ge=0, description="repeat: weight of the 30-day popularity share.")
    itemcf_half_life_days: float = Field(default=30.0, gt=0)
    itemcf_neighbours: int = Field(default=200, ge=1)
    itemcf_shrink: float = Field(default=5.0, ge=0)
    itemcf_include_self: bool = True
    content_half_life_days: float = Field(default=120.0, gt=0)
    content_ngram_max: int = Field(default=2, ge=1, le=3)
    als_factors: int = Field(default=128, ge=1)
    als_regularization: float = Field(default=0.05, ge=0)
    als_alpha: float = Field(default=5.0, gt=0)
    als_iterations: int = Field(default=15, ge=1)
    als_weighting: Literal["bm25", "confidence"] = "confidence"
    als_half_life_days: float | None = Field(default=15.0, gt=0)
    ease_lambda: float = Field(
        default=500.0, gt=0, description="L2 weight of EASE (chosen on the MovieLens inner split)."
    )
    covisit_window_seconds: float = Field(
        default=60.0, ge=0, description="Co-visitation: events at most this far apart (MovieLens choice)."
    )
    retrievers: tuple[str, ...] = Field(
        default=("popularity", "repeat", "itemcf", "als", "content"),
        description=f"Retrievers of the pipeline, in order; known: {', '.join(KNOWN_RETRIEVERS)}.",
    )
    train_threads: int = Field(default=1, ge=1, le=64, description="Threads of ALS and LightGBM.")
    train_backend: Literal["local", "dask"] = Field(
        default="local",
        description="Where the ranker trains: this process (LightGBM) or a Dask cluster (lightgbm.dask).",
    )
    dask_scheduler: str | None = Field(
        default=None, description="Address of a running Dask scheduler (tcp://host:8786); empty: a local cluster."
    )
    dask_workers: int = Field(default=2, ge=1, le=64, description="Worker processes of the local Dask cluster.")

    # --- ranker hyperparameters (LightGBM LambdaRank) ------------------------------------------
    # Defaults (first chosen with open test windows, see the README); `recops tune` searches them on
    # closed folds and the pipeline applies what it chose (tuned-settings file).
    ranker_objective: Literal["lambdarank", "rank_xendcg"] = Field(
        default="lambdarank", description="LightGBM ranking objective (rank_xendcg: XE-NDCG)."
    )
    ranker_num_leaves: int = Field(default=31, ge=2)
    ranker_learning_rate: float = Field(default=0.02, gt=0, le=1)
    ranker_num_boost_round: int = Field(default=1000, ge=1)
    ranker_min_data_in_leaf: int = Field(default=20, ge=1)
    ranker_early_stopping_rounds: int = Field(default=80, ge=1)
    ranker_feature_fraction: float = Field(default=0.9, gt=0, le=1)
    ranker_lambda_l2: float = Field(default=10.0, ge=0)
    ranker_label_gain: tuple[float, ...] = Field(
        default=(0.0, 1.0, 3.0, 7.0), description="Gain of relevance 0, 1, 2, 3 (set explicitly)."
    )
    ranker_valid_fraction: float = Field(default=0.2, ge=0, lt=1, description="Users held out for early stopping.")

    # --- MovieLens 100k benchmark (Recommenders protocol; training/movielens_benchmark.py) -----
    # Chosen on a split of its train part (never its test part) by `recops benchmark movielens
    # PATH --tune` (training/movielens_tuning.py), as were ease_lambda and covisit_window_seconds:
    # validation nDCG@10 of EASE alone 0.2399, of the ranker with these values 0.2456.
    movielens_retrievers: tuple[str, ...] = ("popularity", "itemcf", "als", "content", "ease", "covisit")
    movielens_candidates: int = Field(default=30, ge=10, le=1000, description="Per retriever.")
    movielens_itemcf_neighbours: int = Field(default=400, ge=1)
    movielens_itemcf_shrink: float = Field(default=20.0, ge=0)
    movielens_als_factors: int = Field(default=32, ge=1)
    movielens_als_regularization: float = Field(default=1.0, ge=0)
    movielens_als_alpha: float = Field(default=1.0, gt=0)
    movielens_als_iterations: int = Field(default=15, ge=1)
    movielens_ranker_folds: int = Field(default=5, ge=2, le=20, description="Cross-fitting folds.")
    movielens_ranker_objective: Literal["lambdarank", "rank_xendcg"] = "rank_xendcg"
    movielens_ranker_num_leaves: int = Field(default=7, ge=2)
    movielens_ranker_learning_rate: float = Field(default=0.05, gt=0, le=1)
    movielens_ranker_min_data_in_leaf: int = Field(default=100, ge=1)

    # --- registry and promotion --------------------------------------------------------------
    model_name: str = "recops-ranker"
    experiment_name: str = "recops"
    promotion_min_ndcg_gain: float = Field(default=0.0, ge=-1, le=1, description="Gate: candidate NDCG@k must beat the champion's by more.")
    promotion_max_regression_cold_users: float = Field(default=0.05, ge=0, le=1, description="Gate: largest NDCG@k drop allowed on cold users.")
    promotion_max_regression_heavy_buyers: float = Field(default=0.02, ge=0, le=1, description="Gate: largest NDCG@k drop allowed on heavy buyers.")
    promotion_max_regression_light_buyers: float = Field(default=0.02, ge=0, le=1, description="Gate: largest NDCG@k drop allowed on light buyers.")
    promotion_cold_user_max_purchases: int = Field(default=1, ge=0, description="Cold-user slice: at most this many purchases before the cutoff.")
    promotion_light_buyer_quantile: float = Field(default=0.25, gt=0, lt=1, description="Light buyers: purchases at or below this quantile (of non-cold users).")
    promotion_heavy_buyer_quantile: float = Field(
        default=0.75, gt=0, lt=1, description="Heavy buyers: purchases at or above this quantile (of non-cold users)."
    )
    promotion_min_slice_users: int = Field(
        default=10, ge=1, description="Slices with fewer users are reported, not enforced."
    )
    approval_timeout_minutes: int = Field(default=60 * 24, ge=1)
    approval_separate_duties: bool | None = Field(
        default=None,
        description="Whoever triggered a run may not approve its model, and a run without approvers asks "
        "the Airflow admins; unset: on for the production profile, off for embedded.",
    )
    mlflow_ui_url: str = Field(
        default="http://127.0.0.1:5000", description="MLflow UI base, for links in approvals and /ops."
    )
    airflow_ui_url: str | None = Field(
        default=None, description="Airflow UI base for links in /ops; default http://$AIRFLOW_HOST:$AIRFLOW_PORT."
    )
    data_docs_url: str | None = Field(
        default=None, description="Where operators open the GX Data Docs (/ops link); default the local index file."
    )

    # --- quality and alerts ------------------------------------------------------------------
    quality_row_count_tolerance: float = Field(default=0.5, gt=0, le=10)
    quality_row_count_history: int = Field(default=5, ge=1)
    quality_psi_warn: float = Field(default=0.1, gt=0)
    quality_psi_error: float = Field(default=0.25, gt=0)
    quality_quarantine_share_warn: float = Field(
        default=0.01, ge=0, le=1, description="Raw gate: warn above this share of a batch's records quarantined (per reason)."
    )
    quality_quarantine_share_error: float = Field(
        default=0.05, ge=0, le=1, description="Raw gate: stop above this share of a batch's records quarantined (per reason)."
    )
    shop_start_date: date = Field(
        default=date(1990, 1, 1),
        description="Raw gate: no event or served list before this day (catches zero and epoch timestamps; "
        "MovieLens 100k starts in 1997).",
    )
    alert_webhook_url: str | None = None
    alert_webhook_timeout_s: float = Field(default=5.0, gt=0)
    alert_webhook_retries: int = Field(default=3, ge=0, le=10)
    alert_smtp_host: str | None = None
    alert_smtp_port: int = Field(default=25, ge=1, le=65535)
    alert_email_from: str = "recops@localhost"
    alert_email_to: list[str] = Field(default_factory=list)

    # --- serving -----------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64, description="Worker processes of `recops serve`.")
    api_tokens: str | None = Field(
        default=None,
        description="Bearer tokens, comma-separated: TOKEN (every scope) or TOKEN:scope+scope "
        "(recommend, feedback:web, feedback:orders, admin). Embedded default: one generated "
        "into $RECOPS_HOME/api_tokens.",
    )
    web_token: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._~+/=-]{16,}$",
        description="Token the demo storefront (/shop) hands to browsers, scoped recommend+feedback:web only. "
        "Embedded default: one generated into $RECOPS_HOME/web_token; production: unset = no storefront.",
    )
    api_feedback_events_per_minute: int = Field(
        default=6000, ge=1,
        description="Feedback events one token may post per minute (per API worker); more: 429 with Retry-After.",
    )
    api_reasons: bool = Field(default=True, description="Return the reasons (personal data) of recommendations.")
    serve_cache_seconds: float = Field(default=60.0, ge=0, description="Per-worker ranked-list cache; 0: off.")
    serve_cache_size: int = Field(default=20_000, ge=1)
    api_log_rotate_seconds: float = Field(
        default=60.0, gt=0, description="The API closes its served/feedback log files this often (the next run reads closed ones)."
    )
    attribution_window_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="Feedback counts for a served item this long after it."
    )
    challenger_traffic: float = Field(
        default=0.0, ge=0, le=1, description="Share of users (stable hash) served by the challenger."
    )
    model_refresh_seconds: float = Field(default=30.0, ge=0)

    # --- airflow -----------------------------------------------------------------------------
    airflow_host: str = "127.0.0.1"
    airflow_port: int = Field(default=8080, ge=1, le=65535)
    airflow_executor: Literal["LocalExecutor", "CeleryExecutor"] = Field(default="LocalExecutor", description="CeleryExecutor: production profile, `recops airflow up` starts the workers.")
    celery_workers: int = Field(default=2, ge=1, le=64, description="Worker processes (concurrency) of the Celery worker.")
    celery_broker_url: str = Field(default="redis://127.0.0.1:6379/1", description="Celery's broker (Redis or RabbitMQ: amqp://...).")

    @field_validator("web_token", "airflow_ui_url", "data_docs_url", "evaluation_window_days", "tuned_settings_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (compose's ``${VAR:-}``) means unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("home", "repo_root", "data_dir", "inbox_dir", "tuned_settings_file")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    @model_validator(mode="after")
    def _thresholds(self) -> Settings:
        if self.quality_psi_warn >= self.quality_psi_error:
            raise ValueError("RECOPS_QUALITY_PSI_WARN must be below RECOPS_QUALITY_PSI_ERROR")
        if self.quality_quarantine_share_warn > self.quality_quarantine_share_error:
            raise ValueError(
                "RECOPS_QUALITY_QUARANTINE_SHARE_WARN must not exceed RECOPS_QUALITY_QUARANTINE_SHARE_ERROR"
            )
        if self.promotion_light_buyer_quantile >= self.promotion_heavy_buyer_quantile:
            raise ValueError(
                "RECOPS_PROMOTION_LIGHT_BUYER_QUANTILE must be below RECOPS_PROMOTION_HEAVY_BUYER_QUANTILE"
            )
        for name in ("retrievers", "movielens_retrievers"):
            unknown = set(getattr(self, name)) - set(KNOWN_RETRIEVERS)
            if unknown or not getattr(self, name):
                raise ValueError(f"RECOPS_{name.upper()}: unknown or none {sorted(unknown)}")
        if self.airflow_executor == "CeleryExecutor" and self.profile != "production":
            raise ValueError("RECOPS_AIRFLOW_EXECUTOR=CeleryExecutor needs RECOPS_PROFILE=production (PostgreSQL metadata)")
        if self.profile == "production" and self.user_salt is None:
            raise ValueError(
                "RECOPS_USER_SALT is required on the production profile (a long random secret, the same "
                "for every service; e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return self

    # --- derived paths -----------------------------------------------------------------------
    @property
    def tuned_settings_path(self) -> Path:  # `recops tune` writes it, the pipeline reads it
        return self.tuned_settings_file or self.home / "tuning" / "tuned_settings.json"
    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def mart_schema(self) -> str:
        """Schema of the dbt marts: ``public`` on PostgreSQL, ``main`` on DuckDB."""
        return "public" if self.profile == "production" else "main"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def logs_dir(self) -> Path:
        """Tool logs of CLI runs (one file per run)."""
        return self.home / "logs"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def dags_folder(self) -> Path:
        return self.repo_root / "dags"

    @property
    def dbt_project_dir(self) -> Path:
        return self.repo_root / "dbt_project"

    @property
    def dbt_target(self) -> str:
        return "postgres" if self.profile == "production" else "duckdb"

    @property
    def feature_repo_path(self) -> Path:
        return self.repo_root / "features"

    @property
    def feature_store_yaml(self) -> Path:
        name = "feature_store.production.yaml" if self.profile == "production" else "feature_store.yaml"
        return self.feature_repo_path / name

    @property
    def feast_dir(self) -> Path:
        return self.home / "feast"

    @property
    def feature_data_dir(self) -> Path:
        return self.feast_dir / "data"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def mlflow_tracking_uri(self) -> str:
        if self.mlflow_tracking_uri_override:
            return self.mlflow_tracking_uri_override
        if self.profile == "production":
            return self.postgres_url(f"{self.postgres_db}_mlflow")
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def quality_dir(self) -> Path:
        return self.home / "quality"

    @property
    def gx_dir(self) -> Path:
        """The GX file context (``great_expectations.yml``, suites, checkpoints, results)."""
        return self.quality_dir / "gx"

    @property
    def data_docs_index(self) -> Path:
        """The Data Docs index page: every validation, newest first."""
        return self.gx_dir / "uncommitted" / "data_docs" / DATA_DOCS_SITE / "index.html"

    @property
    def alerts_path(self) -> Path:
        return self.home / "alerts.jsonl"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def inbox(self) -> Path:
        """Where shop files wait for recops_ingest: ``<inbox>/<source>/<file>``."""
        return self.inbox_dir or self.home / "inbox"

    @property
    def feedback_dir(self) -> Path:
        return self.home / "feedback"

    @property
    def served_dir(self) -> Path:
        """The API's served-list log (closed files are ingested as impressions)."""
        return self.home / "served"

    @property
    def serving_dir(self) -> Path:
        """Candidate store (embedded), compiled models, metrics of the API's workers."""
        return self.home / "serving"

    @property
    def api_tokens_file(self) -> Path:
        return self.home / "api_tokens"

    @property
    def separate_duties(self) -> bool:
        """``RECOPS_APPROVAL_SEPARATE_DUTIES``, defaulting by profile."""
        if self.approval_separate_duties is not None:
            return self.approval_separate_duties
        return self.profile == "production"

    @property
    def user_salt_file(self) -> Path:
        """The embedded profile's generated salt (when ``RECOPS_USER_SALT`` is unset)."""
        return self.home / "user_salt"

    @property
    def web_token_file(self) -> Path:
        """The embedded profile's generated storefront token (recommend+feedback:web)."""
        return self.home / "web_token"

    @property
    def airflow_url(self) -> str:
        """The Airflow UI base (links)."""
        return (self.airflow_ui_url or f"http://{self.airflow_host}:{self.airflow_port}").rstrip("/")

    @property
    def data_docs_link(self) -> str:
        """The Data Docs for a person: ``data_docs_url``, else the local index as a file URI."""
        return self.data_docs_url or self.data_docs_index.as_uri()

    def postgres_url(self, database: str | None = None, *, driver: str = "postgresql") -> str:
        """``driver://user[:password]@host:port/database`` (password URL-quoted)."""
        auth = quote(self.postgres_user, safe="")
        if self.postgres_password:
            auth += ":" + quote(self.postgres_password, safe="")
        return f"{driver}://{auth}@{self.postgres_host}:{self.postgres_port}/{database or self.postgres_db}"

    @property
    def postgres_dsn(self) -> str:
        return self.postgres_url()

    @property
    def feast_redis_connection(self) -> str:
        """``redis://host:port/db`` as Feast's ``host:port,db=N`` connection string."""
        url = urlparse(self.redis_url)
        db = (url.path or "/0").lstrip("/") or "0"
        conn = f"{url.hostname or '127.0.0.1'}:{url.port or 6379},db={db}"
        return conn + (f",password={url.password}" if url.password else "")

    # --- environments for child processes (never written into this process) ------------------
    def as_env(self) -> dict[str, str]:
        """``RECOPS_*`` variables that rebuild these settings in a child process."""
        env: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            key = field.alias or f"RECOPS_{name.upper()}"
            if value is None:
                continue
            if isinstance(value, (list, tuple, dict)):
                env[key] = json.dumps(list(value) if isinstance(value, tuple) else value)
            elif isinstance(value, bool):
                env[key] = "true" if value else "false"
            else:
                env[key] = str(value)
        return env

    def tool_env(self) -> dict[str, str]:
        """What ``feast apply`` (a child process) reads: the settings plus the ``${VAR}`` values
        of ``features/feature_store*.yaml`` and the feature definitions."""
        return {
            **self.as_env(),
            "RECOPS_FEAST_DIR": str(self.feast_dir),
            "RECOPS_FEATURE_DATA_DIR": str(self.feature_data_dir),
            "RECOPS_REDIS_CONNECTION": self.feast_redis_connection,
            "FEAST_FS_YAML_FILE_PATH": str(self.feature_store_yaml),
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings of an entry point (cached). Stages take ``settings`` as an
    argument instead; tests build their own ``Settings(...)``."""
    return Settings()
