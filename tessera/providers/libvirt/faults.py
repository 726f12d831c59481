"""libvirt error codes mapped into Tessera's fault taxonomy.

Callers see ProviderError subclasses only; the libvirt code and message stay in `detail`.
"""

from __future__ import annotations

import libvirt

from tessera.providers.faults import (
    ProviderAuthFailed,
    ProviderConflict,
    ProviderError,
    ProviderInvalidRequest,
    ProviderNotFound,
    ProviderTimeout,
    ProviderUnreachable,
    ProviderUnsupported,
)

_BY_CODE: dict[int, type[ProviderError]] = {
    libvirt.VIR_ERR_NO_DOMAIN: ProviderNotFound,
    libvirt.VIR_ERR_NO_NETWORK: ProviderNotFound,
    libvirt.VIR_ERR_NO_STORAGE_POOL: ProviderNotFound,
    libvirt.VIR_ERR_NO_STORAGE_VOL: ProviderNotFound,
    libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT: ProviderNotFound,
    libvirt.VIR_ERR_NO_INTERFACE: ProviderNotFound,
    libvirt.VIR_ERR_NO_NODE_DEVICE: ProviderNotFound,
    libvirt.VIR_ERR_NO_SECRET: ProviderNotFound,
    libvirt.VIR_ERR_AUTH_FAILED: ProviderAuthFailed,
    libvirt.VIR_ERR_AUTH_CANCELLED: ProviderAuthFailed,
    libvirt.VIR_ERR_AUTH_UNAVAILABLE: ProviderAuthFailed,
    libvirt.VIR_ERR_NO_CONNECT: ProviderUnreachable,
    libvirt.VIR_ERR_INVALID_CONN: ProviderUnreachable,
    libvirt.VIR_ERR_RPC: ProviderUnreachable,
    libvirt.VIR_ERR_OPERATION_INVALID: ProviderConflict,
    libvirt.VIR_ERR_OPERATION_FAILED: ProviderConflict,
    libvirt.VIR_ERR_DOM_EXIST: ProviderConflict,
    libvirt.VIR_ERR_NO_SUPPORT: ProviderUnsupported,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED: ProviderUnsupported,
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED: ProviderUnsupported,
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED: ProviderUnsupported,
    libvirt.VIR_ERR_OPERATION_TIMEOUT: ProviderTimeout,
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE: ProviderTimeout,
    libvirt.VIR_ERR_XML_ERROR: ProviderInvalidRequest,
    libvirt.VIR_ERR_XML_DETAIL: ProviderInvalidRequest,
    libvirt.VIR_ERR_INVALID_ARG: ProviderInvalidRequest,
}

# Errors raised by the RPC layer itself mean the daemon is gone, whatever their code
# ("client socket is closed" is an internal error, "connection refused" a system error).
_TRANSPORT_DOMAINS = frozenset({libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE})
_TRANSPORT_CODES = frozenset(
    {libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_ERR_RPC}
)


def translate(
    err: libvirt.libvirtError, what: str, *, connection_lost: bool = False
) -> ProviderError:
    """The taxonomy error for `err`, raised while doing `what`.

    `connection_lost` lets the caller, who knows the connection just died, turn any
    error into ProviderUnreachable.
    """
    code = err.get_error_code()
    message = err.get_error_message() or str(err)
    detail = f"libvirt error {code} (domain {err.get_error_domain()}): {message}"
    if connection_lost or (
        err.get_error_domain() in _TRANSPORT_DOMAINS and code in _TRANSPORT_CODES
    ):
        return ProviderUnreachable(f"{what}: libvirt daemon unreachable", detail=detail)
    cls = _BY_CODE.get(code, ProviderError)
    return cls(f"{what}: {message}", detail=detail)
