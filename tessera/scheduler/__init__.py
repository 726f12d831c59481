"""Placement: choose the pool, host or cluster, and datastore for a VM, and explain why."""
