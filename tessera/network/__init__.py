"""Tessera's own networks: segments, subnets, ports, routers, floating IPs, security
groups; IPAM; the address-overlap checker; realisation on each kind of pool."""
