"""Router changes reach the network node as durable tasks (`router.sync`), the way
Neutron's L3 agent is told to resync a router: the task names the routers a change
touched, and its step `router-N` builds the N-th one's namespace from its records as they
are then (tessera.network.dataplane.l3agent), or removes it when the router is gone. A
step is therefore safe to repeat, and the last task to run leaves the latest records
applied, whatever order changes came in.

The network node is a setting (`network_node`, only `local` for now: the control-plane
machine runs the routers itself, its switch at `network_node_ovsdb`). Steps on one router
take a file lock on the node, so two tasks never build one namespace at once.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tessera.config import Settings
from tessera.db.rows import RouterRow, TaskRow
from tessera.domain.events import TaskEvent
from tessera.domain.tasks import TaskKind
from tessera.events.recorder import record_task
from tessera.network.dataplane.l3agent import router_spec
from tessera.network.dataplane.ovs import Ovs
from tessera.network.dataplane.router import NetworkNode
from tessera.runtime import Runtime
from tessera.tasks import service as tasks

STEP = "router"
RESYNC_REQUESTER = "tessera"


def plan(params: dict[str, Any]) -> list[str]:
    return [f"{STEP}-{i}" for i in range(len(params["router_ids"]))]


def owns(step: str) -> bool:
    action, _, index = step.rpartition("-")
    return action == STEP and index.isdigit()


def network_node(settings: Settings) -> NetworkNode:
    """The node the settings name (`local`: this machine, its switch as configured)."""
    return NetworkNode(Ovs(settings.network_node_ovsdb), switch_netns=settings.network_node_netns)


def queue_sync(
    rt: Runtime, router_ids: Iterable[str | None], *, requester: str, project_id: str | None
) -> TaskRow | None:
    """Save and queue the task that applies these routers on the network node (after the
    change is committed); None when the change touched no router."""
    ids = sorted({r for r in router_ids if r})
    if not ids:
        return None
    with rt.sessions.begin() as session:
        row = tasks.new_task(
            TaskKind.ROUTER_SYNC,
            {"router_ids": ids},
            requester,
            provider_id=None,
            project_id=project_id,
        )
        session.add(row)
        session.flush()
        record_task(session, row, TaskEvent.QUEUED)
        session.expunge(row)
    tasks.enqueue(row)
    return row


def resync_all(rt: Runtime) -> TaskRow | None:
    """Queue one task that re-applies every router, as a worker starts: a change whose
    task was lost to a crash between the change's commit and the task's is applied then,
    and so are namespaces a restarted network node lost."""
    with rt.sessions() as session:
        ids = list(session.scalars(select(RouterRow.id)))
    return queue_sync(rt, ids, requester=RESYNC_REQUESTER, project_id=None)


def run_step(rt: Runtime, params: dict[str, Any], step: str) -> None:
    """Make the node's namespace of one router match its records (or remove it)."""
    router_id = params["router_ids"][int(step.rpartition("-")[2])]
    node = network_node(rt.settings)
    node.check()
    with _node_lock(rt.settings.data_dir, router_id):
        with rt.sessions() as session:
            spec = router_spec(session, router_id)
        if spec is None:
            node.remove(router_id)
        else:
            node.apply(spec)


@contextmanager
def _node_lock(data_dir: Path, router_id: str) -> Iterator[None]:
    folder = data_dir / "network-node"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{router_id}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
