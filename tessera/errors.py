"""Service-level errors. The API maps each class to one HTTP status in one place."""

from __future__ import annotations

from tessera.providers.faults import ProviderError


class TesseraError(Exception):
    """Base of errors a caller can act on; `code` is a stable machine-readable name."""

    code = "error"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class NotFoundError(TesseraError):
    code = "not_found"


class ConflictError(TesseraError):
    code = "conflict"


class InvalidInputError(TesseraError):
    code = "invalid_input"


class ProviderFailedError(TesseraError):
    """A pool could not be reached or refused the call; `provider_code` says how."""

    code = "provider_failed"

    def __init__(
        self, message: str, *, provider_code: str, retryable: bool, retry_after_s: float | None
    ) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.provider_code = provider_code
        self.retryable = retryable

    @classmethod
    def during(cls, action: str, fault: ProviderError) -> ProviderFailedError:
        """The service-level error for a provider fault met while doing `action`; callers
        are told to retry in 30 s when the fault is transient."""
        return cls(
            f"{action} failed ({fault.code}): {fault.message}",
            provider_code=fault.code,
            retryable=fault.retryable,
            retry_after_s=30.0 if fault.retryable else None,
        )


class UnsupportedError(InvalidInputError):
    """The provider lacks the capability an operation needs; refused before any task."""

    code = "unsupported"

    def __init__(self, message: str, *, capability: str) -> None:
        super().__init__(message)
        self.capability = capability


class NoValidPlacementError(ConflictError):
    """No candidate can take the VM now (Nova's NoValidHost, explained): the message sums
    up why, `rejected_by` counts the candidates each filter turned down. A conflict with
    the estate's current state rather than bad input: it may fit once capacity frees."""

    code = "no_valid_placement"

    def __init__(self, message: str, *, rejected_by: dict[str, int]) -> None:
        super().__init__(message)
        self.rejected_by = rejected_by


class LockedError(ConflictError):
    """A VM is held by another unfinished task; `holder_task_id` names it."""

    code = "locked"

    def __init__(self, message: str, *, holder_task_id: str) -> None:
        super().__init__(message)
        self.holder_task_id = holder_task_id


class UnauthorizedError(TesseraError):
    """No valid credentials (401)."""

    code = "unauthorized"


class ForbiddenError(TesseraError):
    """Known caller, not allowed this action in their own project (403)."""

    code = "forbidden"


class TooManyRequestsError(TesseraError):
    """Slow down: too many attempts, or an account locked for a while (429)."""

    code = "too_many_requests"


class UnavailableError(TesseraError):
    """A service Tessera depends on (other than a pool), such as the user directory,
    cannot be reached now (503)."""

    code = "unavailable"


class QuotaExceededError(ForbiddenError):
    """The request would take its project past a quota (403, as Nova's "Quota exceeded"):
    the caller may be allowed the action, just not this much more of it. `in_use` counts
    what the project has and what its unfinished tasks have reserved."""

    code = "quota_exceeded"

    def __init__(
        self, message: str, *, quota: str, limit: int, in_use: int, requested: int
    ) -> None:
        super().__init__(message)
        self.quota = quota
        self.limit = limit
        self.in_use = in_use
        self.requested = requested
