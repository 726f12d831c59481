"""The overview, the inventory pages and the administrators' pages in a real browser
against the real API and the lab (a vCenter simulator and a KVM host): the dashboard
counts what the pools hold and draws its charts, the hosts, datastores and networks are
listed, an admin sets up a project end to end and finds it in the audit log, all of it
in English and in Chinese; a reader and a project admin are offered only what their
role allows."""

from __future__ import annotations

import importlib
import pkgutil
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi.routing import APIRoute
from playwright.sync_api import Page, expect

import tessera.api.routes
from tessera.lab.kvm import RunningKvmHost
from tessera.lab.vcsim import RunningVcsim
from tests.portal.conftest import LOCALES, login, settle, text

EN, ZH = "en", "zh-CN"
ROWS = "tbody tr.ant-table-row"


def choose(page: Page, select: str, option: str, *, search: bool = False) -> None:
    """Pick `option` (its visible label) in the antd Select found by `select`; `search`
    types it first, for long lists that only render the options in view."""
    page.locator(select).click()
    if search:
        page.keyboard.type(option)
    page.locator(f".ant-select-dropdown:visible .ant-select-item-option[title='{option}']").click()


def switch_language(page: Page, label: str) -> None:
    page.get_by_test_id("language-switch").click()
    page.locator(f".ant-select-dropdown:visible .ant-select-item-option[title='{label}']").click()


