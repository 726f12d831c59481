"""Portgroups of the vSphere provider: the L2 networks Tessera makes on a vCenter.

A portgroup goes on a distributed switch (DVS) when the pool has the one asked for (by
name; `switch=None` means the first DVS, by name), with the VLAN id in its default port
config; otherwise on the standard vSwitch of that name (`vSwitch0` by default) of every
host that has one. Every call is safe to repeat: a portgroup of that name already there
is taken (a DVS one only when its description carries the same `marker`) and given the
VLAN asked for; removing one that is gone succeeds.

Native ids are the Network morefs: "dvportgroup-N" for a DVS portgroup, "network-N" for
a standard one (vSphere shows a standard portgroup as one Network over all its hosts).

Gaps of the lab vCenter (govmomi's simulator), not of this code: AddPortGroup on a
second host of the datacenter answers DuplicateName (its Network exists), which counts as
present, and there is no UpdatePortGroup, so changing a standard portgroup's VLAN can
only be tried on a real vCenter.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pyVmomi import vim as _vim

from tessera.providers.faults import ProviderConflict, ProviderInvalidRequest, ProviderNotFound
from tessera.providers.vsphere.faults import translate
from tessera.providers.vsphere.vmops import VSphereVMOps

vim: Any = _vim

DEFAULT_VSWITCH = "vSwitch0"


class VSpherePortgroupOps(VSphereVMOps):
    """Create, re-tag and remove portgroups; the driver class supplies the session."""

    def _objects(self, vim_type: Any, *paths: str) -> list[tuple[Any, dict[str, Any]]]:
        """Every object of a type with the given properties, in one round trip."""
        content = self._content()
        view = self._call(
            content.viewManager.CreateContainerView, content.rootFolder, [vim_type], True
        )
        try:
            traversal = vim.PropertyCollector.TraversalSpec(
                name="view", path="view", skip=False, type=vim.view.ContainerView
            )
            spec = vim.PropertyCollector.FilterSpec(
                objectSet=[
                    vim.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])
                ],
                propSet=[vim.PropertyCollector.PropertySpec(type=vim_type, pathSet=list(paths))],
            )
            found = self._call(content.propertyCollector.RetrieveContents, [spec])
        finally:
            self._call(view.DestroyView)
        return [(o.obj, {p.name: p.val for p in o.propSet or ()}) for o in found or ()]

    def _dvs(self, switch: str | None) -> Any | None:
        switches = sorted(
            self._objects(vim.DistributedVirtualSwitch, "name"), key=lambda s: s[1]["name"]
        )
        if switch is not None:
            return next((obj for obj, props in switches if props["name"] == switch), None)
        return switches[0][0] if switches else None

    def _network_systems(self, vswitch: str) -> list[Any]:
        """The network systems of the hosts that have a standard vSwitch `vswitch`."""
        systems = []
        for _host, props in self._objects(vim.HostSystem, "configManager.networkSystem"):
            system = props.get("configManager.networkSystem")
            if system is None:
                continue
            info = self._props(system, "networkInfo").get("networkInfo")
            if info is not None and any(v.name == vswitch for v in info.vswitch or ()):
                systems.append(system)
        return systems

    def _named_network(self, name: str) -> Any | None:
        for obj, props in self._objects(vim.Network, "name"):
            if props.get("name") == name and not isinstance(
                obj, vim.dvs.DistributedVirtualPortgroup
            ):
                return obj
        return None

    # -- the verbs -----------------------------------------------------------------

    def ensure_portgroup(
        self, name: str, vlan_id: int, *, switch: str | None, marker: str
    ) -> tuple[str, str]:
        """The portgroup `name` with `vlan_id` on the switch asked for, made unless there;
        (native id, switch it is on)."""
        self.require("supports_dvs", "ensure_portgroup")
        dvs = self._dvs(switch)
        if dvs is not None:
            return self._ensure_dv_portgroup(dvs, name, vlan_id, marker)
        vswitch = switch or DEFAULT_VSWITCH
        systems = self._network_systems(vswitch)
        if not systems:
            raise ProviderInvalidRequest(
                f"the pool has no distributed switch or standard vSwitch named {vswitch!r}"
            )
        spec = vim.host.PortGroup.Specification(
            name=name, vlanId=vlan_id, vswitchName=vswitch, policy=vim.host.NetworkPolicy()
        )
        for system in systems:
            info = self._props(system, "networkInfo")["networkInfo"]
            present = next((p for p in info.portgroup or () if p.spec.name == name), None)
            if present is None:
                self._tolerate_existing(lambda s=system: s.AddPortGroup(portgrp=spec))
            elif present.spec.vlanId != vlan_id:
                self._call(system.UpdatePortGroup, pgName=name, portgrp=spec)
        network = self._named_network(name)
        if network is None:
            raise ProviderNotFound(f"vCenter shows no network {name!r} after adding it")
        return str(network._moId), vswitch

    def _tolerate_existing(self, call: Any) -> None:
        try:
            call()
        except (vim.fault.AlreadyExists, vim.fault.DuplicateName):
            return
        except Exception as exc:
            raise translate(exc, self.endpoint.password) from None

    def _dv_portgroup(self, dvs: Any, name: str) -> tuple[Any, Any] | None:
        for portgroup in self._props(dvs, "portgroup").get("portgroup") or ():
            config = self._props(portgroup, "config")["config"]
            if config.name == name:
                return portgroup, config
        return None

    def _ensure_dv_portgroup(
        self, dvs: Any, name: str, vlan_id: int, marker: str
    ) -> tuple[str, str]:
        switch_name = str(self._props(dvs, "name")["name"])
        found = self._dv_portgroup(dvs, name)
        if found is None:
            spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
                name=name,
                description=marker,
                type="earlyBinding",
                numPorts=8,
                autoExpand=True,
                defaultPortConfig=_vlan_setting(vlan_id),
            )
            self._run(f"add portgroup {name}", lambda: dvs.AddDVPortgroup_Task(spec=[spec]))
            found = self._dv_portgroup(dvs, name)
            if found is None:
                raise ProviderNotFound(f"vCenter shows no portgroup {name!r} after adding it")
        portgroup, config = found
        if (config.description or "") != marker:
            raise ProviderConflict(f"a portgroup named {name!r} exists and is not Tessera's")
        if _vlan_of(config) != vlan_id:
            self._retag(portgroup, config, vlan_id)
        return str(portgroup._moId), switch_name

    def _retag(self, portgroup: Any, config: Any, vlan_id: int) -> None:
        spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
            configVersion=config.configVersion,
            name=config.name,
            description=config.description,
            type=config.type,
            numPorts=config.numPorts,
            autoExpand=config.autoExpand,
            defaultPortConfig=_vlan_setting(vlan_id),
        )
        self._run(
            f"set VLAN {vlan_id} on portgroup {config.name}",
            lambda: portgroup.ReconfigureDVPortgroup_Task(spec=spec),
        )

    def update_portgroup(self, native_id: str, name: str, vlan_id: int, *, switch: str) -> None:
        """Give an existing portgroup another VLAN id."""
        self.require("supports_dvs", "update_portgroup")
        if native_id.startswith("dvportgroup-"):
            portgroup = self._ref(vim.dvs.DistributedVirtualPortgroup, native_id)
            config = self._props(portgroup, "config")["config"]
            if _vlan_of(config) != vlan_id:
                self._retag(portgroup, config, vlan_id)
            return
        spec = vim.host.PortGroup.Specification(
            name=name, vlanId=vlan_id, vswitchName=switch, policy=vim.host.NetworkPolicy()
        )
        for system in self._network_systems(switch):
            info = self._props(system, "networkInfo")["networkInfo"]
            if any(p.spec.name == name for p in info.portgroup or ()):
                self._call(system.UpdatePortGroup, pgName=name, portgrp=spec)

    def remove_portgroup(self, native_id: str, name: str, *, switch: str) -> None:
        """Remove the portgroup; one already gone is fine."""
        self.require("supports_dvs", "remove_portgroup")
        if native_id.startswith("dvportgroup-"):
            portgroup = self._ref(vim.dvs.DistributedVirtualPortgroup, native_id)
            with contextlib.suppress(ProviderNotFound):
                self._run(f"remove portgroup {name}", portgroup.Destroy_Task)
            return
        for system in self._network_systems(switch):
            try:
                self._call(system.RemovePortGroup, pgName=name)
            except ProviderNotFound:
                continue


def _vlan_setting(vlan_id: int) -> Any:
    return vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(
        vlan=vim.dvs.VmwareDistributedVirtualSwitch.VlanIdSpec(vlanId=vlan_id, inherited=False)
    )


def _vlan_of(config: Any) -> int | None:
    vlan = getattr(config.defaultPortConfig, "vlan", None)
    return getattr(vlan, "vlanId", None)
