"""Interconnects between regions: routed (each region's gateway announces its tenant
subnets over BGP or OSPF, FRR) and VPN (IPsec with strongSwan's userspace ESP, or GRE
through Open vSwitch's userspace datapath) between two VPN routers.

`model` holds the plain values, `service` the rows and their overlap checks, `frr`,
`strongswan` and `gre` drive the daemons Tessera starts itself, and `agent` makes a
gateway namespace match what the database says. `sides` records the sides a node runs;
`tasks` saves the `interconnect.sync` task a subnet or interconnect change queues, whose
step (`steps`) applies the change to those sides at once.
"""
