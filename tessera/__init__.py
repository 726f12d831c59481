"""Tessera: one control plane over VMware vSphere and KVM pools."""

__version__ = "0.1.0"
