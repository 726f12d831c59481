"""scan.read_vm_page must give exactly what the lxml decoders give, or hand the page to them."""

from __future__ import annotations

import pytest

from tessera.providers.vsphere import parse, scan

_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_DISK = (
    '<VirtualDevice xsi:type="VirtualDisk"><key>2000</key>'
    '<deviceInfo xsi:type="Description"><label>Hard disk 1</label><summary>s</summary>'
    '</deviceInfo><backing xsi:type="VirtualDiskFlatVer2BackingInfo">'
    "<fileName>[ds &amp; co] vm/vm-000001.vmdk</fileName>"
    '<datastore type="Datastore">datastore-1</datastore><diskMode>persistent</diskMode>'
    '<parent xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds] vm/vm.vmdk</fileName>'
    '<datastore type="Datastore">datastore-2</datastore>'
    "<thinProvisioned>true</thinProvisioned></parent></backing>"
    "<controllerKey>1000</controllerKey><capacityInKB>1024</capacityInKB></VirtualDevice>"
)
_NICS = (
    '<VirtualDevice xsi:type="VirtualIDEController"><key>200</key><busNumber>0</busNumber>'
    '</VirtualDevice><VirtualDevice xsi:type="VirtualVmxnet3"><key>4000</key>'
    '<backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo"><port>'
    "<switchUuid>u</switchUuid><portgroupKey>dvportgroup-1</portgroupKey></port></backing>"
    "<macAddress>00:50:56:AA:BB:01</macAddress></VirtualDevice>"
    '<VirtualDevice xsi:type="VirtualE1000e"><key>4001</key>'
    '<backing xsi:type="VirtualEthernetCardOpaqueNetworkBackingInfo">'
    "<opaqueNetworkId>nsx-1</opaqueNetworkId></backing>"
    "<macAddress>00:50:56:aa:bb:02</macAddress></VirtualDevice>"
)


def _prop(name: str, kind: str, body: str) -> str:
    return f'<propSet><name>{name}</name><val {_XSI} xsi:type="{kind}">{body}</val></propSet>'


def _page(*objects: str, sep: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope'
        ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        '<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>1</token>'
        + sep.join(objects)
        + "</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"
    ).encode()


def _vm(moid: str, *props: str, sep: str = "") -> str:
    return (
        f'<objects>{sep}<obj type="VirtualMachine">{moid}</obj>'
        + sep.join(props)
        + (
            "<missingSet><path>config.annotation</path><fault><faultMessage>x</faultMessage>"
            "</fault></missingSet></objects>"
        )
    )


PROPS = (
    _prop("name", "xsd:string", "R&amp;D &lt;web&gt; &#233;t&#xE9;"),
    _prop("runtime.powerState", "VirtualMachinePowerState", "poweredOff"),
    _prop("runtime.host", "ManagedObjectReference", "host-1"),
    _prop("config.hardware.numCPU", "xsd:int", "4"),
    _prop("config.hardware.device", "ArrayOfVirtualDevice", _DISK + _NICS),
    _prop("config.guestId", "xsd:string", ""),
    _prop("config.template", "xsd:boolean", "true"),
    _prop("config.annotation", "xsd:string", "line 1\r\nline 2&#13;"),
    _prop("parent", 'ManagedObjectReference" type="Folder', "group-v3"),
)


def test_decoders_cover_the_vm_properties() -> None:
    assert set(scan._DECODERS) == set(parse.VM_PROPERTIES)


def test_scan_agrees_with_lxml() -> None:
    page = _page(_vm("vm-1", *PROPS), _vm("vm-2", *PROPS[:2]))
    objects = scan._scan(page)
    assert objects == parse.decode_page(page)
    disks, nics = objects[0][2]["config.hardware.device"]
    assert disks[0].path == "[ds & co] vm/vm-000001.vmdk"
    assert disks[0].datastore_native_id == "datastore-1"
    assert disks[0].format == "thick"  # the delta parent's thinProvisioned is not the disk's
    assert [n.portgroup_key or n.network_ref for n in nics] == ["dvportgroup-1", "nsx-1"]
    assert objects[0][2]["config.annotation"] == "line 1\nline 2\r"
    assert objects[0][2]["parent"] == ("Folder", "group-v3")


def test_empty_page() -> None:
    page = _page()
    assert scan.read_vm_page(page) == parse.decode_page(page) == []


@pytest.mark.parametrize(
    "page",
    [
        _page(_vm("vm-1", *PROPS, sep="\n  "), sep="\n"),
        _page(_vm("vm-1", _prop("name", "xsd:string", "<![CDATA[a<b]]>"))),
        _page(_vm("vm-1", _prop("config.hardware.device", "ArrayOfVirtualDevice", " "))),
        _page(_vm("vm-1", _prop("summary.type", "xsd:string", "VMFS"))),
    ],
)
def test_other_shapes_are_left_to_lxml(page: bytes) -> None:
    with pytest.raises(ValueError, match=r"unexpected|markup"):
        scan._scan(page)
    assert scan.read_vm_page(page) == parse.decode_page(page)
