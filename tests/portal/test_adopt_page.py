"""The unmanaged-VM page in a real browser against the real API: an admin filters the
VMs no project owns by folder, adopts the selected ones into a project (the confirmation
names them from the server's preview, the task runs live in the drawer), then releases
them again in Chinese; a project's member is not offered the page."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tessera.runtime import Runtime
from tests.inventory.test_adoption import _seed
from tests.portal.conftest import login, text

EN, ZH = "en", "zh-CN"
ROWS = "tbody tr.ant-table-row"
RAW_ADOPT_KEY = re.compile(r"\badopt:[A-Za-z_]+(?:\.[A-Za-z_]+)*")


def wait_task(page: Page) -> None:
    """The task drawer shows the task succeed; then close it."""
    drawer = page.get_by_test_id("task-drawer")
    done = drawer.get_by_test_id("task-state").locator("[data-task-state='succeeded']")
    expect(done).to_be_visible(timeout=60_000)
    page.locator(".ant-drawer-close").click()
    expect(drawer).to_be_hidden()


def choose_project(page: Page, name: str) -> None:
    page.get_by_test_id("adopt-project").click()
    page.locator(f".ant-select-dropdown:visible .ant-select-item-option[title='{name}']").click()
    page.locator("#project-next").click()


def test_admin_adopts_and_releases_vms_in_both_languages(
    new_page: Callable[..., Page],
    admin_password: str,
    admin_api: httpx.Client,
    runtime: Runtime,
    shoot: Callable[[Page, str], Path],
) -> None:
    _seed(runtime)
    project = admin_api.post("/v1/projects", json={"name": "web"}).json()["id"]

    page = new_page("en-US")
    login(page, "admin", admin_password)
    page.get_by_role("menuitem", name=text("adopt:menu", EN)).click()
    expect(page.locator("h3").first).to_have_text(text("adopt:title", EN))
    table = page.get_by_test_id("unmanaged-table")
    rows = table.locator(ROWS)
    expect(rows).to_have_count(5)
    expect(table).to_contain_text("/DC0/vm/website")

    folder = page.get_by_test_id("unmanaged-filter-folder")
    folder.fill("/DC0/vm/web")
    folder.press("Enter")
    expect(rows).to_have_count(3)
    for i in (0, 1):
        rows.nth(i).locator(".ant-checkbox-input").check()
    adopt = page.get_by_test_id("adopt-button")
    expect(adopt).to_have_text(text("adopt:adopt.selected_other", EN, count=2))
    adopt.click()
    choose_project(page, "web")
    confirm = page.get_by_role(
        "dialog", name=text("adopt:adopt.confirm_other", EN, count=2, project="web")
    )
    expect(confirm.get_by_test_id("adopt-preview")).to_have_text("web-1, web-2")
    assert not RAW_ADOPT_KEY.findall(page.locator("body").inner_text())
    shoot(page, "unmanaged-adopt-en")
    confirm.locator("#confirm-ok").click()
    wait_task(page)
    expect(rows).to_have_count(1, timeout=10_000)
    expect(rows.first).to_contain_text("web-3")
    owned = admin_api.get("/v1/vms", params={"name": "web-"}).json()["items"]
    assert sorted(vm["name"] for vm in owned if vm["project_id"] == project) == ["web-1", "web-2"]

    # In Chinese: adopt everything the filter matches, then release the project's VMs.
    zh = new_page("zh-CN")
    login(zh, "admin", admin_password)
    zh.goto("/admin/unmanaged")
    expect(zh.locator("h3").first).to_have_text(text("adopt:title", ZH))
    zh_rows = zh.get_by_test_id("unmanaged-table").locator(ROWS)
    expect(zh_rows).to_have_count(3)
    zh.get_by_test_id("unmanaged-filter-name").fill("site")
    zh.get_by_test_id("unmanaged-filter-name").press("Enter")
    expect(zh_rows).to_have_count(1)
    zh.get_by_test_id("adopt-button").click()
    choose_project(zh, "web")
    zh.get_by_role(
        "dialog", name=text("adopt:adopt.confirm_other", ZH, count=1, project="web")
    ).locator("#confirm-ok").click()
    wait_task(zh)
    expect(zh_rows).to_have_count(0, timeout=10_000)
    expect(zh.get_by_test_id("unmanaged-table")).to_contain_text(text("adopt:empty", ZH))

    zh.get_by_test_id("release-button").click()
    choose_project(zh, "web")
    release = zh.get_by_role(
        "dialog", name=text("adopt:release.confirm_other", ZH, count=3, project="web")
    )
    expect(release.get_by_test_id("adopt-preview")).to_have_text("site-1, web-1, web-2")
    assert not RAW_ADOPT_KEY.findall(zh.locator("body").inner_text())
    shoot(zh, "unmanaged-release-zh-CN")
    release.locator("#confirm-ok").click()
    wait_task(zh)
    zh.get_by_test_id("unmanaged-filter-name").fill("")
    zh.get_by_test_id("unmanaged-filter-name").press("Enter")
    expect(zh_rows).to_have_count(5, timeout=10_000)
    assert all(vm["project_id"] is None for vm in admin_api.get("/v1/vms").json()["items"])


def test_a_project_member_is_not_offered_the_page(
    new_page: Callable[..., Page], admin_api: httpx.Client, runtime: Runtime
) -> None:
    _seed(runtime)
    project = admin_api.post("/v1/projects", json={"name": "web"}).json()["id"]
    user = admin_api.post("/v1/users", json={"name": "bob", "password": "pw-bob-12345"}).json()
    admin_api.put(f"/v1/projects/{project}/members/{user['id']}", json={"role": "member"})
    page = new_page("en-US")
    login(page, "bob", "pw-bob-12345")
    expect(page.get_by_role("menuitem", name=text("common:menu.vms", EN))).to_be_visible()
    expect(page.get_by_role("menuitem", name=text("adopt:menu", EN))).to_have_count(0)
    page.goto("/admin/unmanaged")
    expect(page.get_by_text(text("adopt:adminOnly", EN))).to_be_visible()
