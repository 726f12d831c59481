"""The fault taxonomy every provider maps its native errors into.

Callers act on the class (retry, mark the pool unreachable, answer 404/409) and never on
pyvmomi faults or libvirt error codes.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed. `retryable` says whether the same call may later succeed."""

    retryable: bool = False
    code: str = "provider_error"

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ProviderUnreachable(ProviderError):
    """The endpoint did not answer (refused, reset, DNS, TLS handshake)."""

    retryable = True
    code = "unreachable"


class ProviderAuthFailed(ProviderError):
    """The endpoint answered but refused the credentials."""

    code = "auth_failed"


class ProviderNotFound(ProviderError):
    """The object the call named does not exist (any more) on the provider."""

    code = "not_found"


class ProviderConflict(ProviderError):
    """The object is in a state that forbids the call, or is busy with another task."""

    code = "conflict"


class ProviderTimeout(ProviderError):
    """The endpoint accepted the call but did not finish in time."""

    retryable = True
    code = "timeout"


class ProviderUnsupported(ProviderError):
    """The provider cannot do this at all; `capability` names the flag that says so."""

    code = "unsupported"

    def __init__(
        self, message: str, *, detail: str | None = None, capability: str | None = None
    ) -> None:
        super().__init__(message, detail=detail)
        self.capability = capability


class ProviderInvalidRequest(ProviderError):
    """The provider rejected the call's arguments."""

    code = "invalid_request"
