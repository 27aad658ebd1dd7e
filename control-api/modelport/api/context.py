"""What one API process holds: settings, database, artifact store, deployer, limiters, metrics."""

from __future__ import annotations

from dataclasses import dataclass

from modelport.api.db.session import Database
from modelport.api.deployers.base import Deployer
from modelport.api.metrics import Metrics
from modelport.api.settings import ApiSettings
from modelport.api.throttle import LoginGuard
from modelport.core.keys import KeyRing
from modelport.core.ratelimit import RateLimiter
from modelport.core.storage import ArtifactStore


@dataclass
class AppContext:
    settings: ApiSettings
    db: Database
    store: ArtifactStore
    deployer: Deployer
    keys: KeyRing
    limiter: RateLimiter
    metrics: Metrics
    login_guard: LoginGuard

    def usage_token(self, model_id: str) -> str:
        """The bearer token a model's runtime reports usage with (derived, never stored)."""
        return self.settings.signing_keys().usage_token(model_id)
