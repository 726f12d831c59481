"""Which rows a caller reaches: the one place a principal becomes a scope, used by every
service that reads or changes tenant data.

A platform admin reaches everything. Anyone else reaches:

- the rows of the project their token is scoped to: VMs, tasks, events and placement
  groups whose `project_id` is that project (a VM no project has adopted yet, like every
  platform row, is the admins' alone);
- the pools the project is granted, with their hosts, clusters and datastores: a pool is
  granted by a `provider` grant, or by a `zone` grant covering the pool's zone;
- of a granted pool's networks: only those granted, when the project has `network`
  grants for any network of that pool; all of them otherwise. A network grant narrows a
  pool grant and never stands alone: a network of a pool not granted stays out of reach.

Anything out of reach is answered exactly as if it did not exist (404, or the 422 a
dangling reference in a body gets), so a caller never learns what other tenants have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.orm import Session

from tessera.db.rows import GrantRow, NetworkRow, ProviderRow
from tessera.identity.model import Principal


@dataclass(frozen=True, slots=True)
class Scope:
    """The project whose rows a caller reaches (and owns what it creates); `unrestricted`
    for a platform admin, who reaches every row and whose new rows belong to the project
    their token is scoped to, if any."""

    project_id: str | None
    unrestricted: bool

    @classmethod
    def of(cls, principal: Principal) -> Scope:
        return cls(project_id=principal.project_id, unrestricted=principal.is_admin)

    def sees(self, project_id: str | None) -> bool:
        """Whether a row owned by `project_id` (None: the platform's) is in reach."""
        return self.unrestricted or (project_id is not None and project_id == self.project_id)

    def owned(self, column: Any) -> list[ColumnElement[bool]]:
        """The WHERE clauses keeping a query to rows in reach, by their project column."""
        if self.unrestricted:
            return []
        if self.project_id is None:
            return [false()]
        return [column == self.project_id]


# The platform's own view (workers, syncs, the CLI's local commands): every row.
PLATFORM = Scope(project_id=None, unrestricted=True)


@dataclass(frozen=True, slots=True)
class PoolGrants:
    """The pools a scope may see and use (`providers`; None: all), and for pools with
    network grants, the networks granted there."""

    providers: frozenset[str] | None
    networks: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def has_pool(self, provider_id: str) -> bool:
        return self.providers is None or provider_id in self.providers

    def has_network(self, provider_id: str, network_id: str) -> bool:
        if not self.has_pool(provider_id):
            return False
        granted = self.networks.get(provider_id)
        return granted is None or network_id in granted

    def networks_of(self, provider_id: str, networks: frozenset[str]) -> frozenset[str]:
        """Those of a pool's `networks` in reach."""
        if not self.has_pool(provider_id):
            return frozenset()
        granted = self.networks.get(provider_id)
        return networks if granted is None else networks & granted

    def in_pools(self, column: Any) -> list[ColumnElement[bool]]:
        """The WHERE clauses keeping a query to the pools in reach, by a pool id column."""
        if self.providers is None:
            return []
        if not self.providers:
            return [false()]
        return [column.in_(sorted(self.providers))]

    def visible(self, table: Any) -> list[ColumnElement[bool]]:
        """The WHERE clauses keeping a query on a pool's table (hosts, clusters,
        datastores, networks) to the rows in reach."""
        if table is not NetworkRow or not self.networks:
            return self.in_pools(table.provider_id)
        open_pools = sorted((self.providers or frozenset()) - set(self.networks))
        granted = sorted(net for nets in self.networks.values() for net in nets)
        return [or_(NetworkRow.provider_id.in_(open_pools), NetworkRow.id.in_(granted))]


ALL_POOLS = PoolGrants(providers=None)


def pool_grants(session: Session, scope: Scope) -> PoolGrants:
    """What `scope` is granted now: no query for an admin, three at most otherwise."""
    if scope.unrestricted:
        return ALL_POOLS
    if scope.project_id is None:
        return PoolGrants(providers=frozenset())
    by_kind: dict[str, set[str]] = {"provider": set(), "zone": set(), "network": set()}
    for kind, target_id in session.execute(
        select(GrantRow.target_kind, GrantRow.target_id).where(
            GrantRow.project_id == scope.project_id
        )
    ):
        by_kind.setdefault(kind, set()).add(target_id)
    providers = set(by_kind["provider"])
    if by_kind["zone"]:
        providers.update(
            session.scalars(select(ProviderRow.id).where(ProviderRow.zone_id.in_(by_kind["zone"])))
        )
    networks: dict[str, set[str]] = {}
    if by_kind["network"]:
        for network_id, provider_id in session.execute(
            select(NetworkRow.id, NetworkRow.provider_id).where(
                NetworkRow.id.in_(by_kind["network"])
            )
        ):
            if provider_id in providers:
                networks.setdefault(provider_id, set()).add(network_id)
    return PoolGrants(
        providers=frozenset(providers),
        networks={pid: frozenset(nets) for pid, nets in networks.items()},
    )
