"""The control API's settings: one class, read once in ``main()`` (or by ``modelport up``).

Every field is an environment variable with the prefix ``MODELPORT_API_``
(``MODELPORT_API_DATABASE_URL``). The defaults are the embedded ones ``modelport up`` uses;
``environment=production`` refuses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from modelport.api.auth import SigningKeys
from modelport.core.errors import ModelportError
from modelport.core.keys import KeyRing, parse_key_ring
from modelport.core.scan.sandbox import ProcessLimits
from modelport.core.spec import EndpointRule, Routing
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The JWT secret every development install shares; production refuses it.
PLACEHOLDER_SECRET = "modelport-development-secret-change-me"  # noqa: S105


#: A Kubernetes CPU quantity (``500m``, ``2``) and memory quantity (``512Mi``, ``4G``).
CPU_QUANTITY = r"^[0-9]+(\.[0-9]+)?m?$"
MEMORY_QUANTITY = r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$"


class SubscriptionLimits(BaseModel):
    """Per-subscription limits: the defaults given to new users (admins can change each user's
    rate and models limits) and the caps on every model's deployment settings.

    Models of administrators are not capped."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int = Field(ge=0)
    """Control-API requests per minute, and each inference key's per-minute limit (0: none).
    A model's own ``rateLimitPerMinute`` may not exceed the owner's value (nor be 0 under one)."""
    models_limit: int = Field(ge=0)
    """How many models a user may own at once."""
    max_gpus_per_model: int = Field(default=0, ge=0)
    """GPUs one replica of a model may request (``gpuCount``)."""
    max_replicas: int = Field(default=3, ge=1)
    """Replicas a model may run or scale to (``replicas``, ``minReplicas``, ``maxReplicas``)."""
    max_cpu_per_replica: str = Field(default="2", pattern=CPU_QUANTITY)
    """CPU one replica may request (``cpu``, a Kubernetes quantity)."""
    max_memory_per_replica: str = Field(default="4Gi", pattern=MEMORY_QUANTITY)
    """Memory one replica may request (``memory``, a Kubernetes quantity)."""


_FREE = SubscriptionLimits(requests_per_minute=60, models_limit=5)
_PREMIUM = SubscriptionLimits(
    requests_per_minute=600,
    models_limit=100,
    max_gpus_per_model=4,
    max_replicas=20,
    max_cpu_per_replica="16",
    max_memory_per_replica="64Gi",
)


