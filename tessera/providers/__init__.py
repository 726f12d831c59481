"""Provider drivers, registered by name and imported lazily so optional SDKs stay optional."""

from __future__ import annotations

import importlib

from tessera.providers.base import Endpoint, Provider

DRIVERS: dict[str, str] = {
    "vsphere": "tessera.providers.vsphere.driver:VSphereProvider",
    "libvirt": "tessera.providers.libvirt.driver:LibvirtProvider",
}


def driver_class(kind: str) -> type[Provider]:
    """The driver class registered under `kind`; KeyError for an unknown kind."""
    module_name, _, class_name = DRIVERS[kind].partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module_name), class_name)
    return cls


def open_provider(kind: str, endpoint: Endpoint) -> Provider:
    """A driver instance for `kind`, not yet connected."""
    return driver_class(kind)(endpoint)


def capability_matrix() -> dict[str, dict[str, bool]]:
    """Every registered driver's capability flags, for the docs, the API and the CLI."""
    return {kind: driver_class(kind).capabilities.as_dict() for kind in sorted(DRIVERS)}


def capability_table() -> str:
    """The capability matrix as a Markdown table (docs/providers.md holds a copy)."""
    matrix = capability_matrix()
    kinds = list(matrix)
    flags = list(next(iter(matrix.values())))
    lines = ["| capability | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for flag in flags:
        cells = " | ".join("yes" if matrix[kind][flag] else "no" for kind in kinds)
        lines.append(f"| {flag} | {cells} |")
    return "\n".join(lines) + "\n"
