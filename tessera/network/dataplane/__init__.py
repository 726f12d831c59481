"""The Linux data plane Tessera drives itself: network namespaces, Open vSwitch instances
(one per KVM host), Linux bridges with VXLAN, and the network node's router namespaces.

Everything here runs `ip`, `ovs-vsctl` and `iptables-restore` as subprocesses: these
tools are the stable interface, and they work in this sandbox where pyroute2 lacks VLAN.
"""
