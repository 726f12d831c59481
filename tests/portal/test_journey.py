"""The portal as an operator uses it, in a real browser against the real API and a lab
vCenter: log in, switch language, add the vCenter, see its VMs, create one through the
wizard and watch its task finish, power it off, read its detail page; then a reader of
another project logs in and sees none of it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tessera.lab.vcsim import RunningVcsim
from tests.portal.conftest import login, settle, text

MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", re.IGNORECASE)
EN, ZH = "en", "zh-CN"


def choose(page: Page, select: str, option: str) -> None:
    """Pick `option` (its visible label) in the antd Select found by `select`."""
    page.locator(select).click()
    page.locator(f".ant-select-dropdown:visible .ant-select-item-option[title='{option}']").click()


def switch_language(page: Page, label: str) -> None:
    page.get_by_test_id("language-switch").click()
    page.locator(f".ant-select-dropdown:visible .ant-select-item-option[title='{label}']").click()


def wait_task(page: Page, state: str = "succeeded") -> None:
    """The task drawer shows the task reach `state`; then close it."""
    drawer = page.get_by_test_id("task-drawer")
    shown = drawer.get_by_test_id("task-state").locator(f"[data-task-state='{state}']")
    expect(shown).to_be_visible(timeout=90_000)
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()


def add_lab_vcenter(page: Page, lab: RunningVcsim) -> None:
    page.get_by_test_id("add-pool").click()
    page.get_by_test_id("pool-name").fill("lab-vc")
    page.get_by_test_id("pool-url").fill(lab.url)
    page.get_by_test_id("pool-username").fill(lab.username)
    page.get_by_test_id("pool-password").fill(lab.password)
    page.get_by_test_id("pool-verify-tls").click()  # the lab's certificate is self-signed
    page.locator("#add-pool-ok").click()


def test_operator_journey(
    new_page: Callable[..., Page],
    admin_password: str,
    admin_api: httpx.Client,
    vcsim_fresh: RunningVcsim,
    shoot: Callable[[Page, str], Path],
) -> None:
    page = new_page("en-US")

    # Log in; the UI starts in the browser's language.
    login(page, "admin", admin_password)
    expect(page.get_by_test_id("side-menu")).to_contain_text(text("common:menu.vms", EN))
    shoot(page, "overview-en")

    # Switch to Chinese: every label follows at once, and the choice is the user's.
    switch_language(page, "简体中文")
    expect(page.get_by_test_id("side-menu")).to_contain_text(text("common:menu.vms", ZH))
    expect(page.locator("html")).to_have_attribute("lang", ZH)
    whoami = admin_api.get("/v1/auth/whoami").json()
    assert whoami["user_name"] == "admin"

    # A wrong password is refused with the server's test, shown in Chinese.
    page.goto("/pools")
    page.get_by_test_id("add-pool").click()
    page.get_by_test_id("pool-name").fill("wrong")
    page.get_by_test_id("pool-url").fill(vcsim_fresh.url)
    page.get_by_test_id("pool-username").fill(vcsim_fresh.username)
    page.get_by_test_id("pool-password").fill("not-the-password")
    page.get_by_test_id("pool-verify-tls").click()
    page.locator("#add-pool-ok").click()
    alert = page.locator(".ant-modal [role=alert]")
    expect(alert).to_contain_text(text("errors:code.invalid_input", ZH), timeout=60_000)
    expect(alert).to_contain_text(text("errors:provider.auth_failed", ZH))
    page.keyboard.press("Escape")

    # Add the lab vCenter: tested, saved, then read in by a sync watched live.
    add_lab_vcenter(page, vcsim_fresh)
    row = page.get_by_test_id("pool-table").locator("tr", has_text="lab-vc")
    expect(row).to_be_visible(timeout=60_000)
    expect(row).to_contain_text(text("pools:neverSynced", ZH))
    page.get_by_test_id("pool-sync-lab-vc").click()
    wait_task(page)
    expect(page.get_by_test_id("pool-status-lab-vc")).to_contain_text(
        text("common:poolStatus.ok", ZH)
    )
    shoot(page, "pools-zh-CN")

    # Its VMs are listed, filtered on the server.
    page.get_by_test_id("side-menu").locator("[data-menu-id$='-/vms']").click()
    table = page.get_by_test_id("vm-table")
    expect(table.locator("tbody tr.ant-table-row").first).to_be_visible()
    listed = table.locator("tbody tr.ant-table-row").count()
    assert listed == len(admin_api.get("/v1/vms", params={"limit": 50}).json()["items"])
    shoot(page, "vms-zh-CN")

    # Bulk: tag two selected VMs; the confirmation counts them from the server's preview.
    rows = table.locator("tbody tr.ant-table-row")
    for i in (0, 1):
        rows.nth(i).locator(".ant-checkbox-input").check()
    page.get_by_test_id("bulk-actions").hover()
    page.get_by_role("menuitem", name=text("vms:bulk.addTags", ZH)).click()
    page.locator(".ant-modal-confirm .ant-select-selection-search-input").fill("web")
    page.keyboard.press("Enter")
    page.locator(".ant-modal-confirm .ant-btn-primary").click()
    confirm = page.get_by_role("dialog", name=text("vms:bulk.confirm.tag_other", ZH, count=2))
    confirm.locator("#confirm-ok").click()
    wait_task(page)
    expect(rows.nth(0)).to_contain_text("web", timeout=10_000)
    expect(rows.nth(1)).to_contain_text("web")

    first_name = table.locator("tbody tr.ant-table-row a").first.inner_text()
    page.get_by_test_id("vm-filter-name").fill(first_name)
    page.get_by_test_id("vm-filter-name").press("Enter")
    expect(page).to_have_url(re.compile(r"name="))
    expect(table.locator("tbody tr.ant-table-row").first).to_contain_text(first_name)

    # A lab VM's detail page: disks, NICs with their MACs, events.
    table.locator("tbody tr.ant-table-row a").first.click()
    expect(page.get_by_test_id("vm-name")).to_have_text(first_name)
    page.get_by_role("tab", name=re.compile(text("vms:tab.nics", ZH, count=".*"))).click()
    expect(page.locator(".ant-tabs-tabpane-active")).to_contain_text(MAC)

    # Create a VM with the wizard: the dry run says where it goes before anything is made.
    page.goto("/vms/new")
    page.get_by_test_id("create-name").fill("portal-web-1")
    page.locator("#memory_mib").fill("64")  # the small lab has little room left
    page.get_by_test_id("wizard-next").click()
    choose(page, "[data-testid=create-pool]", "lab-vc")
    page.get_by_test_id("wizard-next").click()
    dry_run = page.get_by_test_id("dry-run")
    expect(dry_run).to_contain_text(text("vms:create.placedOn", ZH))
    shoot(page, "create-dry-run-zh-CN")
    page.get_by_test_id("wizard-create").click()
    watch = page.get_by_test_id("create-watch")
    expect(watch).to_contain_text(text("vms:create.watch.succeeded", ZH), timeout=90_000)
    page.get_by_test_id("open-new-vm").click()
    expect(page.get_by_test_id("vm-name")).to_have_text("portal-web-1")
    expect(page.locator("[data-power-state=running]")).to_be_visible()

    # Power it off, after a confirmation; the task runs live and the page follows.
    page.get_by_test_id("vm-power").click()
    page.get_by_role("menuitem", name=text("vms:power.stop", ZH)).click()
    expect(page.locator(".ant-modal-confirm")).to_contain_text("portal-web-1")
    page.locator("#confirm-ok").click()
    wait_task(page)
    expect(page.locator("[data-power-state=stopped]")).to_be_visible(timeout=30_000)
    page.get_by_role("tab", name=text("vms:tab.tasks", ZH)).click()
    expect(page.locator(".ant-tabs-tabpane-active")).to_contain_text(
        text("tasks:kind.vm_power", ZH)
    )
    shoot(page, "vm-detail-zh-CN")
    vm_id = page.url.rsplit("/", 1)[1]

    # The language was remembered for the user: a new session opens in Chinese.
    again = new_page("en-US")
    login(again, "admin", admin_password)
    expect(again.get_by_test_id("side-menu")).to_contain_text(text("common:menu.vms", ZH))
    again.goto("/tasks")
    expect(again.get_by_test_id("task-table")).to_contain_text(text("tasks:kind.vm_power", ZH))
    shoot(again, "tasks-zh-CN")

    # The same pages in English, for the record.
    switch_language(again, "English")
    pages = {"/": "overview", "/vms": "vms", "/pools": "pools", "/tasks": "tasks"}
    for path, name in pages.items():
        again.goto(path)
        settle(again)
        shoot(again, f"{name}-en")
    again.goto(f"/vms/{vm_id}")
    expect(again.get_by_test_id("vm-name")).to_have_text("portal-web-1")
    shoot(again, "vm-detail-en")

    # A pool that goes away: its sync fails and the pool shows as unreachable.
    vcsim_fresh.stop()
    again.goto("/pools")
    again.get_by_test_id("pool-sync-lab-vc").click()
    wait_task(again, "failed")
    expect(again.get_by_test_id("pool-status-lab-vc")).to_contain_text(
        text("common:poolStatus.unreachable", EN)
    )
    expect(again.locator(".ant-alert-warning")).to_contain_text("lab-vc")

    # A reader of another project sees none of it, and is offered nothing to change.
    project = admin_api.post("/v1/projects", json={"name": "elsewhere"}).json()
    user = admin_api.post("/v1/users", json={"name": "rita", "password": "rita-pass-123"}).json()
    assigned = admin_api.put(
        f"/v1/projects/{project['id']}/members/{user['id']}", json={"role": "reader"}
    )
    assert assigned.status_code == 204
    reader = new_page("en-US")
    login(reader, "rita", "rita-pass-123")
    menu = reader.get_by_test_id("side-menu")
    expect(menu).not_to_contain_text(text("common:menu.users", EN))
    reader.goto("/vms")
    expect(reader.get_by_test_id("vm-table")).to_contain_text(text("vms:empty", EN))
    expect(reader.get_by_role("button", name=text("vms:create.button", EN))).to_have_count(0)
    expect(reader.get_by_test_id("bulk-actions")).to_have_count(0)
    reader.goto("/pools")
    expect(reader.get_by_test_id("pool-table")).to_contain_text(text("pools:empty", EN))
    expect(reader.get_by_test_id("add-pool")).to_have_count(0)
    reader.goto(f"/vms/{vm_id}")
    expect(reader.get_by_test_id("vm-not-found")).to_be_visible()
    reader.goto("/tasks")
    expect(reader.get_by_test_id("task-table")).to_contain_text(text("tasks:empty", EN))
    shoot(reader, "reader-vms-en")
