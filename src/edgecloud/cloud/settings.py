"""Settings of the cloud role (``edgecloud cloud api`` and ``edgecloud cloud worker``).

Built once in the CLI command and passed down. Every field reads ``EDGECLOUD_<NAME>`` except the
OpenAI pair, which reads the plain ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` that the SDK and
NVIDIA NIM users already set (``EDGECLOUD_OPENAI_*`` is accepted too).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from edgecloud.cloud.registry.settings import RegistryFields, RegistrySettings
from edgecloud.core.settings import BaseRoleSettings, DatabaseSettings, KafkaSettings

DEFAULT_GROUP_ID = "edgecloud-cloud-worker"


class CloudSettings(BaseRoleSettings, DatabaseSettings, KafkaSettings, RegistryFields):
    model_config = SettingsConfigDict(
        env_prefix="EDGECLOUD_", extra="ignore", populate_by_name=True
    )

    # --- REST API (edgecloud cloud api) ---
    api_host: str = Field("127.0.0.1", description="address the REST API listens on")
    api_port: int = Field(8400, ge=0, le=65535, description="port of the REST API")
    api_db_connections: int = Field(
        16,
        ge=1,
        le=256,
        description="Postgres connections of the API's aggregates read path (concurrent queries)",
    )
    api_db_pool: int = Field(
        10,
        ge=1,
        le=512,
        description="Postgres connections of the API's request path (as many again on overflow); "
        "a fleet's waking wave of long-polls needs more (bench fleet, docs/benchmarks.md)",
    )
    max_body_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="largest request body (model bundles); 413 above"
    )
    api_header_timeout_s: float = Field(
        10.0, gt=0, description="a request's headers must be in within this (slow clients cut)"
    )
    api_body_timeout_s: float = Field(
        120.0, gt=0, description="a request's body must be in within this after its headers"
    )
    api_max_connections: int = Field(
        512, ge=1, description="open connections and requests at most; 503 above (uvicorn)"
    )
    api_access_log: bool = Field(True, description="one log line per request")
    api_migrate: bool = Field(True, description="upgrade the cloud schema to head at start")

    # --- Kafka worker (edgecloud cloud worker) ---
    kafka_group_id: str = Field(DEFAULT_GROUP_ID, description="consumer group of the worker")
    worker_batch_size: int = Field(
        2000, ge=1, le=100_000, description="Kafka messages consumed and committed per DB batch"
    )
    worker_poll_timeout_s: float = Field(
        0.5, gt=0, description="longest wait for a batch to fill before it is written"
    )
    worker_metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve Prometheus /metrics of the worker on this port"
    )
    worker_metrics_host: str = Field(
        "127.0.0.1", description="address of the worker's /metrics (0.0.0.0 in a container)"
    )
    worker_migrate: bool = Field(True, description="upgrade the cloud schema to head at start")

    # --- escalation (readings with escalate=true -> OpenAI-compatible LLM) ---
    openai_api_key: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "EDGECLOUD_OPENAI_API_KEY"),
        description="OPENAI_API_KEY; escalation is disabled without it",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "EDGECLOUD_OPENAI_BASE_URL"),
        description="OPENAI_BASE_URL: OpenAI, NVIDIA NIM or any OpenAI-compatible server",
    )
    escalation_model: str = Field("gpt-4o-mini", description="chat model used for escalation")
    escalation_concurrency: int = Field(4, ge=1, le=256, description="requests in flight at most")
    escalation_timeout_s: float = Field(30.0, gt=0, description="timeout of one LLM request")
    escalation_max_attempts: int = Field(4, ge=1, le=20, description="tries per reading")
    escalation_backoff_s: float = Field(0.5, ge=0, description="first retry delay (doubles)")
    escalation_backoff_max_s: float = Field(30.0, ge=0, description="longest retry delay")
    escalation_breaker_failures: int = Field(
        5, ge=1, description="consecutive failures that open the circuit breaker"
    )
    escalation_breaker_cooldown_s: float = Field(
        30.0, ge=0, description="open breaker waits this long before one half-open probe"
    )
    escalation_token_budget: int = Field(
        200_000, ge=0, description="LLM tokens per budget period (0: no escalation)"
    )
    escalation_budget_period_s: float = Field(3600.0, gt=0, description="length of the period")
    escalation_max_tokens: int = Field(400, ge=16, description="max_tokens of one completion")

    # --- learning loop (POST /api/v1/models/{name}/retrain, docs/learning.md) ---
    retrain_job: str = Field(
        "edgecloud.learning.job:retrain", description="module:function of the retraining job"
    )
    retrain_signing_key: Path | None = Field(
        None, description="operator private key (PEM) the retraining job signs candidates with"
    )
    retrain_metric: str = Field("f1", description="held-out figure a candidate must improve")
    retrain_min_gain: float = Field(
        0.02, ge=0, le=1, description="least improvement of retrain_metric that ships"
    )

    # --- Dapr sidecar (docs/dapr.md; 0: no Dapr, the default outside dev up) ---
    dapr_http_port: int = Field(0, ge=0, le=65535, description="HTTP port of the Dapr sidecar")
    dapr_grpc_port: int = Field(
        0, ge=0, le=65535, description="gRPC port of the Dapr sidecar (0: no Dapr)"
    )
    dapr_pubsub: str = Field(
        "cloud-pubsub", description="Dapr pub/sub component of rollout and node transitions"
    )
    dapr_topic_prefix: str = Field(
        "edgecloud.dapr.", description="prefix of the transition topics (edgecloud.dapr.*)"
    )
    dapr_secret_store: str = Field(
        "", description="Dapr secret store read at start (database-url, openai-api-key)"
    )
    dapr_app_token: SecretStr | None = Field(
        None, description="token daprd sends to the app (dapr-api-token) on input bindings"
    )
    alert_binding: str = Field(
        "", description="Dapr output binding the worker invokes per alert (empty: no alerts)"
    )
    alert_operation: str = Field("post", description="operation of the alert binding")
    alert_min_score: float = Field(
        0.9, ge=0, le=1, description="an anomaly alerts when its score is at least this"
    )

    def registry_settings(self) -> RegistrySettings:
        """The registry and rollout engine's config, from this tree's values."""
        return RegistrySettings.model_validate(
            {name: getattr(self, name) for name in RegistrySettings.model_fields}
        )

    @property
    def dapr_enabled(self) -> bool:
        return bool(self.dapr_grpc_port)

    @property
    def escalation_enabled(self) -> bool:
        return bool(self.openai_api_key)
