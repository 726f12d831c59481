"""The isolation matrix: every operation of the API, enumerated from its OpenAPI document,
by every project role, on an object of the caller's own project and on one of the other
project; each answer checked against what the policy and the tenancy rules demand:

- an admin-only route: 403 for every project role;
- a role below the route's rule: 403 whoever owns the object (the rule is checked before
  any object is looked up, so this 403 is the same for an object that does not exist and
  tells nothing of it);
- the other project's object: 404 (for the few objects named in a body, the status a
  missing one gets), with the very message an object that does not exist at all gets;
- one's own object, with the role the rule asks: neither 403 nor 404, and never a 5xx
  (but the 503 of the pool nobody answers at);
- no successful answer ever holds an id of the other project's rows or pool, of a VM no
  project has adopted, or of a network of its own pool the project is not granted.

Every operation needs an entry in CASES and every path parameter one in SAMPLES: a route
added without them fails here, saying what to add. The callers are alpha's users; nobody
answers at the pools, so the tasks the requests start fail at once and nothing waits.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.config import Settings
from tessera.identity.model import Principal, Role, Rule
from tessera.identity.policy import RULES
from tessera.runtime import Runtime
from tessera.scheduler import service as placement
from tessera.scheduler.model import GroupPolicy
from tests.identity.tenants import ROLES, Tenant, World, build, ok, other

# A value for a request, from the world, the tenant whose object it names and the
# caller's role.
Getter = Callable[[World, Tenant, str], Any]
FAKE_URL = "qemu+tcp://127.0.0.1:1/system"
_names = itertools.count(1)


def _unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@dataclass(frozen=True)
class Case:
    """How to call one operation. `body` and `query` name the objects of the tenant they
    are given. With `foreign_body`, the other side sends a body naming the other
    tenant's objects, answered `foreign_status`. `query` is sent by the other side only:
    a list filtered on the other tenant's objects, which must answer 200 without any of
    their rows. `params` overrides SAMPLES for this operation; `fresh` makes, for the own
    side, what a call consumes (a token to revoke, a group to delete), returning path
    parameters. `always` is a query both sides send (a stream's bound)."""

    body: Getter | None = None
    foreign_body: bool = False
    foreign_status: int = 404
    query: Getter | None = None
    always: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Getter] = field(default_factory=dict)
    fresh: Callable[[World, Tenant, str], dict[str, Any]] | None = None


