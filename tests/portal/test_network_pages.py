"""The network pages in a real browser against the real API and a lab vCenter: an admin
creates a VLAN network realised on the vCenter, gives it a subnet and sees its IP usage,
is refused an overlapping subnet with both ranges named, builds a router with an
interface and an external gateway, allocates a floating IP and associates it with a
port, sees it all in the topology, and records a VPN between regions, in English and in
Chinese; a member of another
project sees none of it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tessera.lab.vcsim import RunningVcsim
from tests.portal.conftest import login, settle, text

EN, ZH = "en", "zh-CN"
ROWS = "tbody tr.ant-table-row"


def choose(page: Page, select: str, option: str) -> None:
    """Pick `option` (its visible label) in the antd Select found by `select`."""
    page.locator(select).click()
    page.locator(f".ant-select-dropdown:visible .ant-select-item-option[title='{option}']").click()


def switch_language(page: Page, label: str) -> None:
    page.get_by_test_id("language-switch").click()
    page.locator(f".ant-select-dropdown:visible .ant-select-item-option[title='{label}']").click()


def wait_task(api: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        task: dict[str, Any] = api.get(f"/v1/tasks/{task_id}").json()
        if task["state"] not in ("queued", "running"):
            return task
        assert time.monotonic() < deadline, f"task still {task['state']}"
        time.sleep(0.2)


def add_lab_vcenter(api: httpx.Client, lab: RunningVcsim) -> dict[str, Any]:
    created = api.post(
        "/v1/providers",
        json={
            "name": "lab-vc",
            "kind": "vsphere",
            "url": lab.url,
            "username": lab.username,
            "password": lab.password,
            "verify_tls": False,
        },
    )
    assert created.status_code == 201, created.text
    pool: dict[str, Any] = created.json()
    sync = api.post(f"/v1/providers/{pool['id']}/sync").json()
    assert wait_task(api, sync["id"])["state"] == "succeeded"
    return pool


def menu(page: Page, key: str, lng: str = EN) -> None:
    page.get_by_test_id("side-menu").get_by_text(text(key, lng), exact=True).click()


def test_networks_routers_and_floating_ips_in_both_languages(
    new_page: Callable[..., Page],
    admin_password: str,
    admin_api: httpx.Client,
    vcsim_fresh: RunningVcsim,
    shoot: Callable[[Page, str], Path],
) -> None:
    add_lab_vcenter(admin_api, vcsim_fresh)
    # Set-up the test is not about: the platform's external network, and another
    # project with a member.
    public = admin_api.post(
        "/v1/segments", json={"name": "public", "network_type": "flat", "external": True}
    )
    assert public.status_code == 202, public.text
    made = admin_api.post(
        "/v1/subnets",
        json={"segment_id": public.json()["segment"]["id"], "cidr": "203.0.113.0/28"},
    )
    assert made.status_code == 201, made.text
    other = admin_api.post("/v1/projects", json={"name": "other-team"}).json()
    olga = admin_api.post("/v1/users", json={"name": "olga", "password": "olga-pass-123"}).json()
    joined = admin_api.put(
        f"/v1/projects/{other['id']}/members/{olga['id']}", json={"role": "member"}
    )
    assert joined.status_code == 204

    page = new_page("en-US")
    login(page, "admin", admin_password)

    # A VLAN network on the lab vCenter: its task realises it there as a portgroup.
    expect(page.get_by_test_id("side-menu")).to_contain_text(text("network:menu.group", EN))
    menu(page, "network:menu.segments")
    page.get_by_test_id("create-segment").click()
    page.get_by_test_id("segment-name").fill("web")
    page.get_by_test_id("segment-id").fill("120")
    choose(page, "[data-testid=segment-pools]", "lab-vc")
    page.keyboard.press("Escape")  # close the multiple select's list
    page.locator("#segment-ok").click()
    drawer = page.get_by_test_id("task-drawer")
    expect(drawer).to_contain_text(text("tasks:kind.segment_create", EN))
    expect(drawer.locator("[data-task-state=succeeded]")).to_be_visible(timeout=60_000)
    drawer.locator(".ant-drawer-close").click()
    expect(drawer).to_be_hidden()
    segments = page.get_by_test_id("segment-table")
    status = page.get_by_test_id("segment-status-web")
    expect(status.locator("[data-segment-status=active]")).to_be_visible()
    web_row = segments.locator(ROWS, has_text="web")
    expect(web_row).to_contain_text("VLAN 120")
    expect(web_row.locator("[data-realisation-state=realised]")).to_be_visible()
    shoot(page, "network-segments-en")

    # Its detail: the portgroup it became, then a subnet whose usage counts a port.
    page.get_by_test_id("segment-link-web").click()
    expect(page.get_by_test_id("realisation-table")).to_contain_text("lab-vc")
    expect(page.get_by_test_id("realisation-table")).to_contain_text("DVS0")
    page.get_by_test_id("add-subnet").click()
    page.get_by_test_id("subnet-name").fill("web-v4")
    page.get_by_test_id("subnet-cidr").fill("10.20.0.0/24")
    page.get_by_test_id("subnet-pool-start").fill("10.20.0.10")
    page.get_by_test_id("subnet-pool-end").fill("10.20.0.19")
    page.locator("#subnet-ok").click()
    usage = page.get_by_test_id("subnet-usage-10.20.0.0/24")
    expect(usage).to_contain_text("0 / 10")
    page.get_by_test_id("add-port").click()
    page.get_by_test_id("port-name").fill("web-1")
    page.locator("#port-ok").click()
    expect(page.get_by_test_id("port-table")).to_contain_text("10.20.0.10")
    expect(usage).to_contain_text("1 / 10")

    # An overlapping subnet is refused, naming both ranges.
    page.get_by_test_id("add-subnet").click()
    page.get_by_test_id("subnet-cidr").fill("10.20.0.128/25")
    page.locator("#subnet-ok").click()
    refused = page.locator(".ant-modal [role=alert]")
    expect(refused).to_contain_text(text("errors:code.conflict", EN))
    expect(refused).to_contain_text("10.20.0.128/25")
    expect(refused).to_contain_text("10.20.0.0/24")
    shoot(page, "network-overlap-en")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("subnet-table").locator(ROWS)).to_have_count(1)
    shoot(page, "network-segment-en")

    # A router with its gateway on the external network and an interface on the subnet.
    menu(page, "network:menu.routers")
    page.get_by_test_id("create-router").click()
    page.get_by_test_id("router-name").fill("edge")
    choose(page, "[data-testid=router-external]", "public")
    page.locator("#router-ok").click()
    routers = page.get_by_test_id("router-table")
    expect(page.get_by_test_id("router-gateway-edge")).to_contain_text("203.0.113.")
    routers.locator(ROWS, has_text="edge").locator(".ant-table-row-expand-icon").click()
    choose(page, "[data-testid=interface-subnet-edge]", "10.20.0.0/24 · web")
    page.get_by_test_id("interface-add-edge").click()
    expect(page.get_by_test_id("router-interfaces-edge")).to_contain_text("10.20.0.1")
    shoot(page, "network-routers-en")

    # A floating IP, then associated with the port.
    menu(page, "network:menu.floatingIps")
    page.get_by_test_id("allocate-fip").click()
    page.locator("#fip-ok").click()  # the one external network is chosen already
    fips = page.get_by_test_id("fip-table")
    expect(fips.locator(ROWS)).to_have_count(1)
    address = fips.locator(ROWS).first.locator("td").first.inner_text().strip()
    assert address.startswith("203.0.113."), address
    expect(page.get_by_test_id(f"fip-target-{address}")).to_have_text(
        text("network:fips.unassociated", EN)
    )
    page.get_by_test_id(f"fip-associate-{address}").click()
    page.get_by_test_id("fip-port").click()
    page.keyboard.type("10.20.0.10")
    page.keyboard.press("Enter")
    page.locator("#fip-ok").click()
    expect(page.get_by_test_id(f"fip-target-{address}")).to_contain_text("10.20.0.10")
    expect(fips.locator(ROWS).first).to_contain_text("edge")
    shoot(page, "network-floating-ips-en")
    [fip] = admin_api.get("/v1/floating-ips").json()
    assert (fip["address"], fip["fixed_ip"]) == (address, "10.20.0.10")

    # A security group with a rule letting SSH in.
    menu(page, "network:menu.securityGroups")
    page.get_by_test_id("create-group").click()
    page.get_by_test_id("group-name").fill("web-sg")
    page.locator("#group-ok").click()
    groups = page.get_by_test_id("group-table")
    groups.locator(ROWS, has_text="web-sg").locator(".ant-table-row-expand-icon").click()
    page.get_by_test_id("rule-port-min-web-sg").fill("22")
    page.get_by_test_id("rule-prefix-web-sg").fill("0.0.0.0/0")
    page.get_by_test_id("rule-add-web-sg").click()
    rules = page.get_by_test_id("rules-web-sg")
    expect(rules).to_contain_text("0.0.0.0/0")
    expect(rules).to_contain_text(text("network:direction.ingress", EN))
    [group] = admin_api.get("/v1/security-groups").json()
    assert [(r["protocol"], r["port_range_min"]) for r in group["rules"]] == [("tcp", 22)]

    # The topology: external network → router → network → subnet → port.
    menu(page, "network:menu.topology")
    graph = page.get_by_test_id("topology").locator("svg")
    for label in ("public", "edge", "web", "10.20.0.0/24", "web-1", address):
        expect(graph).to_contain_text(label)
    expect(graph).to_contain_text(text("network:topology.routers", EN))
    shoot(page, "network-topology-en")

    # The admin's address space: the overlap report (nothing collides here).
    menu(page, "network:menu.addressSpace")
    expect(page.get_by_test_id("overlap-summary")).to_have_text(text("network:overlaps.none", EN))

    # Interconnects: an IPsec VPN from the lab's region to another; each side shows what
    # it reaches through the tunnel (the lab region's subnet, the peer's range).
    menu(page, "network:menu.interconnects")
    expect(page.get_by_test_id("stretched-table")).to_contain_text(
        text("network:interconnects.noStretched", EN)
    )
    page.get_by_test_id("create-interconnect").click()
    page.get_by_test_id("ic-name").fill("to-west")
    page.locator(".ant-modal").get_by_text(text("network:interconnectKind.ipsec", EN)).click()
    for side, region, underlay in (("a", "default", "192.0.2.1"), ("b", "west", "192.0.2.2")):
        page.get_by_test_id(f"ic-{side}-region").fill(region)
        page.get_by_test_id(f"ic-{side}-namespace").fill(f"vpn-{side}")
        page.get_by_test_id(f"ic-{side}-underlay").fill(underlay)
    page.get_by_test_id("ic-b-ranges").click()
    page.keyboard.type("172.16.0.0/16")
    page.keyboard.press("Enter")
    page.locator("#interconnect-ok").click()
    vpn = page.get_by_test_id("vpn-table").locator(ROWS, has_text="to-west")
    for shown in ("10.20.0.0/24", "172.16.0.0/16", text("network:interconnects.pskStored", EN)):
        expect(vpn).to_contain_text(shown)
    shoot(page, "network-interconnects-en")

    # The same pages in Chinese.
    switch_language(page, "简体中文")
    expect(page.locator("h3").first).to_have_text(text("network:interconnects.title", ZH))
    pages = {
        "network:menu.segments": ("network:segments.title", "network-segments"),
        "network:menu.routers": ("network:routers.title", "network-routers"),
        "network:menu.floatingIps": ("network:fips.title", "network-floating-ips"),
        "network:menu.securityGroups": ("network:groups.title", "network-security-groups"),
        "network:menu.interconnects": ("network:interconnects.title", "network-interconnects"),
        "network:menu.topology": ("network:topology.title", "network-topology"),
    }
    for entry, (title, name) in pages.items():
        menu(page, entry, ZH)
        expect(page.locator("h3").first).to_have_text(text(title, ZH))
        settle(page)
        shoot(page, f"{name}-zh-CN")
    expect(graph).to_contain_text(text("network:topology.routers", ZH))
    menu(page, "network:menu.segments", ZH)
    expect(status.locator("[data-segment-status=active]")).to_have_text(
        text("network:segmentStatus.active", ZH)
    )
    page.get_by_test_id("segment-link-web").click()
    page.get_by_test_id("add-subnet").click()
    page.get_by_test_id("subnet-cidr").fill("10.20.0.0/16")
    page.locator("#subnet-ok").click()
    expect(refused).to_contain_text(text("errors:code.conflict", ZH))
    expect(refused).to_contain_text("10.20.0.0/24")
    shoot(page, "network-overlap-zh-CN")

    # A member of another project sees none of it, and is offered no admin's page.
    member = new_page("en-US")
    login(member, "olga", "olga-pass-123")
    side = member.get_by_test_id("side-menu")
    expect(side).to_contain_text(text("network:menu.segments", EN))
    expect(side).not_to_contain_text(text("network:menu.addressSpace", EN))
    menu(member, "network:menu.segments")
    settle(member)
    expect(member.get_by_test_id("segment-table")).not_to_contain_text("web")
    menu(member, "network:menu.routers")
    settle(member)
    expect(member.get_by_test_id("router-table").locator(ROWS)).to_have_count(0)
    menu(member, "network:menu.floatingIps")
    settle(member)
    expect(member.get_by_test_id("fip-table").locator(ROWS)).to_have_count(0)
    menu(member, "network:menu.topology")
    expect(member.get_by_test_id("topology-empty")).to_be_visible()
    shoot(member, "network-topology-member-en")
