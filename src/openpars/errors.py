"""Domain errors: each carries a stable code, an HTTP status and, where it applies, the field."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error openpars reports to a caller."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the API returns for this error."""
        # ``field`` is always present (null when the error is about no one field).
        body: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(DomainError):
    """The payload breaks a rule (a field out of range, an impossible date)."""

    status = 422
    code = "invalid_input"


class NotAuthenticated(DomainError):
    """No valid credentials were presented."""

    status = 401
    code = "not_authenticated"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    status = 403
    code = "forbidden"


class NotFound(DomainError):
    """Nothing the caller may see exists under this identifier."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (out-of-order step, duplicate)."""

    status = 409
    code = "conflict"


class TooManyRequests(DomainError):
    """A rate limit was exceeded; ``retry_after`` says when to try again."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.details.setdefault("retry_after_seconds", round(retry_after, 3))


class AuditUnavailable(DomainError):
    """The audit entry could not be written, so nothing is returned."""

    status = 503
    code = "audit_unavailable"