def add_pool(api: httpx.Client, **body: Any) -> dict[str, Any]:
    """Register a pool and read it in full (its sync task succeeds)."""
    created = api.post("/v1/providers", json=body)
    assert created.status_code == 201, created.text
    pool: dict[str, Any] = created.json()
    task = api.post(f"/v1/providers/{pool['id']}/sync").json()
    deadline = time.monotonic() + 60
    while task["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"sync of {pool['name']} did not finish"
        time.sleep(0.2)
        task = api.get(f"/v1/tasks/{task['id']}").json()
    assert task["state"] == "succeeded", task
    return pool


def names(api: httpx.Client, route: str, **params: str) -> list[str]:
    return [
        item["name"] for item in api.get(route, params={"limit": 200, **params}).json()["items"]
    ]


def title(page: Page) -> str:
    return page.locator("h3").first.inner_text()


def test_every_audited_call_has_a_label() -> None:
    """The audit log names each mutating route in both languages."""
    import json

    mutating = set()
    for module in pkgutil.iter_modules(tessera.api.routes.__path__):
        router = getattr(
            importlib.import_module(f"tessera.api.routes.{module.name}"), "router", None
        )
        for route in getattr(router, "routes", []):
            if isinstance(route, APIRoute) and route.methods - {"GET", "HEAD"}:
                mutating.add(route.name)
    assert "create_project" in mutating
    for lng in (EN, ZH):
        labels = json.loads((LOCALES / lng / "admin.json").read_text(encoding="utf-8"))
        missing = sorted(mutating - set(labels["audit"]["action"]))
        assert not missing, f"{lng}: no audit label for {missing}"


def test_admin_runs_the_platform_in_both_languages(
    new_page: Callable[..., Page],
    admin_password: str,
    admin_api: httpx.Client,
    portal: str,
    vcsim: RunningVcsim,
    kvm_host: RunningKvmHost,
    shoot: Callable[[Page, str], Path],
) -> None:
    add_pool(
        admin_api,
        name="lab-vc",
        kind="vsphere",
        url=vcsim.url,
        username=vcsim.username,
        password=vcsim.password,
        verify_tls=False,
        zone="az1",
    )
    kvm = add_pool(admin_api, name="lab-kvm", kind="libvirt", url=kvm_host.uri, zone="az2")
    overview = admin_api.get("/v1/overview").json()
    assert overview["vms"]["total"] > 10  # the vCenter's ten and the KVM host's

    page = new_page("en-US")
    login(page, "admin", admin_password)

    # The overview: both pools answer, VM and host counts as the inventory has them.
    stat_vms = page.get_by_test_id("stat-vms")
    expect(stat_vms).to_contain_text(str(overview["vms"]["total"]))
    expect(page.get_by_test_id("stat-hosts")).to_contain_text(str(overview["hosts"]["total"]))
    pools = page.get_by_test_id("overview-pools")
    for pool in overview["pools"]:
        row = pools.locator(ROWS, has_text=pool["name"])
        expect(row.locator("[data-pool-status=ok]")).to_be_visible()
        expect(row.locator("td").nth(5)).to_have_text(str(pool["vms"]))
    # The charts are drawn, with labels in the UI's language.
    vm_chart = page.get_by_test_id("chart-vm-states").locator("svg")
    expect(vm_chart).to_contain_text(text("common:powerState.running", EN))
    capacity = page.get_by_test_id("chart-capacity").locator("svg")
    expect(capacity).to_contain_text("lab-vc")
    expect(capacity).to_contain_text("lab-kvm")
    page.get_by_test_id("capacity-scope").get_by_text(text("dashboard:scope.zones", EN)).click()
    expect(capacity).to_contain_text("az2")
    expect(page.get_by_test_id("recent-tasks")).to_contain_text(
        text("tasks:kind.provider_sync", EN)
    )
    shoot(page, "dashboard-en")

    # Hosts, datastores and networks of both pools, filtered by pool on the server.
    page.get_by_role("menuitem", name=text("common:menu.hosts", EN)).click()
    hosts = page.get_by_test_id("host-table")
    expect(hosts.locator(ROWS)).to_have_count(len(names(admin_api, "/v1/hosts")))
    for name in names(admin_api, "/v1/hosts"):
        expect(hosts).to_contain_text(name)
    expect(hosts.locator("[data-host-state=connected]").first).to_have_text(
        text("inventory:hostState.connected", EN)
    )
    shoot(page, "hosts-en")
    choose(page, "[data-testid=filter-pool]", "lab-kvm")
    expect(page).to_have_url(re.compile(f"provider_id={kvm['id']}"))
    kvm_hosts = names(admin_api, "/v1/hosts", provider_id=kvm["id"])
    expect(hosts.locator(ROWS)).to_have_count(len(kvm_hosts))
    expect(hosts).to_contain_text(kvm_hosts[0])

    page.get_by_role("menuitem", name=text("common:menu.datastores", EN)).click()
    datastores = page.get_by_test_id("datastore-table")
    for name in names(admin_api, "/v1/datastores"):
        expect(datastores).to_contain_text(name)
    shoot(page, "datastores-en")

    page.get_by_role("menuitem", name=text("common:menu.networks", EN)).click()
    networks = page.get_by_test_id("network-table")
    for name in names(admin_api, "/v1/networks"):
        expect(networks).to_contain_text(name)
    expect(networks).to_contain_text(text("inventory:networkKind.dvs_portgroup", EN))
    shoot(page, "networks-en")

    # A project, a user, the user's role, a grant and a quota, all through the pages.
    page.get_by_role("menuitem", name=text("common:menu.projects", EN)).click()
    page.get_by_test_id("create-project").click()
    page.get_by_test_id("project-name").fill("web-team")
    page.get_by_test_id("project-description").fill("The web shop")
    page.locator("#create-project-ok").click()
    detail = page.get_by_test_id("project-detail")
    expect(detail).to_contain_text("web-team")
    project_url = page.url

    page.get_by_role("menuitem", name=text("common:menu.users", EN)).click()
    page.get_by_test_id("create-user").click()
    page.get_by_test_id("user-name").fill("dora")
    page.get_by_test_id("user-password").fill("dora-pass-123")
    page.locator("#create-user-ok").click()
    expect(page.get_by_test_id("user-status-dora")).to_have_text(
        text("admin:users.status.enabled", EN)
    )
    shoot(page, "users-en")

    page.goto(project_url)
    choose(page, "[data-testid=member-user]", "dora")
    page.get_by_test_id("member-add").click()
    expect(page.get_by_test_id("member-table")).to_contain_text("dora")
    page.get_by_role("tab", name=text("admin:grants.tab", EN)).click()
    choose(page, "[data-testid=grant-target]", "lab-vc")
    page.get_by_test_id("grant-add").click()
    expect(page.get_by_test_id("grant-table")).to_contain_text("lab-vc")
    page.get_by_role("tab", name=text("admin:quotas.tab", EN)).click()
    page.get_by_test_id("quota-edit").click()
    page.get_by_test_id("quota-input-vms").fill("5")
    page.locator("#quota-save").click()
    vms_quota = page.get_by_test_id("quota-table").locator(ROWS).first
    expect(vms_quota.locator("td").nth(1)).to_have_text("5")
    shoot(page, "project-quotas-en")

    project = next(p for p in admin_api.get("/v1/projects").json() if p["name"] == "web-team")
    members = admin_api.get(f"/v1/projects/{project['id']}/members").json()
    assert [(m["user_name"], m["role"]) for m in members] == [("dora", "member")]
    grants = admin_api.get(f"/v1/projects/{project['id']}/grants").json()
    assert [g["kind"] for g in grants] == ["provider"]
    assert admin_api.get(f"/v1/projects/{project['id']}/quota").json()["vms"] == 5

    # Reset dora's password, then disable her: the new password works, then nothing does.
    page.get_by_role("menuitem", name=text("common:menu.users", EN)).click()
    page.get_by_test_id("user-more-dora").hover()
    page.get_by_role("menuitem", name=text("admin:users.reset.button", EN)).click()
    page.get_by_test_id("reset-password").fill("dora-new-pass-456")
    page.locator("#reset-password-ok").click()
    expect(page.locator(".ant-message")).to_contain_text(
        text("admin:users.reset.done", EN, name="dora")
    )
    login_as_dora = {"user": "dora", "password": "dora-new-pass-456", "project": "web-team"}
    assert httpx.post(f"{portal}/v1/auth/login", json=login_as_dora).status_code == 200
    page.get_by_test_id("user-toggle-dora").click()
    expect(page.get_by_test_id("user-status-dora")).to_have_text(
        text("admin:users.status.disabled", EN)
    )
    assert httpx.post(f"{portal}/v1/auth/login", json=login_as_dora).status_code == 401

    # Every one of those changes is in the audit log, and the filter narrows it.
    page.get_by_role("menuitem", name=text("common:menu.audit", EN)).click()
    audit = page.get_by_test_id("audit-table")
    for action in ("create_project", "create_user", "assign_role", "add_grant", "set_quota"):
        expect(audit).to_contain_text(text(f"admin:audit.action.{action}", EN))
    choose(
        page,
        "[data-testid=audit-filter-action]",
        text("admin:audit.action.set_quota", EN),
        search=True,
    )
    expect(audit.locator(ROWS)).to_have_count(1)
    expect(audit.locator(ROWS)).to_contain_text("admin")
    shoot(page, "audit-en")

    # The same pages in Chinese; an API error reads in Chinese too.
    switch_language(page, "简体中文")
    expect(audit).to_contain_text(text("admin:audit.action.set_quota", ZH))
    shoot(page, "audit-zh-CN")
    pages = {
        "/": ("dashboard:title", "dashboard"),
        "/hosts": ("inventory:hosts.title", "hosts"),
        "/datastores": ("inventory:datastores.title", "datastores"),
        "/networks": ("inventory:networks.title", "networks"),
        "/admin/users": ("admin:users.title", "users"),
        project_url.removeprefix(portal): ("admin:projects.title", "project"),
    }
    for path, (key, name) in pages.items():
        page.goto(path)
        expect(page.locator("h3").first).to_have_text(text(key, ZH))
        if name == "dashboard":
            expect(vm_chart).to_contain_text(text("common:powerState.running", ZH))
        settle(page)
        shoot(page, f"{name}-zh-CN")
    page.get_by_test_id("create-project").click()
    page.get_by_test_id("project-name").fill("web-team")
    page.locator("#create-project-ok").click()
    expect(page.locator(".ant-modal [role=alert]")).to_contain_text(
        text("errors:code.conflict", ZH)
    )
    assert title(page) == text("admin:projects.title", ZH)


def test_roles_are_offered_only_what_they_may_do(
    new_page: Callable[..., Page], admin_api: httpx.Client, shoot: Callable[[Page, str], Path]
) -> None:
    project = admin_api.post("/v1/projects", json={"name": "shop"}).json()
    for name, role in (("rita", "reader"), ("pat", "project-admin")):
        user = admin_api.post("/v1/users", json={"name": name, "password": f"{name}-pass-123"})
        assigned = admin_api.put(
            f"/v1/projects/{project['id']}/members/{user.json()['id']}", json={"role": role}
        )
        assert assigned.status_code == 204

    # A reader has no administration menu; its pages, opened by address, say why not.
    reader = new_page("en-US")
    login(reader, "rita", "rita-pass-123")
    menu = reader.get_by_test_id("side-menu")
    expect(menu).to_contain_text(text("common:menu.hosts", EN))
    for entry in ("admin", "projects", "users", "audit"):
        expect(menu).not_to_contain_text(text(f"common:menu.{entry}", EN))
    reader.goto("/admin/users")
    expect(reader.get_by_role("alert")).to_contain_text(text("errors:code.forbidden", EN))
    expect(reader.get_by_test_id("create-user")).to_have_count(0)
    reader.goto("/")
    expect(reader.get_by_test_id("overview-pools")).to_contain_text(text("dashboard:noPools", EN))
    shoot(reader, "reader-overview-en")

    # A project admin manages their project's members, and only reads the rest.
    admin = new_page("en-US")
    login(admin, "pat", "pat-pass-123")  # their only project: the login picks it
    menu = admin.get_by_test_id("side-menu")
    expect(menu).to_contain_text(text("common:menu.projects", EN))
    expect(menu).to_contain_text(text("common:menu.audit", EN))
    admin.goto(f"/admin/projects?project={project['id']}")
    expect(admin.get_by_test_id("member-table")).to_contain_text("rita")
    expect(admin.get_by_test_id("member-add")).to_be_visible()
    expect(admin.get_by_test_id("create-project")).to_have_count(0)
    admin.get_by_role("tab", name=text("admin:grants.tab", EN)).click()
    expect(admin.get_by_test_id("grant-table")).to_be_visible()
    expect(admin.get_by_test_id("grant-add")).to_have_count(0)
    admin.get_by_role("tab", name=text("admin:quotas.tab", EN)).click()
    expect(admin.get_by_test_id("quota-table")).to_be_visible()
    expect(admin.get_by_test_id("quota-edit")).to_have_count(0)
    admin.goto("/admin/users")
    expect(admin.get_by_test_id("user-table")).to_contain_text("rita")
    expect(admin.get_by_test_id("create-user")).to_have_count(0)
    expect(admin.get_by_test_id("user-toggle-rita")).to_have_count(0)
    shoot(admin, "project-admin-users-en")