def _fresh_token(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    made = {"name": _unique("tmp"), "expires_in_days": 1}
    return {"token_id": ok(tenant.clients[role].post("/v1/auth/tokens", json=made), 201)["id"]}


def _fresh_member(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    spare = tenant.users["spare"]
    ok(
        world.api.put(f"/v1/projects/{tenant.project}/members/{spare}", json={"role": "reader"}),
        204,
    )
    return {}


def _fresh_group(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    made = placement.create_group(
        world.rt, _unique("doomed"), GroupPolicy.AFFINITY, project_id=tenant.project
    )
    return {"group_id": made.id}


def _fresh_membership(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    placement.add_member(world.rt, tenant.group, tenant.vms[0])
    return {}


def _create_body(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    return {
        "provider_id": tenant.pool.id,
        "host_id": tenant.pool.host,
        "name": _unique("made"),
        "cpus": 1,
        "memory_mib": 64,
    }


def _dry_run_body(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    return {"provider_id": tenant.pool.id, "name": "planned", "cpus": 1, "memory_mib": 64}


def _pool_filter(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    return {"provider_id": tenant.pool.id}


def _const(value: Any) -> Getter:
    return lambda world, tenant, role: value


SAMPLES: dict[str, Getter] = {
    "vm_id": lambda w, t, r: t.vms[0],
    "task_id": lambda w, t, r: t.task,
    "group_id": lambda w, t, r: t.group,
    "provider_id": lambda w, t, r: t.pool.id,
    "project_id": lambda w, t, r: t.project,
    "user_id": lambda w, t, r: t.users["spare"],
    "nic_id": lambda w, t, r: t.nic,
    "disk_id": lambda w, t, r: t.disk,
    "name": _const("snap-1"),
    "token_id": lambda w, t, r: t.token,
    "kind": _const("provider"),
    "target_id": lambda w, t, r: t.pool.id,
}
# What stands for an object that does not exist; None keeps the foreign value (a device
# id or snapshot name, only ever looked up after the VM that holds it).
MISSING: dict[str, str | None] = {
    "vm_id": str(uuid.uuid4()),
    "task_id": str(uuid.uuid4()),
    "group_id": str(uuid.uuid4()),
    "provider_id": str(uuid.uuid4()),
    "project_id": str(uuid.uuid4()),
    "user_id": str(uuid.uuid4()),
    "token_id": str(uuid.uuid4()),
    "target_id": str(uuid.uuid4()),
    "nic_id": None,
    "disk_id": None,
    "name": None,
    "kind": None,
}

CASES: dict[str, Case] = {
    "healthz": Case(),
    "login": Case(body=lambda w, t, r: {"user": f"{t.name}-{r}", "password": f"pw-{t.name}-{r}"}),
    "whoami": Case(),
    "update_preferences": Case(body=_const({"locale": "zh-CN"})),
    "show_overview": Case(),
    "list_tokens": Case(),
    "create_token": Case(body=lambda w, t, r: {"name": _unique("tok"), "expires_in_days": 1}),
    "revoke_token": Case(fresh=_fresh_token),
    "list_domains": Case(),
    "create_domain": Case(body=lambda w, t, r: {"name": _unique("dom")}),
    "list_projects": Case(),
    "create_project": Case(body=lambda w, t, r: {"name": _unique("prj")}),
    "show_project": Case(),
    "delete_project": Case(),
    "list_users": Case(),
    "create_user": Case(body=lambda w, t, r: {"name": _unique("usr")}),
    "show_user": Case(),
    # one's own user is oneself here: changing another is an admin's (403 by design)
    "update_user": Case(
        body=_const({"locale": "en"}), params={"user_id": lambda w, t, r: t.users[r]}
    ),
    "delete_user": Case(),
    "list_members": Case(),
    "assign_role": Case(body=_const({"role": "reader"})),
    "unassign_role": Case(fresh=_fresh_member),
    "list_grants": Case(),
    "add_grant": Case(),
    "remove_grant": Case(),
    "show_quota": Case(),
    "set_quota": Case(body=_const({"vms": 100})),
    "show_usage": Case(),
    "list_providers": Case(),
    "add_provider": Case(
        body=lambda w, t, r: {"name": _unique("pool"), "kind": "libvirt", "url": FAKE_URL}
    ),
    "show_provider": Case(),
    "delete_provider": Case(),
    "sync_provider": Case(),
    "set_provider_network": Case(body=_const({"ovsdb": "tcp:127.0.0.1:6640"})),
    "set_provider_datastore_mounts": Case(body=_const({"mounts": {}})),
    "list_provider_kinds": Case(),
    "list_vms": Case(query=_pool_filter),
    "create_vm": Case(body=_create_body, foreign_body=True),
    "show_vm": Case(),
    "delete_vm": Case(),
    "adopt_vm": Case(body=lambda w, t, r: {"project_id": t.project}),
    "list_unmanaged_vms": Case(),
    "preview_adopt": Case(body=lambda w, t, r: {"select": {"provider_id": t.pool.id}}),
    "adopt_vms": Case(
        body=lambda w, t, r: {"select": {"provider_id": t.pool.id}, "project_id": t.project}
    ),
    "preview_release": Case(body=lambda w, t, r: {"select": {"project_id": t.project}}),
    "release_vms": Case(body=lambda w, t, r: {"select": {"project_id": t.project}}),
    "list_hosts": Case(query=_pool_filter),
    "list_clusters": Case(query=_pool_filter),
    "list_datastores": Case(query=_pool_filter),
    "list_networks": Case(query=_pool_filter),
    # a pool named in a placement dry run that does not exist is bad input (422)
    "placement_dry_run": Case(
        body=lambda w, t, r: {"vcpus": 1, "memory_mib": 64, "provider": t.pool.id},
        foreign_body=True,
        foreign_status=422,
    ),
    "list_placement_groups": Case(),
    "create_placement_group": Case(
        body=lambda w, t, r: {"name": _unique("grp"), "policy": "affinity"}
    ),
    "show_placement_group": Case(),
    "delete_placement_group": Case(fresh=_fresh_group),
    "add_placement_group_member": Case(),
    "remove_placement_group_member": Case(fresh=_fresh_membership),
    "preview_bulk": Case(
        body=lambda w, t, r: {"select": {"vm_ids": [t.vms[0]]}}, foreign_body=True
    ),
    "submit_bulk": Case(
        body=lambda w, t, r: {
            "select": {"vm_ids": [t.vms[0]]},
            "action": {"kind": "tag", "add": ["matrix"]},
        },
        foreign_body=True,
    ),
    "list_task_items": Case(params={"task_id": lambda w, t, r: t.bulk_task}),
    "change_vm_tags": Case(body=_const({"add": ["matrix"]})),
    "create_vm_dry_run": Case(body=_dry_run_body, foreign_body=True),
    "power_vm": Case(body=_const({"action": "stop"})),
    "rename_vm": Case(body=lambda w, t, r: {"name": _unique("renamed")}),
    "resize_vm": Case(body=_const({"cpu_count": 2})),
    "add_nic": Case(body=lambda w, t, r: {"network_id": t.pool.networks[0]}),
    "remove_nic": Case(),
    "add_disk": Case(body=_const({"size_gib": 1})),
    "grow_disk": Case(body=_const({"size_gib": 2})),
    "remove_disk": Case(),
    "create_snapshot": Case(body=_const({"name": "snap-1"})),
    "list_snapshots": Case(),
    "revert_snapshot": Case(),
    "delete_snapshot": Case(),
    "clone_vm": Case(body=lambda w, t, r: {"name": _unique("copy")}),
    "convert_to_template": Case(),
    "convert_to_vm": Case(),
    "migrate_vm": Case(body=lambda w, t, r: {"host_id": t.pool.host}),
    "list_tasks": Case(query=lambda w, t, r: {"parent_id": t.bulk_task}),
    "show_task": Case(),
    # the stream ends after its first burst; following the other project's task sends
    # nothing of it
    "stream_tasks": Case(query=lambda w, t, r: {"task_id": t.task}, always={"max_seconds": 0}),
    "cancel_task": Case(),
    "retry_task": Case(),
    "list_events": Case(query=lambda w, t, r: {"vm_id": t.vms[1]}),
    "list_vm_events": Case(),
    "list_audit": Case(),
}


# Tessera's own networks (tessera.network): each tenant's member makes a segment with a
# subnet, a port, a router (its gateway on the admin's external segment, an interface on
# the subnet), a floating IP and a security group with a rule, once per world.
_NETWORKS: dict[str, dict[str, str]] = {}
_cidrs = itertools.count(1)


def _cidr() -> str:
    n = next(_cidrs)
    return f"10.{100 + n // 256}.{n % 256}.0/24"


def _external(world: World) -> str:
    key = f"ext:{world.tenants['alpha'].project}"
    if key not in _NETWORKS:
        body = {"name": "public", "network_type": "flat", "external": True}
        ext = ok(world.api.post("/v1/segments", json=body), 202)["segment"]["id"]
        ok(world.api.post("/v1/subnets", json={"segment_id": ext, "cidr": "198.51.100.0/24"}), 201)
        made = {"name": "matrix", "kind": "vpn-peer", "cidr": "192.0.2.0/24"}
        rng = ok(world.api.post("/v1/address-ranges", json=made), 201)["id"]
        _NETWORKS[key] = {"segment": ext, "range": rng}
    return _NETWORKS[key]["segment"]


def _segment(tenant: Tenant) -> tuple[str, str]:
    """A new segment of the tenant with one subnet: their ids."""
    member = tenant.clients["member"]
    body = {"name": _unique("seg"), "network_type": "vxlan", "segmentation_id": next(_names)}
    segment = ok(member.post("/v1/segments", json=body), 202)["segment"]["id"]
    made = {"segment_id": segment, "cidr": _cidr()}
    return segment, ok(member.post("/v1/subnets", json=made), 201)["id"]


def _net(world: World, tenant: Tenant) -> dict[str, str]:
    if tenant.project not in _NETWORKS:
        member, ext = tenant.clients["member"], _external(world)
        segment, subnet = _segment(tenant)
        port = ok(member.post("/v1/ports", json={"segment_id": segment}), 201)["id"]
        made = {"name": _unique("rtr"), "external_segment_id": ext}
        router = ok(member.post("/v1/routers", json=made), 201)["id"]
        ok(member.put(f"/v1/routers/{router}/interfaces/{subnet}"))
        fip = {"segment_id": ext, "port_id": port}
        floating = ok(member.post("/v1/floating-ips", json=fip), 201)["id"]
        group = ok(member.post("/v1/security-groups", json={"name": "sg"}), 201)["id"]
        rule = {"direction": "ingress", "protocol": "tcp", "port_range_min": 22}
        rule_id = ok(member.post(f"/v1/security-groups/{group}/rules", json=rule), 201)["id"]
        _NETWORKS[tenant.project] = {
            "segment": segment,
            "subnet": subnet,
            "port": port,
            "router": router,
            "floating_ip": floating,
            "security_group": group,
            "rule": rule_id,
        }
    return _NETWORKS[tenant.project]


def _net_sample(kind: str) -> Getter:
    return lambda w, t, r: _net(w, t)[kind]


def _fresh_segment(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    return {"segment_id": _segment(tenant)[0]}


def _fresh_subnet(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    return {"subnet_id": _segment(tenant)[1]}


def _fresh_port(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    body = {"segment_id": _net(world, tenant)["segment"]}
    return {"port_id": ok(tenant.clients["member"].post("/v1/ports", json=body), 201)["id"]}


def _fresh_router(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    body = {"name": _unique("rtr"), "external_segment_id": _external(world)}
    return {"router_id": ok(tenant.clients["member"].post("/v1/routers", json=body), 201)["id"]}


def _fresh_interface(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    made = _fresh_router(world, tenant, role) | _fresh_subnet(world, tenant, role)
    path = f"/v1/routers/{made['router_id']}/interfaces/{made['subnet_id']}"
    ok(tenant.clients["member"].put(path))
    return made


def _fresh_floating_ip(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    body = {"segment_id": _external(world)}
    made = ok(tenant.clients["member"].post("/v1/floating-ips", json=body), 201)
    return {"floating_ip_id": made["id"]}


def _fresh_security_group(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    body = {"name": _unique("sg")}
    made = ok(tenant.clients["member"].post("/v1/security-groups", json=body), 201)
    return {"security_group_id": made["id"]}


def _fresh_rule(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    group = _net(world, tenant)["security_group"]
    body = {"direction": "egress"}
    path = f"/v1/security-groups/{group}/rules"
    return {"rule_id": ok(tenant.clients["member"].post(path, json=body), 201)["id"]}


def _network_ids(world: World, side: str) -> set[str]:
    """The other tenant's network objects, which `side` must never be shown."""
    return set(_NETWORKS.get(world.tenants[other(side)].project, {}).values())


SAMPLES |= {
    "segment_id": _net_sample("segment"),
    "subnet_id": _net_sample("subnet"),
    "port_id": _net_sample("port"),
    "router_id": _net_sample("router"),
    "floating_ip_id": _net_sample("floating_ip"),
    "security_group_id": _net_sample("security_group"),
    "rule_id": _net_sample("rule"),
    "range_id": lambda w, t, r: _NETWORKS[f"ext:{w.tenants['alpha'].project}"]["range"],
}
MISSING |= {
    name: str(uuid.uuid4())
    for name in (
        "segment_id",
        "subnet_id",
        "port_id",
        "router_id",
        "floating_ip_id",
        "security_group_id",
        "rule_id",
        "range_id",
    )
}


def _on_segment(world: World, tenant: Tenant, role: str) -> dict[str, Any]:
    return {"segment_id": _net(world, tenant)["segment"]}


CASES |= {
    "list_segments": Case(),
    "create_segment": Case(
        body=lambda w, t, r: {
            "name": _unique("seg"),
            "network_type": "vlan",
            "segmentation_id": 1000 + next(_names) % 3000,
        }
    ),
    "show_segment": Case(),
    "update_segment": Case(body=_const({"description": "matrix"})),
    "delete_segment": Case(fresh=_fresh_segment),
    "list_subnets": Case(query=_on_segment),
    "create_subnet": Case(
        body=lambda w, t, r: {"segment_id": _net(w, t)["segment"], "cidr": _cidr()},
        foreign_body=True,
    ),
    "show_subnet": Case(),
    "delete_subnet": Case(fresh=_fresh_subnet),
    "list_ports": Case(query=_on_segment),
    "create_port": Case(body=_on_segment, foreign_body=True),
    "show_port": Case(),
    "delete_port": Case(fresh=_fresh_port),
    "list_routers": Case(),
    "create_router": Case(body=lambda w, t, r: {"name": _unique("rtr")}),
    "show_router": Case(),
    "delete_router": Case(fresh=_fresh_router),
    "set_router_gateway": Case(body=lambda w, t, r: {"segment_id": _external(w)}),
    "clear_router_gateway": Case(fresh=_fresh_router),
    "add_router_interface": Case(fresh=_fresh_subnet),
    "remove_router_interface": Case(fresh=_fresh_interface),
    "list_floating_ips": Case(),
    "create_floating_ip": Case(body=lambda w, t, r: {"segment_id": _external(w)}),
    "show_floating_ip": Case(),
    "associate_floating_ip": Case(body=_const({"port_id": None})),
    "delete_floating_ip": Case(fresh=_fresh_floating_ip),
    "list_security_groups": Case(),
    "create_security_group": Case(body=lambda w, t, r: {"name": _unique("sg")}),
    "show_security_group": Case(),
    "delete_security_group": Case(fresh=_fresh_security_group),
    "create_security_group_rule": Case(body=_const({"direction": "ingress"})),
    "delete_security_group_rule": Case(fresh=_fresh_rule),
    # the address space is the admins': 403 to every project role
    "list_address_ranges": Case(),
    "create_address_range": Case(
        body=_const({"name": "peer", "kind": "vpn-peer", "cidr": "203.0.113.0/24"})
    ),
    "delete_address_range": Case(),
    "list_address_overlaps": Case(),
    # migration plans move VMs between pools: the platform admins', 403 to every project role
    "list_migration_plans": Case(),
    "create_migration_plan": Case(
        body=lambda w, t, r: {
            "name": _unique("mig"),
            "source_provider_id": t.pool.id,
            "target_provider_id": t.pool.id,
            "vm_ids": [t.vms[0]],
        }
    ),
    "show_migration_plan": Case(),
    "update_migration_plan": Case(body=_const({"target_format": "raw"})),
    "delete_migration_plan": Case(),
    "check_migration_plan": Case(),
    "start_migration_plan": Case(),
    "cancel_migration_plan": Case(),
    "resume_migration_plan": Case(),
    "rollback_migration_plan": Case(),
}
SAMPLES["plan_id"] = _const(str(uuid.uuid4()))
MISSING["plan_id"] = str(uuid.uuid4())
# interconnects between regions are the platform's: 403 to every project role
CASES |= {
    "list_interconnects": Case(),
    "create_interconnect": Case(
        body=_const(
            {
                "name": "matrix-ic",
                "kind": "ospf",
                "a": {"region": "r-a", "namespace": "ns-a", "underlay_ip": "172.31.0.1"},
                "b": {"region": "r-b", "namespace": "ns-b", "underlay_ip": "172.31.0.2"},
            }
        )
    ),
    "show_interconnect": Case(),
    "delete_interconnect": Case(),
}
SAMPLES["interconnect_id"] = _const(str(uuid.uuid4()))
MISSING["interconnect_id"] = str(uuid.uuid4())
# Answers whose rows are checked by these fields instead of every string they hold: an
# audit entry of one's own failed call on a foreign object names that object, as the
# caller's own record of what they tried.
ROW_FIELDS: dict[str, tuple[str, ...]] = {"list_audit": ("project_id", "user_id")}


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str
    params: tuple[str, ...]


def operations(api: TestClient) -> list[Operation]:
    spec = api.app.openapi()  # type: ignore[attr-defined]
    return [
        Operation(op["operationId"], method.upper(), path, tuple(re.findall(r"{(\w+)}", path)))
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
    ]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        database_url=database_url,
        watch_enabled=False,
        task_retry_attempts=1,
        login_attempts_per_minute=1000,
    )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _leaks(op: str, payload: Any, foreign: set[str]) -> set[str]:
    if op in ROW_FIELDS:
        rows = payload.get("items", []) if isinstance(payload, dict) else payload
        return {row.get(name) for row in rows for name in ROW_FIELDS[op]} & foreign
    return set(_strings(payload)) & foreign


def _payload(answer: Any) -> Any:
    """A JSON answer, or the data of each frame of an event stream."""
    if not answer.content:
        return None
    if answer.headers["content-type"].startswith("text/event-stream"):
        frames = answer.text.splitlines()
        return [json.loads(f.removeprefix("data: ")) for f in frames if f.startswith("data: ")]
    return answer.json()


def _unreachable(answer: Any) -> bool:
    """A 503 for the pool nobody answers at (reading snapshots asks the pool at once)."""
    return answer.status_code == 503 and answer.json()["code"] == "provider_failed"


def _allowed(role: str, rule: Rule) -> bool:
    caller = Principal("u", "u", "d", False, "p", Role(role), "t")
    return caller.allows(rule)


@dataclass(frozen=True)
class Call:
    """One cell of the matrix: an operation, by a role of alpha, on an object of `target`
    (alpha's own, or beta's: the other side)."""

    op: Operation
    case: Case
    role: str
    side: str
    target: Tenant
    values: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.op.name} ({self.op.method} {self.op.path}) as {self.role}, {self.side}"

    def send(self, world: World, values: dict[str, Any], query: dict[str, Any] | None) -> Any:
        path = self.op.path
        for name in self.op.params:
            path = path.replace(f"{{{name}}}", str(values[name]))
        body = self.case.body(world, self.target, self.role) if self.case.body else None
        client = world.tenants["alpha"].clients[self.role]
        return client.request(self.op.method, path, json=body, params=query)


class Matrix:
    """Sends every call and collects each answer that breaks a rule."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.failures: list[str] = []
        self.checked = 0

    def calls(self, op: Operation, case: Case, role: str) -> Iterator[Call]:
        sides = ["own"]
        if op.params or case.foreign_body or case.query:
            sides.append("other")
        for side in sides:
            target = self.world.tenants["alpha" if side == "own" else other("alpha")]
            values = {
                name: (case.params.get(name) or SAMPLES[name])(self.world, target, role)
                for name in op.params
            }
            if side == "own" and case.fresh is not None:
                values |= case.fresh(self.world, target, role)
            yield Call(op, case, role, side, target, values)

    def run(self, op: Operation, case: Case, role: str) -> None:
        foreign = self.world.foreign_ids("alpha") | _network_ids(self.world, "alpha")
        for call in self.calls(op, case, role):
            query = dict(case.always)
            if call.side == "other" and case.query is not None:
                query |= case.query(self.world, call.target, role)
            answer = call.send(self.world, call.values, query or None)
            self.checked += 1
            self.check(call, answer)
            if answer.is_success:
                leaked = _leaks(op.name, _payload(answer), foreign)
                if leaked:
                    self.failures.append(f"{call.where}: shows foreign ids {sorted(leaked)}")

    def check(self, call: Call, answer: Any) -> None:
        status, rule, case = answer.status_code, RULES[call.op.name], call.case
        if status >= 500 and not _unreachable(answer):
            self.failures.append(f"{call.where}: {status} {answer.text}")
        elif rule is Rule.ADMIN or not _allowed(call.role, rule):
            if status != 403:
                self.failures.append(f"{call.where}: {status}, not 403 ({rule.value})")
        elif call.side == "own":
            if status in (401, 403, 404):
                self.failures.append(f"{call.where}: {status} {answer.text}")
        elif case.query is not None and not call.op.params:
            if status != 200:
                self.failures.append(f"{call.where}: a filtered list answered {status}")
        elif status != case.foreign_status:
            self.failures.append(
                f"{call.where}: {status}, not {case.foreign_status}: {answer.text}"
            )
        elif call.op.params:
            self.same_as_missing(call, answer)

    def same_as_missing(self, call: Call, answer: Any) -> None:
        """The foreign object's answer, ids aside, is that of one that does not exist."""
        missing = {name: MISSING[name] or call.values[name] for name in call.op.params}
        absent = call.send(self.world, missing, None)
        message = answer.json()["message"]
        for name in call.op.params:
            message = message.replace(str(call.values[name]), str(missing[name]))
        if (absent.status_code, absent.json()["message"]) != (answer.status_code, message):
            self.failures.append(
                f"{call.where}: told apart from a missing one: {answer.status_code} "
                f"{answer.json()['message']!r} vs {absent.status_code} {absent.json()['message']!r}"
            )


def test_no_route_lets_a_project_see_or_touch_another_projects_objects(
    api: TestClient, runtime: Runtime
) -> None:
    ops = operations(api)
    uncovered = sorted(op.name for op in ops if op.name not in CASES)
    assert not uncovered, f"add these operations to CASES in {__file__}: {uncovered}"
    unknown = sorted({p for op in ops for p in op.params} - set(SAMPLES))
    assert not unknown, f"add samples for these path parameters to SAMPLES: {unknown}"
    stale = sorted(set(CASES) - {op.name for op in ops})
    assert not stale, f"CASES names operations that no longer exist: {stale}"

    world = build(api, runtime)
    for tenant in world.tenants.values():
        _net(world, tenant)
    matrix = Matrix(world)
    for op in ops:
        for role in ROLES:
            matrix.run(op, CASES[op.name], role)
    assert matrix.checked >= len(ops) * len(ROLES)
    assert not matrix.failures, "\n".join(matrix.failures)
