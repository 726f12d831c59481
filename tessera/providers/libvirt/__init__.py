"""libvirt provider (KVM/QEMU hosts, and libvirt's test driver for large fake pools)."""

from tessera.providers.libvirt.driver import LibvirtProvider

__all__ = ["LibvirtProvider"]
