"""VMware vSphere (vCenter, ESXi) provider."""

from tessera.providers.vsphere.driver import VSphereProvider

__all__ = ["VSphereProvider"]
