"""One typed settings object for every path, URI and threshold (env prefix ``RECOPS_``).

Nothing here touches the disk or the network: building a ``Settings`` only reads the environment.
"""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Every path, URI and threshold RecOps uses. Derived paths live under ``home``."""

    model_config = SettingsConfigDict(env_prefix="RECOPS_", extra="ignore", validate_default=True)

    # --- where things are -------------------------------------------------------------------
    home: Path = Field(default=REPO_ROOT / ".recops", description="All embedded state.")
    profile: Literal["embedded", "production"] = "embedded"
    repo_root: Path = REPO_ROOT

    # --- production services -----------------------------------------------------------------
    postgres_host: str = "127.0.0.1"
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_user: str = "postgres"
    postgres_password: str = ""
    postgres_db: str = "recops"
    postgres_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    redis_url: str = "redis://127.0.0.1:6379/0"
    feast_project: str = Field(default="recops", pattern=r"^[A-Za-z0-9][A-Za-z0-9_]*$")
    mlflow_tracking_uri_override: str | None = Field(default=None, alias="RECOPS_MLFLOW_TRACKING_URI")

    # --- privacy -----------------------------------------------------------------------------
    user_salt: str = Field(default="recops-dev-salt", min_length=8)

    # --- pipeline ----------------------------------------------------------------------------
    holdout_days: int = Field(default=28, ge=1, le=365, description="Default cutoff: newest event minus this.")
    label_window_days: int = Field(default=28, ge=1, le=365)
    label_windows: int = Field(default=2, ge=1, le=12, description="Training label windows before the cutoff.")
    feature_snapshot_days: int = Field(default=7, ge=1, le=90)
    feature_ttl_days: int = Field(default=400, ge=1)
    candidates_per_retriever: int = Field(default=50, ge=10, le=1000)
    k: int = Field(default=10, ge=1, le=100)
    seed: int = 42

    # --- ranker hyperparameters (LightGBM LambdaRank; tuned on Online Retail II at 2010-10-04) --
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

    # --- registry and promotion --------------------------------------------------------------
    model_name: str = "recops-ranker"
    experiment_name: str = "recops"
    promotion_min_ndcg_gain: float = Field(
        default=0.0, ge=-1, le=1, description="Gate: candidate NDCG@10 must beat the champion's by more."
    )
    promotion_max_regression_cold_users: float = Field(
        default=0.05, ge=0, le=1, description="Gate: largest NDCG@10 drop allowed on cold users."
    )
    promotion_max_regression_heavy_buyers: float = Field(
        default=0.02, ge=0, le=1, description="Gate: largest NDCG@10 drop allowed on heavy buyers."
    )
    promotion_max_regression_light_buyers: float = Field(
        default=0.02, ge=0, le=1, description="Gate: largest NDCG@10 drop allowed on light buyers."
    )
    promotion_cold_user_max_purchases: int = Field(
        default=1, ge=0, description="Cold-user slice: at most this many purchases before the cutoff."
    )
    promotion_light_buyer_quantile: float = Field(
        default=0.25, gt=0, lt=1, description="Light buyers: purchases at or below this quantile (of non-cold users)."
    )
    promotion_heavy_buyer_quantile: float = Field(
        default=0.75, gt=0, lt=1, description="Heavy buyers: purchases at or above this quantile (of non-cold users)."
    )
    promotion_min_slice_users: int = Field(
        default=10, ge=1, description="Slices with fewer users are reported, not enforced."
    )
    approval_timeout_minutes: int = Field(default=60 * 24, ge=1)
    mlflow_ui_url: str = Field(
        default="http://127.0.0.1:5000", description="MLflow UI base, for links in approvals."
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
    shop_start_date: date = date(2000, 1, 1)
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
    model_refresh_seconds: float = Field(default=30.0, ge=0)

    # --- airflow -----------------------------------------------------------------------------
    airflow_host: str = "127.0.0.1"
    airflow_port: int = Field(default=8080, ge=1, le=65535)

    @field_validator("home", "repo_root")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

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
        return self

    # --- derived paths -----------------------------------------------------------------------
    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

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
            return f"postgresql://{self.postgres_user}@{self.postgres_host}:{self.postgres_port}/{self.postgres_db}_mlflow"
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def quality_dir(self) -> Path:
        return self.home / "quality"

    @property
    def alerts_path(self) -> Path:
        return self.home / "alerts.jsonl"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def feedback_dir(self) -> Path:
        return self.home / "feedback"

    @property
    def postgres_dsn(self) -> str:
        auth = self.postgres_user + (f":{self.postgres_password}" if self.postgres_password else "")
        return f"postgresql://{auth}@{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"

    @property
    def feast_redis_connection(self) -> str:
        """``redis://host:port/db`` as Feast's ``host:port,db=N`` connection string."""
        from urllib.parse import urlparse

        url = urlparse(self.redis_url)
        db = (url.path or "/0").lstrip("/") or "0"
        conn = f"{url.hostname or '127.0.0.1'}:{url.port or 6379},db={db}"
        return conn + (f",password={url.password}" if url.password else "")

    def tool_env(self) -> dict[str, str]:
        """Environment variables the integrated tools (dbt, Feast, Airflow) read."""
        return {
            "RECOPS_HOME": str(self.home),
            "RECOPS_PROFILE": self.profile,
            "RECOPS_WAREHOUSE_PATH": str(self.warehouse_path),
            "RECOPS_USER_SALT": self.user_salt,
            "RECOPS_FEAST_DIR": str(self.feast_dir),
            "RECOPS_FEAST_PROJECT": self.feast_project,
            "RECOPS_FEATURE_DATA_DIR": str(self.feature_data_dir),
            "RECOPS_POSTGRES_HOST": self.postgres_host,
            "RECOPS_POSTGRES_PORT": str(self.postgres_port),
            "RECOPS_POSTGRES_USER": self.postgres_user,
            "RECOPS_POSTGRES_PASSWORD": self.postgres_password,
            "RECOPS_POSTGRES_DB": self.postgres_db,
            "RECOPS_POSTGRES_SSLMODE": self.postgres_sslmode,
            "RECOPS_REDIS_CONNECTION": self.feast_redis_connection,
            "RECOPS_FEATURE_SNAPSHOT_DAYS": str(self.feature_snapshot_days),
            "FEAST_FS_YAML_FILE_PATH": str(self.feature_store_yaml),
        }

    def export_tool_env(self) -> None:
        """Put :meth:`tool_env` into ``os.environ`` (dbt's ``env_var`` and Feast's ``${VAR}`` read it)."""
        os.environ.update(self.tool_env())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` after changing env)."""
    return Settings()
