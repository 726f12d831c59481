"""Pools under management: register (with a connection test), list, delete, sync."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tessera.db.rows import ProviderRow, RegionRow, ZoneRow, utcnow
from tessera.errors import ConflictError, InvalidInputError, NotFoundError, ProviderFailedError
from tessera.identity.scope import ALL_POOLS, PoolGrants
from tessera.inventory.reconcile import ReconcileCounts, reconcile
from tessera.providers import DRIVERS, open_provider
from tessera.providers.base import Endpoint
from tessera.providers.faults import ProviderError
from tessera.runtime import Runtime

log = logging.getLogger(__name__)

ALLOWED_SCHEMES: dict[str, frozenset[str]] = {
    "vsphere": frozenset({"https", "http"}),
    "libvirt": frozenset(
        {"qemu+tcp", "qemu+tls", "qemu+ssh", "qemu+unix", "qemu", "test+tcp", "test+unix"}
    ),
}


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    kind: str
    url: str
    username: str | None = None
    password: str | None = None
    verify_tls: bool = True
    region: str = "default"
    zone: str = "default"


@dataclass(frozen=True)
class SyncReport:
    provider_id: str
    seconds: float
    counts: ReconcileCounts


# Cloud instance-metadata endpoints (AWS, Azure, GCP, OpenStack, Oracle; Alibaba's;
# AWS's IPv6 one): a pool URL naming them would let an admin's request read the control
# plane's own cloud credentials.
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254")
)
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
# The libvirt URI options a pool URL may carry. Every other one is refused: several run
# a command or read a file on the control plane (command, netcat, proxy, socket, keyfile,
# known_hosts, pkipath, sshauth=agent...), and libvirt passes unknown ones on. no_tty
# keeps ssh from asking on a terminal (there is none); no_verify skips the TLS server's
# certificate check, as verify_tls=false does for vSphere.
LIBVIRT_OPTIONS = frozenset({"no_tty", "no_verify"})
RESOLVE_TIMEOUT_S = 2.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_url(kind: str, url: str) -> None:
    """Refuse a URL the driver does not speak or that points where no pool can be,
    before any connection: see `_refusal` for which hosts."""
    if kind not in DRIVERS:
        raise InvalidInputError(f"unknown provider kind {kind!r}; known: {', '.join(DRIVERS)}")
    parts = urlsplit(url)
    if parts.scheme not in ALLOWED_SCHEMES[kind]:
        allowed = ", ".join(sorted(ALLOWED_SCHEMES[kind]))
        raise InvalidInputError(f"a {kind} URL must use one of: {allowed} (got {parts.scheme!r})")
    if kind == "libvirt":
        _check_libvirt_options(parts.query)
    host = unquote(parts.hostname or "").rstrip(".")
    if not host:
        return  # a local libvirt socket (qemu:///system)
    reason = _refusal(host)
    if reason:
        raise InvalidInputError(f"refused provider URL: host {host!r} {reason}")


def _check_libvirt_options(query: str) -> None:
    """Refuse every option but LIBVIRT_OPTIONS, named as libvirt reads it: escapes
    undone, in any case, separated by '&' or ';'."""
    for part in re.split("[&;]", query):
        name = unquote(part.partition("=")[0]).strip().lower()
        if part and name not in LIBVIRT_OPTIONS:
            allowed = ", ".join(sorted(LIBVIRT_OPTIONS))
            raise InvalidInputError(
                f"refused provider URL: libvirt option {name!r} is not allowed (it may run"
                f" a command or read a file on the control plane); allowed: {allowed}"
            )


def _refusal(host: str) -> str | None:
    """Why `host` may not be a pool: a metadata service, a link-local or unspecified
    address, or a name resolving to one. Loopback stays allowed (the lab runs there).
    A name that does not resolve passes: the connection test then fails on it."""
    if host.lower() in METADATA_HOSTS or host.lower().endswith(".metadata.google.internal"):
        return "is a cloud metadata service"
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    for address in [literal] if literal is not None else _resolve(host):
        reason = _address_refusal(address)
        if reason:
            return f"is {reason}" if literal is not None else f"resolves to {address}, {reason}"
    return None


def _address_refusal(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address (169.254.0.0/16, fe80::/10)"
    if address.is_unspecified or address in THIS_NETWORK:
        return "an unspecified address (0.0.0.0/8, ::)"
    return None


def _resolve(host: str) -> list[IPAddress]:
    """The addresses `host` resolves to, or none when it does not resolve within
    RESOLVE_TIMEOUT_S (getaddrinfo has no timeout of its own, so it runs in a thread)."""
    found: list[list[IPAddress]] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return
        found.append([ipaddress.ip_address(info[4][0]) for info in infos])

    thread = threading.Thread(target=lookup, name="resolve-provider-host", daemon=True)
    thread.start()
    thread.join(RESOLVE_TIMEOUT_S)
    return found[0] if found else []


def endpoint_for(rt: Runtime, row: ProviderRow) -> Endpoint:
    password = rt.secrets.decrypt(row.secret, bound_to=row.id) if row.secret else None
    return Endpoint(
        url=row.url, username=row.username, password=password, verify_tls=row.verify_tls
    )


def _zone_id(session: Session, region: str, zone: str) -> str:
    region_row = session.scalar(select(RegionRow).where(RegionRow.name == region))
    if region_row is None:
        region_row = RegionRow(name=region)
        session.add(region_row)
        session.flush()
    zone_row = session.scalar(
        select(ZoneRow).where(ZoneRow.region_id == region_row.id, ZoneRow.name == zone)
    )
    if zone_row is None:
        zone_row = ZoneRow(region_id=region_row.id, name=zone)
        session.add(zone_row)
        session.flush()
    return zone_row.id


def add_provider(rt: Runtime, spec: ProviderSpec, *, test_connection: bool = True) -> ProviderRow:
    """Register a pool. The connection test runs first, so a typo never lands in the DB."""
    check_url(spec.kind, spec.url)
    with rt.sessions() as session:
        if session.scalar(select(ProviderRow.id).where(ProviderRow.name == spec.name)):
            raise ConflictError(f"a provider named {spec.name!r} already exists")
    row = ProviderRow(
        name=spec.name,
        kind=spec.kind,
        url=spec.url,
        username=spec.username,
        verify_tls=spec.verify_tls,
    )
    if test_connection:
        endpoint = Endpoint(spec.url, spec.username, spec.password, spec.verify_tls, 20.0)
        provider = open_provider(spec.kind, endpoint)
        try:
            about = provider.connect()
        except ProviderError as exc:
            raise InvalidInputError(f"connection test failed ({exc.code}): {exc.message}") from None
        finally:
            provider.close()
        row.product, row.version, row.instance_uuid = (
            about.product,
            about.version,
            about.instance_uuid,
        )
        row.status = "ok"
    with rt.sessions.begin() as session:
        if row.instance_uuid:
            clash = session.scalar(
                select(ProviderRow.name).where(
                    ProviderRow.kind == spec.kind, ProviderRow.instance_uuid == row.instance_uuid
                )
            )
            if clash:
                raise ConflictError(f"this endpoint is already registered as {clash!r}")
        row.zone_id = _zone_id(session, spec.region, spec.zone)
        session.add(row)
        session.flush()
        if spec.password:
            row.secret = rt.secrets.encrypt(spec.password, bound_to=row.id)
    return row


def get_provider(session: Session, provider_id: str, grants: PoolGrants = ALL_POOLS) -> ProviderRow:
    """A pool in reach of `grants`; one not granted is not found, as a missing one."""
    row = session.get(ProviderRow, provider_id)
    if row is None or not grants.has_pool(row.id):
        raise NotFoundError(f"provider {provider_id} not found")
    return row


def find_provider(session: Session, name_or_id: str) -> ProviderRow:
    row = session.get(ProviderRow, name_or_id) or session.scalar(
        select(ProviderRow).where(ProviderRow.name == name_or_id)
    )
    if row is None:
        raise NotFoundError(f"provider {name_or_id!r} not found")
    return row


def list_providers(session: Session, grants: PoolGrants = ALL_POOLS) -> list[ProviderRow]:
    stmt = select(ProviderRow).where(*grants.in_pools(ProviderRow.id))
    return list(session.scalars(stmt.order_by(ProviderRow.name)))


def count_providers(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ProviderRow)) or 0


def delete_provider(rt: Runtime, provider_id: str) -> None:
    """Forget a pool and its inventory; nothing on the pool itself is touched."""
    with rt.provider_lock(provider_id), rt.sessions.begin() as session:
        session.delete(get_provider(session, provider_id))


def record_failure(rt: Runtime, provider_id: str, exc: ProviderError) -> None:
    """Mark the pool unreachable (or failing) and keep its last known inventory."""
    status = "unreachable" if exc.code in {"unreachable", "timeout"} else "error"
    with rt.sessions.begin() as session:
        row = session.get(ProviderRow, provider_id)
        if row is not None:
            row.status = status
            row.status_message = f"{exc.code}: {exc.message}"
            row.last_sync_at = utcnow()


def sync_provider(rt: Runtime, provider_id: str, *, task_id: str | None = None) -> SyncReport:
    """Read the whole pool and reconcile the DB with it in one transaction; its events
    name `task_id` when a task asked for the sync."""
    with rt.sessions() as session:
        row = get_provider(session, provider_id)
        kind, endpoint = row.kind, endpoint_for(rt, row)
    started = time.monotonic()
    with rt.provider_lock(provider_id):
        try:
            # Chunks are written as they arrive, in one transaction: a failure part-way
            # rolls back to the previous consistent view.
            with open_provider(kind, endpoint) as provider, rt.sessions.begin() as session:
                counts = reconcile(
                    session, provider_id, provider.stream_inventory(), task_id=task_id
                )
                row = get_provider(session, provider_id)
                seconds = time.monotonic() - started
                now = utcnow()
                row.status, row.status_message = "ok", ""
                row.last_sync_at = row.last_sync_ok_at = now
                row.last_sync_seconds = seconds
        except ProviderError as exc:
            record_failure(rt, provider_id, exc)
            log.warning("sync of provider %s failed: %s", provider_id, exc.code)
            raise ProviderFailedError.during("sync", exc) from None
        if _reshaped(counts):
            refresh_planner_statistics(rt)
    return SyncReport(provider_id, seconds, counts)


def _reshaped(counts: ReconcileCounts, threshold: int = 1000) -> bool:
    moved = sum(counts.added.values()) + sum(counts.removed.values())
    return moved >= threshold


def refresh_planner_statistics(rt: Runtime) -> None:
    """Let SQLite's planner see the new table sizes after a sync that reshaped them.

    Without statistics SQLite guesses, and guesses wrong on filtered, sorted pages (at
    50,000 VMs "stopped, by memory" took 5.6 ms instead of 0.1 ms). PostgreSQL's
    autovacuum keeps its own statistics.
    """
    if rt.engine.dialect.name == "sqlite":
        with rt.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
