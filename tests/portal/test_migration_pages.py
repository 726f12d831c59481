"""The migration pages in a real browser against the real API, the lab vCenter and a lab
KVM host: an admin builds a plan in the wizard for a lab VM carrying the lab's tiny
guest, sees the readiness report block it on an unmapped network, maps the network,
starts the plan, watches each disk's copy finish and the plan succeed, rolls it back;
then reads the same pages in Chinese."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tessera.lab.guest import install_guest
from tessera.lab.kvm import RunningKvmHost
from tessera.lab.vcsim import RunningVcsim
from tests.portal.conftest import login, text
from tests.tasks.helpers import register

EN, ZH = "en", "zh-CN"
VM_NAME = "DC0_VM00000"
ROWS = "tbody tr.ant-table-row"
MIGRATION_S = 150_000  # ms: a cold migration of the tiny guest under TCG on a loaded machine
RAW_MIGRATION_KEY = re.compile(r"\bmigration:[A-Za-z_]+(?:\.[A-Za-z_]+)*")


def choose(page: Page, testid: str, option: str, then: str = "$") -> None:
    """Pick the option labelled `option` (followed by `then`, a pattern) in the antd
    Select `testid`."""
    expect(page.locator(".ant-select-dropdown:visible")).to_have_count(0)  # the last one shut
    page.get_by_test_id(testid).click()
    page.locator(".ant-select-dropdown:visible .ant-select-item-option").filter(
        has_text=re.compile("^" + re.escape(option) + then)
    ).click()


def switch_language(page: Page, label: str) -> None:
    page.get_by_test_id("language-switch").click()
    page.locator(f".ant-select-dropdown:visible .ant-select-item-option[title='{label}']").click()


def confirm(page: Page, title: str) -> None:
    page.get_by_role("dialog", name=title).locator("#confirm-ok").click()


def no_raw_keys(page: Page) -> None:
    assert not RAW_MIGRATION_KEY.findall(page.locator("body").inner_text())


def lab_names(api: httpx.Client, source: str, target: str) -> dict[str, Any]:
    """What the wizard shows for the VM: its networks and datastores on the source, and
    the plain KVM network and the storage pool to map them to."""
    vm = next(
        v
        for v in api.get("/v1/vms", params={"provider_id": source, "name": VM_NAME}).json()["items"]
        if v["name"] == VM_NAME
    )
    detail = api.get(f"/v1/vms/{vm['id']}").json()
    nets = {
        n["id"]: n["name"]
        for n in api.get("/v1/networks", params={"provider_id": source}).json()["items"]
    }
    kvm_nets = api.get("/v1/networks", params={"provider_id": target}).json()["items"]
    pools = api.get("/v1/datastores", params={"provider_id": target}).json()["items"]
    return {
        "networks": sorted({nets[n["network_id"]] for n in detail["nics"]}),
        "datastores": sorted({d["path"].partition("]")[0].lstrip("[") for d in detail["disks"]}),
        "kvm_net": next(n["name"] for n in kvm_nets if n["vlan_id"] is None),
        "pool": pools[0]["name"],
    }


def test_admin_plans_migrates_and_rolls_back_a_vm_in_both_languages(
    new_page: Callable[..., Page],
    admin_password: str,
    admin_api: httpx.Client,
    vcsim_module: RunningVcsim,
    kvm_host_module: RunningKvmHost,
    tmp_path: Path,
    shoot: Callable[[Page, str], Path],
) -> None:
    install_guest(vcsim_module, VM_NAME, tmp_path)
    source = register(admin_api, "vsphere", vcsim_module, "lab-vc")
    target = register(admin_api, "libvirt", kvm_host_module, "lab-kvm")
    lab = lab_names(admin_api, source, target)
    assert lab["networks"] and lab["datastores"]

    page = new_page("en-US")
    login(page, "admin", admin_password)
    page.get_by_role("menuitem", name=text("migration:menu", EN)).click()
    expect(page.locator("h3").first).to_have_text(text("migration:plans.title", EN))
    expect(page.get_by_test_id("plans-table")).to_contain_text(text("migration:plans.empty", EN))
    page.get_by_test_id("new-plan").click()

    # Step 1: name, source vCenter, the VM picked with the name filter.
    expect(page.locator("h3").first).to_have_text(text("migration:wizard.title", EN))
    page.get_by_test_id("wizard-next").click()
    expect(page.get_by_test_id("wizard-invalid")).to_have_text(
        text("migration:validation.name", EN)
    )
    page.get_by_test_id("plan-name").fill("move-web")
    choose(page, "plan-source", "lab-vc")
    rows = page.get_by_test_id("source-vm-table").locator(ROWS)
    expect(rows.first).to_be_visible()
    page.get_by_test_id("vm-filter-name").fill(VM_NAME)
    page.get_by_test_id("vm-filter-name").press("Enter")
    expect(rows).to_have_count(1)
    rows.first.locator(".ant-checkbox-input").check()
    expect(page.get_by_test_id("vm-selected-count")).to_have_text(
        text("migration:wizard.selected_one", EN, count=1)
    )
    page.get_by_test_id("wizard-next").click()

    # Step 2: target, storage map; the network left unmapped on purpose.
    choose(page, "plan-target", "lab-kvm")
    for datastore in lab["datastores"]:
        choose(page, f"storage-map-{datastore}", lab["pool"], " · ")
    page.get_by_test_id("wizard-next").click()

    # Step 3: the readiness report blocks the plan on the unmapped network.
    report = page.get_by_test_id("readiness-report")
    expect(report).to_have_attribute("data-ready", "no", timeout=60_000)
    blocking = report.locator("[data-testid='finding'][data-code='unmapped_network']")
    expect(blocking.first).to_have_attribute("data-severity", "blocking")
    expect(blocking.first).to_contain_text(text("migration:finding.unmapped_network", EN))
    expect(report.locator("[data-code='disk']").first).to_be_visible()  # the disk was read
    expect(page.get_by_test_id("wizard-start")).to_be_disabled()
    no_raw_keys(page)
    shoot(page, "migration-readiness-blocked-en")

    # Kept as a draft, the plan page shows it blocked; edited, the network mapped and
    # checked again, it is ready, with the size and time to transfer.
    page.get_by_test_id("wizard-keep-draft").click()
    expect(page.locator("[data-testid='plan-state']").first).to_have_attribute(
        "data-plan-state", "draft"
    )
    expect(page.get_by_test_id("readiness-report")).to_have_attribute("data-ready", "no")
    page.get_by_test_id("plan-edit").click()
    expect(page.locator("h3").first).to_have_text(
        text("migration:wizard.editTitle", EN, name="move-web")
    )
    expect(page.get_by_test_id("vm-selected-count")).to_have_text(
        text("migration:wizard.selected_one", EN, count=1)
    )
    page.get_by_test_id("wizard-next").click()
    for network in lab["networks"]:
        choose(page, f"network-map-{network}", lab["kvm_net"])
    page.get_by_test_id("wizard-next").click()
    expect(report).to_have_attribute("data-ready", "yes", timeout=60_000)
    expect(page.get_by_test_id("readiness-summary")).to_contain_text(
        text("migration:readiness.ready", EN)
    )
    plan = next(p for p in admin_api.get("/v1/migration-plans").json() if p["name"] == "move-web")
    assert plan["state"] == "draft" and plan["readiness"]["ready"]
    assert plan["readiness"]["transfer_bytes"] > 0
    assert len(plan["network_map"]) == len(lab["networks"])
    shoot(page, "migration-wizard-readiness-en")

    # Start it and watch it on the plan page: every disk copied, the plan succeeded.
    page.get_by_test_id("wizard-start").click()
    confirm(page, text("migration:action.startConfirm", EN, name="move-web"))
    expect(page).to_have_url(re.compile(rf"/migrations/{plan['id']}$"))
    state = page.locator("[data-testid='plan-state']").first
    expect(state).to_have_attribute("data-plan-state", "running")  # then live, no reload:
    expect(state).to_have_attribute("data-plan-state", "succeeded", timeout=MIGRATION_S)
    disk = page.get_by_test_id("disk-state")
    expect(disk).to_have_count(1)
    expect(disk).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("disk-table")).to_contain_text("MiB/s")
    expect(page.get_by_test_id("vm-table")).to_contain_text(text("migration:vmState.migrated", EN))
    expect(page.get_by_test_id("plan-events")).to_contain_text(text("migration:phase.cutover", EN))
    shown = admin_api.get(f"/v1/migration-plans/{plan['id']}").json()
    (copied,) = shown["vms"][0]["disks"]
    assert copied["done_bytes"] == copied["total_bytes"] > 0
    # The bytes the page shows are the API's, formatted.
    expect(page.get_by_test_id("disk-bytes")).to_contain_text(" / ")
    no_raw_keys(page)
    shoot(page, "migration-plan-en")

    # Roll back, confirmed: the source as it was, the target gone.
    page.get_by_test_id("plan-rollback").click()
    confirm(page, text("migration:action.rollbackConfirm", EN, name="move-web"))
    expect(state).to_have_attribute("data-plan-state", "rolled_back", timeout=60_000)
    assert admin_api.get(f"/v1/migration-plans/{plan['id']}").json()["state"] == "rolled_back"
    expect(page.get_by_test_id("plan-resume")).to_be_visible()
    expect(page.get_by_test_id("plan-rollback")).to_have_count(0)

    # The same pages in Chinese.
    switch_language(page, "简体中文")
    expect(state).to_have_text(text("migration:planState.rolled_back", ZH))
    expect(page.get_by_test_id("vm-table")).to_contain_text(
        text("migration:vmState.rolled_back", ZH)
    )
    expect(page.get_by_text(text("migration:readiness.title", ZH))).to_be_visible()
    expect(page.get_by_test_id("plan-resume")).to_have_text(text("migration:action.resume", ZH))
    no_raw_keys(page)
    shoot(page, "migration-plan-zh-CN")
    page.get_by_role("menuitem", name=text("migration:menu", ZH)).click()
    expect(page.locator("h3").first).to_have_text(text("migration:plans.title", ZH))
    plans = page.get_by_test_id("plans-table")
    expect(plans).to_contain_text("move-web")
    expect(plans).to_contain_text(text("migration:mode.cold", ZH))
    shoot(page, "migration-plans-zh-CN")
    page.get_by_test_id("new-plan").click()
    expect(page.locator("h3").first).to_have_text(text("migration:wizard.title", ZH))
    choose(page, "plan-source", "lab-vc")
    expect(page.get_by_test_id("source-vm-table").locator(ROWS).first).to_be_visible()
    no_raw_keys(page)
    shoot(page, "migration-wizard-zh-CN")


def test_a_project_member_is_not_offered_the_migration_pages(
    new_page: Callable[..., Page], admin_api: httpx.Client
) -> None:
    project = admin_api.post("/v1/projects", json={"name": "web"}).json()["id"]
    user = admin_api.post("/v1/users", json={"name": "bob", "password": "pw-bob-12345"}).json()
    admin_api.put(f"/v1/projects/{project}/members/{user['id']}", json={"role": "project-admin"})
    page = new_page("en-US")
    login(page, "bob", "pw-bob-12345")
    expect(page.get_by_role("menuitem", name=text("common:menu.vms", EN))).to_be_visible()
    expect(page.get_by_role("menuitem", name=text("migration:menu", EN))).to_have_count(0)
    for where in ("/migrations", "/migrations/new"):
        page.goto(where)
        expect(page.get_by_text(text("migration:adminOnly", EN))).to_be_visible()
        expect(page.get_by_test_id("new-plan")).to_have_count(0)
