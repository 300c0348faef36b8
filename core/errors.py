"""The one error tree of Switchboard.

Every error a person or a client can act on derives from ``SwitchboardError``.
Its ``message`` says what went wrong and what to do, and never carries a secret.
``http_status`` and ``code`` let the API map an error to an OpenAI-shaped body.

    SwitchboardError
    ├── InvalidInput          400  the caller sent something malformed
    ├── NotFound              404  an id, user, team or model does not exist
    ├── Conflict              409  a duplicate (username, token name, endpoint)
    ├── PermissionDenied      403  the caller's role does not allow it
    │   └── ModelNotAllowed   403  a named model the caller has no key for (/v1)
    ├── AuthenticationFailed  401  bad password or gateway token
    ├── LoginLocked           429  too many failed sign-ins
    ├── ConfigError           500  settings are missing or malformed
    ├── DatabaseUnavailable   503  the database cannot be reached or written
    ├── NoKey                 400  no API key for any candidate provider
    ├── BudgetExceeded        402  a hard budget would be overspent
    ├── RateLimited           429  per-user request or token limit
    ├── ContextTooLong        400  the prompt fits no candidate's context window
    ├── ContentRefused        400  the provider refused on content policy
    ├── UpstreamTimeout       504  every candidate timed out
    └── AllModelsFailed       502  every model in the chain failed
"""

from __future__ import annotations

from typing import ClassVar


class SwitchboardError(Exception):
    """Root of every error Switchboard raises on purpose."""

    http_status: ClassVar[int] = 500
    code: ClassVar[str] = "switchboard_error"
    kind: ClassVar[str] = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(SwitchboardError):
    http_status = 400
    code = "invalid_input"
    kind = "invalid_request_error"


class NotFound(SwitchboardError):
    http_status = 404
    code = "not_found"
    kind = "invalid_request_error"


class Conflict(SwitchboardError):
    http_status = 409
    code = "conflict"
    kind = "invalid_request_error"


class PermissionDenied(SwitchboardError):
    http_status = 403
    code = "permission_denied"
    kind = "permission_error"


class ModelNotAllowed(PermissionDenied):
    """The model exists, but GET /v1/models would not list it for this caller."""

    code = "model_not_allowed"


class AuthenticationFailed(SwitchboardError):
    http_status = 401
    code = "invalid_api_key"
    kind = "authentication_error"


class LoginLocked(SwitchboardError):
    http_status = 429
    code = "login_locked"
    kind = "authentication_error"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConfigError(SwitchboardError):
    code = "config_error"


class DatabaseUnavailable(SwitchboardError):
    http_status = 503
    code = "database_unavailable"

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NoKey(SwitchboardError):
    http_status = 400
    code = "no_key"
    kind = "invalid_request_error"


class BudgetExceeded(SwitchboardError):
    http_status = 402
    code = "budget_exceeded"
    kind = "insufficient_quota"


class RateLimited(SwitchboardError):
    http_status = 429
    code = "rate_limited"
    kind = "rate_limit_error"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ContextTooLong(SwitchboardError):
    http_status = 400
    code = "context_length_exceeded"
    kind = "invalid_request_error"


class ContentRefused(SwitchboardError):
    http_status = 400
    code = "content_policy_violation"
    kind = "invalid_request_error"


class UpstreamTimeout(SwitchboardError):
    http_status = 504
    code = "upstream_timeout"
    kind = "timeout_error"


class AllModelsFailed(SwitchboardError):
    http_status = 502
    code = "all_models_failed"
    kind = "upstream_error"
