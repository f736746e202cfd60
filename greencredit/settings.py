"""The one settings object: every environment variable the engine reads is a field here.

Values come from the environment (or a ``.env`` file in the working directory).
When ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` are unset the engine uses the
embedded stack started by ``greencredit stack up`` (see infra/embedded.py).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Engine configuration; frozen so one process sees one configuration."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    # --- Kafka -----------------------------------------------------------------
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="host:port[,host:port]. Unset: use the embedded Tansu broker.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # Tansu makes a consumer group's first join wait ~half the session timeout;
    # 6 s keeps the embedded stack responsive. Production Kafka can use 10-45 s
    # for fewer spurious rebalances on slow GC pauses.
    kafka_session_timeout_s: float = Field(default=6.0, gt=0)
    # How long a fetch may wait for data. Kafka answers as soon as data arrives, so this
    # only bounds idle polling; Tansu answers at the deadline, so it bounds latency there.
    # Faust hard-codes 1500 ms (see agents/app.py).
    kafka_fetch_max_wait_ms: int = Field(default=10, ge=1, le=5000)
    kafka_default_partitions: int = Field(default=4, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)

    schema_registry_url: str | None = Field(
        default=None,
        description="Confluent Schema Registry. Unset: schema ids from schemas/manifest.json.",
    )

    # --- Redis -----------------------------------------------------------------
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db. Unset: use the embedded redis-server."
    )
    redis_password: SecretStr | None = None
    # One prefix for every key the engine writes, so two deployments (or a test run) can
    # share one Redis without seeing each other's state.
    redis_key_prefix: str = Field(
        default="gc:",
        pattern=r"^[A-Za-z0-9_.:-]{1,32}$",
        description="Prefix of every Redis key the engine writes.",
    )

    # --- Embedded stack ---------------------------------------------------------
    state_dir: Path = Field(
        default=Path(".greencredit"),
        alias="GREENCREDIT_STATE_DIR",
        description="Where `stack up` keeps pids, ports and server logs.",
    )

    # --- Privacy ------------------------------------------------------------------
    pii_hmac_key: SecretStr = Field(
        default=SecretStr("greencredit-development-key-change-me"),
        alias="GREENCREDIT_PII_KEY",
        description="Key for HMAC pseudonyms of ID/phone/card/device ids. Set it in production.",
    )

    # --- Workers -------------------------------------------------------------------
    worker_batch_size: int = Field(
        default=256, ge=1, description="Events per batch inside an agent (stream.take)."
    )
    # A batch waits at most this long to fill: latency vs. the fixed cost of a batch (about
    # eight Redis and broker round trips). Measured back to back, one worker, pre-loaded
    # applications: 5 ms 440/s and 1,543 us CPU per application, 20 ms 814/s and 1,031 us;
    # latency at 500/s offered was no worse (p99 336 vs 285 ms, 10 s runs).
    worker_batch_within_s: float = Field(default=0.02, gt=0)
    # The same for the low-volume streams (labels, configs, loan events, the clock, contacts):
    # an agent wakes every `within` even when idle, and the seven of them waking every 5 ms
    # cost ~0.06 of a core doing nothing; a label or a repayment can wait 100 ms.
    worker_quiet_batch_within_s: float = Field(default=0.1, gt=0)
    # Young-generation threshold of the cycle collector once the engine has started (0:
    # Python's default, 700). agents/heap.py says why; a batch's garbage is freed by
    # reference counting, so a larger threshold only makes collections rarer.
    worker_gc_young_threshold: int = Field(default=50_000, ge=0, le=10_000_000)
    worker_web_port: int = Field(default=6066, ge=1, le=65535, description="Health/metrics page.")
    worker_web_host: str = "127.0.0.1"
    # A rebalance normally ends within the session timeout plus a join round (about 11 s on
    # the embedded stack): longer than this, /health/ answers 503 so an orchestrator (or
    # the `--processes` supervisor) restarts the worker. Keep it above broker_rebalance_timeout.
    worker_rebalance_stuck_s: float = Field(
        default=30.0, gt=0, description="Seconds in one rebalance before /health/ says not ready."
    )
    redis_retry_attempts: int = Field(
        default=4, ge=1, description="Tries per Redis call before a decision falls back to review."
    )
    redis_retry_base_s: float = Field(default=0.05, gt=0, description="First backoff; doubles.")
    config_refresh_s: float = Field(
        default=1.0,
        gt=0,
        description="How often workers re-read lender configs, models and the shared LR weight.",
    )
    daily_check_poll_s: float = Field(
        default=300.0,
        gt=0,
        description="How often workers check whether today's loan-ageing tick was published.",
    )
    daily_check_enabled: bool = Field(
        default=True,
        description="Publish the daily loan-ageing tick from the wall clock. The demo turns it "
        "off because its simulator owns the clock and publishes one tick per simulated day.",
    )
    local_timezone: str = Field(
        default="Asia/Shanghai", description="Customers' time zone for night-time rules."
    )

    # --- Fraud-ops console (greencredit console) -----------------------------------
    # Users, sessions, cases and the audit live in PostgreSQL: DATABASE_URL, else the
    # embedded one `greencredit stack up` starts.
    database_url: str | None = Field(
        default=None,
        alias="DATABASE_URL",
        description="postgresql://user:password@host:port/db. Unset: the embedded PostgreSQL.",
    )
    console_session_idle_s: int = Field(
        default=1800, ge=60, description="A console session ends after this long unused."
    )
    console_session_max_s: int = Field(
        default=12 * 3600, ge=300, description="A console session ends this long after sign-in."
    )
    console_login_window_s: int = Field(
        default=900, ge=10, description="Failed sign-ins are counted over this window."
    )
    console_login_max_failures_user: int = Field(
        default=5, ge=1, description="Failed sign-ins per user name in the window before a pause."
    )
    console_login_max_failures_address: int = Field(
        default=20, ge=1, description="Failed sign-ins per client address in the window."
    )
    # Off by default: a user header is trusted only from the one proxy address named here.
    console_trusted_proxy: str | None = Field(
        default=None, description="IP address of an authenticating proxy whose header is trusted."
    )
    console_proxy_user_header: str = Field(
        default="X-Forwarded-User", description="The trusted proxy's header naming the user."
    )
    console_cookie_secure: bool = Field(
        default=False,
        description="Mark the session cookie Secure even when the console sees plain HTTP "
        "(TLS ended at a proxy). Over HTTPS it is always Secure.",
    )
    console_host: str = Field(default="127.0.0.1", description="Address the console binds.")
    console_port: int = Field(default=8088, ge=1, le=65535, description="Console HTTP port.")

    # --- Models -------------------------------------------------------------------
    face_image_max_bytes: int = Field(
        default=2_000_000, ge=1024, description="Largest face image an application may carry."
    )
    face_model_path: Path | None = Field(
        default=None,
        description="Another SFace-compatible ONNX embedder, with its .sha256 and "
        ".calibration.json beside it (see models/artifacts/face_models.card.md).",
    )
    # Selfies are analysed in a pool this size, off the event loop: one thread (one core)
    # keeps a worker's transaction and device streams flowing while a batch of selfies waits.
    face_check_threads: int = Field(
        default=1, ge=1, le=32, description="Threads that decode and embed selfies per worker."
    )

    def kafka_client_config(self, bootstrap: str) -> dict[str, Any]:
        """Librdkafka configuration (security included) for the given bootstrap servers."""
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
            config["sasl.username"] = self.kafka_sasl_username or ""
            config["sasl.password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
            )
        return config


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
