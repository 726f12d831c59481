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
