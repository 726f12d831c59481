"""vSphere errors (pyvmomi faults, raw SOAP faults, socket errors) into Tessera's taxonomy.

Messages are ours; the native text goes to `detail` with the password scrubbed, so a
secret never reaches logs or API bodies even if a server echoes it.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable
from typing import Any

from pyVmomi import VmomiSupport, vim, vmodl

from tessera.providers.faults import (
    ProviderAuthFailed,
    ProviderConflict,
    ProviderError,
    ProviderInvalidRequest,
    ProviderNotFound,
    ProviderTimeout,
    ProviderUnreachable,
)

_wsdl_type: Callable[[str, str], Any] = VmomiSupport.GetWsdlType

# Order matters: the first matching class wins (InvalidPowerState is an InvalidState).
_FAULT_CLASSES: tuple[tuple[Any, type[ProviderError], str], ...] = (
    (vim.fault.InvalidLogin, ProviderAuthFailed, "vCenter refused the credentials"),
    (vim.fault.NoPermission, ProviderAuthFailed, "vCenter denied the call (no permission)"),
    (vmodl.fault.ManagedObjectNotFound, ProviderNotFound, "the vSphere object no longer exists"),
    (vim.fault.NotFound, ProviderNotFound, "the vSphere object was not found"),
    (vim.fault.InvalidState, ProviderConflict, "the vSphere object is in the wrong state"),
    (vim.fault.TaskInProgress, ProviderConflict, "the vSphere object is busy with a task"),
    (vim.fault.DuplicateName, ProviderConflict, "the name is already used in vCenter"),
    (vim.fault.ConcurrentAccess, ProviderConflict, "the vSphere object changed concurrently"),
    (vmodl.fault.InvalidArgument, ProviderInvalidRequest, "vCenter rejected an argument"),
    (vmodl.fault.InvalidRequest, ProviderInvalidRequest, "vCenter rejected the request"),
    (vmodl.query.InvalidProperty, ProviderInvalidRequest, "vCenter rejected a property path"),
)


def scrub(text: str, secret: str | None) -> str:
    """Remove `secret` from `text`."""
    if secret:
        return text.replace(secret, "***")
    return text


def from_fault_name(name: str, message: str, secret: str | None = None) -> ProviderError:
    """Map a SOAP fault by its xsi:type (e.g. "InvalidLogin"), subclasses included."""
    try:
        cls = _wsdl_type("urn:vim25", name)
    except KeyError:
        cls = None
    detail = scrub(f"{name}: {message}", secret)
    if cls is not None:
        for fault_cls, error_cls, text in _FAULT_CLASSES:
            if issubclass(cls, fault_cls):
                return error_cls(text, detail=detail)
    return ProviderError(f"vCenter call failed ({name})", detail=detail)


def translate(exc: BaseException, secret: str | None = None) -> ProviderError:
    """Map any exception a vSphere call raised into a ProviderError."""
    if isinstance(exc, ProviderError):
        return exc
    detail = scrub(f"{type(exc).__name__}: {exc}", secret)
    if isinstance(exc, vmodl.MethodFault):
        for fault_cls, error_cls, text in _FAULT_CLASSES:
            if isinstance(exc, fault_cls):
                return error_cls(text, detail=scrub(f"{exc.msg or type(exc).__name__}", secret))
        return ProviderError("vCenter call failed", detail=detail)
    if isinstance(exc, TimeoutError | socket.timeout):
        return ProviderTimeout("vCenter did not answer in time", detail=detail)
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ProviderUnreachable("TLS handshake with vCenter failed", detail=detail)
    if isinstance(exc, OSError | http.client.HTTPException):
        return ProviderUnreachable("vCenter is unreachable", detail=detail)
    return ProviderError("vCenter call failed", detail=detail)
