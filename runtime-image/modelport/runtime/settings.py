"""The runtime's one settings class: environment ``MODELPORT_RUNTIME_*``, flags win.

The names are fixed by docs/contracts.md; every field below is also a ``--kebab-case`` flag.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelport.core.constants import (
    ENV_PREFIX_RUNTIME,
    RUNTIME_METRICS_PORT,
    RUNTIME_PORT,
    TERMINATION_MESSAGE_PATH,
)
from modelport.core.formats import ModelFormat
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    """Everything one runtime process needs to serve one model."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX_RUNTIME,
        extra="forbid",
        use_attribute_docstrings=True,
        protected_namespaces=(),
    )

    model_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """The name the model is served under (``/v2/models/{name}``)."""

    artifact_uri: str = Field(min_length=1)
    """``s3://bucket/key`` or ``file:///abs/path`` of the stored (encrypted) artifact."""

    format: ModelFormat
    """``pkl``, ``joblib``, ``h5``, ``keras``, ``onnx``, ``pt``, ``pth`` or ``pt2``."""

    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    """Hex sha256 of the plaintext model file, verified after decryption and before loading."""

    key_file: Path | None = None
    """Data-key file (base64 of the 32-byte key); unset means the artifact is stored unencrypted."""

    host: str = "0.0.0.0"  # noqa: S104 - a pod listens on all its interfaces
    """Listen address."""

    port: int = Field(default=RUNTIME_PORT, ge=0, le=65535)
    """Listen port of inference, metadata and health."""

    metrics_host: str = "0.0.0.0"  # noqa: S104 - Prometheus scrapes the pod's address
    """Listen address of ``/metrics``."""

    metrics_port: int = Field(default=RUNTIME_METRICS_PORT, ge=1, le=65535)
    """Listen port of ``/metrics``: a port of its own, which no Ingress or proxy routes."""

    auth_keys_file: Path | None = None
    """Inference keys file (JSON, docs/contracts.md), mounted from the model's Secret."""

    auth_reload_seconds: float = Field(default=10.0, gt=0)
    """How often the inference keys file is re-read."""

    auth_required: bool = True
    """Without a valid key, inference answers 401."""

    rate_limit_per_minute: int = Field(default=0, ge=0)
    """Per-key limit for keys whose entry names none; 0 means unlimited."""

    max_batch_size: int = Field(default=1, ge=1)
    """Adaptive batching: most rows merged into one framework call; 1 turns batching off."""

    max_batch_wait_ms: float = Field(default=0.0, ge=0)
    """Adaptive batching: how long a lone request may wait for company (0: never wait)."""

    predict_timeout_seconds: float = Field(default=30.0, gt=0)
    """A prediction running past this answers 504."""

    max_request_bytes: int = Field(default=64 << 20, gt=0)
    """Largest accepted request body; larger answers 413."""

    usage_report_url: str | None = None
    """Where the usage counters are POSTed (the control API); unset turns reporting off."""

    usage_token_file: Path | None = None
    """File holding the bearer token for usage reports."""

    usage_report_seconds: float = Field(default=15.0, gt=0)
    """How often usage counters are reported."""

    s3_endpoint_url: str | None = None
    """S3-API endpoint; credentials and region come from the standard ``AWS_*`` variables."""

    drain_seconds: float = Field(default=25.0, ge=0)
    """On SIGTERM: how long in-flight requests may take to finish before the process exits."""

    termination_message_path: Path = Path(TERMINATION_MESSAGE_PATH)
    """Where a failed start writes its one-line reason (Kubernetes shows it as the container's
    termination message; ``modelport up`` reads it). The default path is written only where it
    exists, as in a pod; a path set explicitly is created."""

    log_level: str = "info"
    """Log level of the runtime and its HTTP server."""

    debug_predict_delay_seconds: float = Field(default=0.0, ge=0)
    """Test-only: sleep this long inside every model call (exercises timeouts and draining)."""

    @model_validator(mode="after")
    def _metrics_port_apart(self) -> RuntimeSettings:
        if self.metrics_port == self.port:
            raise ValueError(
                f"metrics_port and port are both {self.port}: metrics need a port of their own"
            )
        return self

    @model_validator(mode="after")
    def _auth_needs_keys(self) -> RuntimeSettings:
        if self.auth_required and self.auth_keys_file is None:
            raise ValueError(
                "auth_required is true but auth_keys_file is not set: mount the model's "
                "auth-keys.json or set MODELPORT_RUNTIME_AUTH_REQUIRED=false"
            )
        return self


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    """One flag per settings field; a flag left out falls back to the environment."""
    parser = argparse.ArgumentParser(
        prog="modelport-runtime",
        description="Serve one Modelport model over the Open Inference Protocol, KServe v1 "
        f"and /predict. Every flag is also an environment variable {ENV_PREFIX_RUNTIME}<NAME>.",
        argument_default=argparse.SUPPRESS,
    )
    for name, field in RuntimeSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = ENV_PREFIX_RUNTIME + name.upper()
        helptext = f"{field.description or ''} [env {env}]"
        if field.annotation is bool:
            parser.add_argument(flag, type=_parse_bool, metavar="BOOL", help=helptext)
        else:
            parser.add_argument(flag, help=helptext)
    return parser


def load_settings(argv: Sequence[str] | None = None) -> RuntimeSettings:
    """Settings from flags over environment; raises pydantic's ValidationError when invalid."""
    flags: dict[str, Any] = vars(build_parser().parse_args(argv))
    return RuntimeSettings(**flags)
