"""The control API's own refusals, on top of :mod:`modelport.core.errors`."""

from __future__ import annotations

from modelport.core.errors import BadInput, Forbidden, ModelportError, NotReady


class UploadRefused(BadInput):
    """The upload form or its file is not what an upload needs (the message says what)."""

    code = "bad_upload"


class StorageFailed(ModelportError):
    """The artifact store refused or vanished mid-write: nothing was kept, the client may retry."""

    status = 500
    code = "storage_failed"


class ModelsLimitReached(Forbidden):
    code = "models_limit_reached"


class SettingsLimitExceeded(Forbidden):
    """A model's settings ask for more than the owner's subscription allows."""

    code = "settings_limit_exceeded"


class DatabaseUnavailable(NotReady):
    code = "database_unavailable"


class DeployFailed(ModelportError):
    status = 500
    code = "deploy_failed"
