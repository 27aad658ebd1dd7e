"""What a model's deployment settings may ask for: the caps of its owner's subscription.

Every write of a model's settings (the upload's defaults, ``PATCH /api/v1/models/{id}``) passes
:func:`check_settings` first; a refusal names each field over its cap and changes nothing.
Models of administrators are not capped. The per-key inference limit is the owner's
``requestsPerMinute``: a model may lower it, never raise it, and never lift it (0) when it is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from modelport.api.db.tables import Role, User
from modelport.api.errors import SettingsLimitExceeded
from modelport.api.schemas import DeploymentSettings
from modelport.api.settings import ApiSettings, SubscriptionLimits

_MEMORY_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def cpu_cores(quantity: str) -> Fraction:
    """A Kubernetes CPU quantity in cores: ``500m`` is 1/2, ``2`` is 2."""
    if quantity.endswith("m"):
        return Fraction(quantity[:-1]) / 1000
    return Fraction(quantity)


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity in bytes: ``512Mi``, ``4G``, ``1000``."""
    digits = quantity.rstrip("kMGTi")
    return int(digits) * _MEMORY_UNITS[quantity[len(digits) :]]


@dataclass(frozen=True)
class Caps:
    """The caps one owner's models live within (``None``: an administrator, not capped)."""

    subscription: str
    limits: SubscriptionLimits | None
    requests_per_minute: int
    """The owner's own per-minute limit (0: none), the most a model's rate limit may be."""

    @classmethod
    def of(cls, owner: User, *, settings: ApiSettings) -> Caps:
        limits = None if owner.role is Role.ADMIN else settings.limits_for(owner.subscription)
        return cls(
            subscription=owner.subscription.value,
            limits=limits,
            requests_per_minute=owner.requests_per_minute,
        )

    def initial_settings(self) -> DeploymentSettings:
        """A new model's settings: the defaults, with replicas brought within the caps."""
        defaults = DeploymentSettings()
        if self.limits is None:
            return defaults
        top = self.limits.max_replicas
        return defaults.model_copy(
            update={
                "replicas": min(defaults.replicas, top),
                "min_replicas": min(defaults.min_replicas, top),
                "max_replicas": min(defaults.max_replicas, top),
            }
        )


def check_settings(settings: DeploymentSettings, *, caps: Caps) -> None:
    """Refuse (403, ``settings_limit_exceeded``) settings beyond the owner's caps; each field
    over its cap is named in the details with its value and the cap."""
    over = _over_caps(settings, caps)
    if over:
        listed = "; ".join(f"{o['field']} {o['value']} (at most {o['limit']})" for o in over)
        raise SettingsLimitExceeded(
            f"the {caps.subscription} subscription does not allow {listed}; nothing was "
            "changed (an administrator can change the subscription)",
            details={"subscription": caps.subscription, "exceeded": over},
        )


def _over_caps(settings: DeploymentSettings, caps: Caps) -> list[dict[str, Any]]:
    limits = caps.limits
    if limits is None:
        return []
    over: list[dict[str, Any]] = []

    def refuse(field: str, value: object, limit: object) -> None:
        over.append({"field": field, "value": value, "limit": limit})

    for field, value in (
        ("replicas", settings.replicas),
        ("minReplicas", settings.min_replicas),
        ("maxReplicas", settings.max_replicas),
    ):
        if value > limits.max_replicas:
            refuse(field, value, limits.max_replicas)
    if settings.gpu_count > limits.max_gpus_per_model:
        refuse("gpuCount", settings.gpu_count, limits.max_gpus_per_model)
    if settings.cpu is not None and cpu_cores(settings.cpu) > cpu_cores(limits.max_cpu_per_replica):
        refuse("cpu", settings.cpu, limits.max_cpu_per_replica)
    if settings.memory is not None and memory_bytes(settings.memory) > memory_bytes(
        limits.max_memory_per_replica
    ):
        refuse("memory", settings.memory, limits.max_memory_per_replica)
    rate, ceiling = settings.rate_limit_per_minute, caps.requests_per_minute
    if ceiling > 0 and rate is not None and (rate == 0 or rate > ceiling):
        refuse("rateLimitPerMinute", rate, ceiling)  # 0 would lift the owner's limit
    return over


def effective_rate_limit(key_limit: int | None, model_limit: int | None) -> int:
    """The per-minute limit a runtime applies to one key: the tighter of the key's (its owner's)
    and the model's; 0 or None on one side sets no limit there; 0 when neither sets one."""
    limits = [limit for limit in (key_limit, model_limit) if limit]
    return min(limits) if limits else 0