class ApiSettings(BaseSettings):
    """Settings of one control-API process."""

    model_config = SettingsConfigDict(
        env_prefix="MODELPORT_API_",
        env_nested_delimiter="__",
        extra="forbid",
        hide_input_in_errors=True,
    )

    environment: Literal["development", "production"] = "development"
    """``production`` refuses the embedded defaults: SQLite, the placeholder JWT secret, no
    master key, the local deployer."""
    database_url: str = "sqlite:///./modelport.db"
    """SQLAlchemy URL: ``postgresql+psycopg2://...`` in production, SQLite for ``modelport up``."""
    artifact_uri: str = "file:///tmp/modelport-artifacts"
    """Where encrypted artifacts go: ``s3://bucket/prefix`` or ``file:///abs/dir``."""
    s3_endpoint_url: str | None = None
    """S3-API endpoint (credentials and region from the standard ``AWS_*`` variables)."""
    master_keys: SecretStr | None = None
    """Master keys wrapping the data keys, ``"k1:<base64 32 bytes>,k2:<base64>"``; the last one
    (or ``master_key_current``) wraps new uploads, the others only unwrap (rotation)."""
    master_key_current: str | None = None
    """Id of the master key that wraps new data keys (default: the last one listed)."""
    jwt_secret: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    """Secret the keys that sign login tokens, the OpenID Connect state and the runtimes' usage
    tokens are derived from, one per purpose (at least 32 characters in production)."""
    jwt_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    """Lifetime of a login token."""
    signup: Literal["open", "admin"] = "open"
    """``open``: anyone may sign up; ``admin``: only admins create users."""
    allowed_hosts: list[str] | None = None
    """Host names (``Host`` header) this API answers to; any other gets 400 before a route runs
    (DNS rebinding). Entries: ``api.example.com`` (any port), ``127.0.0.1:8000`` (that port),
    ``*.example.com`` (any subdomain), ``*`` (any host). ``/healthz`` and ``/readyz`` answer
    any host (the kubelet probes by pod IP; metrics are on a port of their own). Unset: any host in
    development; production refuses to start without it. As JSON in the environment:
    ``MODELPORT_API_ALLOWED_HOSTS='["api.example.com"]'``."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or CIDR ranges of the proxies (the ingress controller) whose
    ``X-Forwarded-For`` names the client; from any other peer the header is ignored and the
    client is the socket's peer. Empty: no proxy is trusted."""
    login_failures_per_account: int = Field(default=5, ge=1)
    """Wrong passwords an account may get before each further login attempt has to wait: 1 s,
    then twice as long after every further failure (up to ``login_backoff_max_seconds``); 429
    with ``Retry-After`` meanwhile. A correct password resets the count."""
    login_failures_per_address: int = Field(default=20, ge=1)
    """The same for one client address, over all accounts (refused sign-ups count too); a
    correct password does not reset it, its failures are forgotten after a quiet window."""
    login_backoff_max_seconds: int = Field(default=900, ge=1)
    """The longest wait the login back-off imposes; failures are forgotten after this long
    without one."""
    signups_per_minute: int = Field(default=10, ge=0)
    """Sign-ups one client address may make per minute (bursts of as many; 0: no limit)."""
    password_hash_concurrency: int = Field(default=4, ge=1)
    """Password hashes (argon2id, 64 MiB each) this process runs at once; logins and sign-ups
    beyond it wait ``password_hash_wait_seconds``, then get 503 with ``Retry-After``."""
    password_hash_wait_seconds: float = Field(default=5.0, ge=0)
    """How long a login or sign-up waits for a free password-hash slot."""
    max_upload_bytes: int = Field(default=2 << 30, ge=1)
    """Largest model file accepted; enforced while the upload is read."""
    spool_dir: Path | None = None
    """Parent of the private (0700) temporary folders that hold an upload's plaintext while it is
    scanned; removed on every path. Default: the system temporary folder. Prefer a tmpfs."""
    scan_cpu_seconds: int = Field(default=60, ge=1)
    """CPU seconds the security scan of one upload may use. It runs in a child process with
    ``RLIMIT_CPU`` set; past it the upload is refused (400, ``undecidable``)."""
    scan_memory_bytes: int = Field(default=1 << 30, ge=256 << 20)
    """Address space of that child process (``RLIMIT_AS``): interpreter and scanner together;
    the upload's size is added, since the file is mapped into it. Past it: 400, ``undecidable``."""
    scan_timeout_seconds: float = Field(default=120.0, gt=0)
    """Wall-clock seconds one upload's scan may take; then the child is stopped and the upload
    refused (400, ``undecidable``)."""
    public_url: str = "http://127.0.0.1:8000"
    """The API's own external base URL (endpoint URLs of locally run models are built from it)."""
    metrics_host: str = "127.0.0.1"
    """Listen address of the metrics server (``0.0.0.0`` in a pod, where Prometheus scrapes it)."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Port of the Prometheus ``/metrics`` server that runs beside the API, apart from the port
    the Ingress routes; unset: no metrics server (``modelport up``)."""
    usage_report_url: str | None = None
    """Where runtimes POST usage reports; default ``{public_url}/api/v1/internal/usage``."""
    usage_token: SecretStr | None = None
    """Shared token runtimes in the cluster report usage with (the operator mounts the same one);
    unset: each model reports with its own derived token only (local runtimes)."""
    deployer: Literal["local", "kubernetes", "none"] = "local"
    """How models run: local runtime processes, MLModel resources, or not at all (tests)."""
    data_dir: Path = Path("./.modelport")
    """Working folder of the local deployer (per-model key files, logs)."""
    runtime_command: list[str] = Field(default_factory=list)
    """Command that starts ``modelport-runtime`` for the local deployer (default: this Python)."""
    local_runtime_uid: int = Field(default=65534, ge=1)
    """When the API runs as root: the user id the local runtimes run as (default ``nobody``), so
    that they cannot read the API's secrets. It must be able to read the runtime's interpreter and
    the artifacts; if it cannot, runtimes run as the API's user (logged as a warning)."""
    local_runtime_gid: int = Field(default=65534, ge=1)
    """When the API runs as root: the group id the local runtimes run as."""
    kubernetes_namespace: str = "modelport-models"
    """Namespace of the MLModel resources and Secrets."""
    kubernetes_ingress_host: str | None = None
    """Ingress domain of the models: endpoint URLs follow the operator's rule
    (:class:`modelport.core.spec.EndpointRule`) until the operator reports the URL it gave the
    model (which then wins). Unset: ``{public_url}/models/<id>``."""
    kubernetes_routing: Routing = Routing.HOST
    """The operator's routing: ``host`` (``<id>.<namespace>.<domain>``) or ``path``
    (``<domain><path_prefix>/<namespace>/<id>``)."""
    kubernetes_path_prefix: str = "/models"
    """The operator's path prefix under ``path`` routing."""
    kubernetes_ingress_tls: bool = True
    """Whether the operator serves model URLs over HTTPS."""
    runtime_image: str | None = None
    """Runtime image override written into each MLModel (none: the operator's default)."""
    free: SubscriptionLimits = _FREE
    """Limits of the ``free`` subscription; each field alone can be set
    (``MODELPORT_API_FREE__MAX_REPLICAS=5``), the others keep their defaults."""
    premium: SubscriptionLimits = _PREMIUM
    """Limits of the ``premium`` subscription (``MODELPORT_API_PREMIUM__...``)."""
    oidc_issuer: str | None = None
    """OpenID Connect issuer URL; set with the client id and secret to enable OIDC login."""
    oidc_client_id: str | None = None
    """OpenID Connect client id."""
    oidc_client_secret: SecretStr | None = None
    """OpenID Connect client secret."""
    db_pool_size: int = Field(default=10, ge=1)
    """Connections kept open per process (PostgreSQL)."""

    @field_validator("free", "premium", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        """Fields given alone (one environment variable) keep the others' defaults."""
        if isinstance(value, dict):
            default = _FREE if info.field_name == "free" else _PREMIUM
            return {**default.model_dump(), **value}
        return value

    _signing: SigningKeys | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _refuse_embedded_defaults(self) -> ApiSettings:
        try:
            self.key_ring()  # a malformed master key fails at start-up, in every environment
        except ModelportError as exc:
            raise ValueError(exc.message) from None
        if self.environment != "production":
            return self
        problems: list[str] = []
        if self.database_url.startswith("sqlite"):
            problems.append("database_url is SQLite; production needs PostgreSQL")
        secret = self.jwt_secret.get_secret_value()
        if secret == PLACEHOLDER_SECRET or len(secret) < 32:
            problems.append("jwt_secret is the placeholder or shorter than 32 characters")
        if self.master_keys is None:
            problems.append("master_keys is not set")
        if self.artifact_uri.startswith("file:///tmp"):
            problems.append("artifact_uri is the embedded default")
        if self.allowed_hosts is None:
            problems.append("allowed_hosts is not set (the API's host names)")
        if self.deployer == "local":
            problems.append(
                "deployer is local: model runtimes would run beside the API, on its machine and "
                "with its privileges; production runs models on Kubernetes (deployer=kubernetes)"
            )
        if problems:
            raise ValueError("refusing production settings: " + "; ".join(problems))
        return self

    def signing_keys(self) -> SigningKeys:
        """The per-purpose keys derived from ``jwt_secret`` (derived once per settings object,
        i.e. once per process: login tokens of earlier releases verify only when issued before)."""
        if self._signing is None:
            self._signing = SigningKeys.derive(self.jwt_secret.get_secret_value())
        return self._signing

    def key_ring(self) -> KeyRing | None:
        """The master-key ring, or None when none is configured."""
        if self.master_keys is None:
            return None
        return parse_key_ring(self.master_keys.get_secret_value(), self.master_key_current)

    def scan_limits(self) -> ProcessLimits:
        """What the child process that scans one upload may use."""
        return ProcessLimits(
            cpu_seconds=self.scan_cpu_seconds,
            memory_bytes=self.scan_memory_bytes,
            wall_seconds=self.scan_timeout_seconds,
        )

    def limits_for(self, subscription: str) -> SubscriptionLimits:
        """Default limits of a subscription."""
        return self.premium if subscription == "premium" else self.free

    def endpoint_rule(self) -> EndpointRule | None:
        """The operator's URL rule for models in the cluster; None without an ingress domain."""
        if not self.kubernetes_ingress_host:
            return None
        return EndpointRule(
            domain=self.kubernetes_ingress_host,
            routing=self.kubernetes_routing,
            path_prefix=self.kubernetes_path_prefix,
            tls=self.kubernetes_ingress_tls,
        )

    def usage_url(self) -> str:
        """The URL runtimes report usage to."""
        return self.usage_report_url or f"{self.public_url.rstrip('/')}/api/v1/internal/usage"
