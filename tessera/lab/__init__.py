"""A local lab of simulated pools: vCenters (our Go main over govmomi's simulator) and KVM
hosts (real libvirt daemons, one per mount namespace). Used by the demo and the tests."""


class LabError(RuntimeError):
    """A lab member could not be started or stopped; the message says where to look."""
