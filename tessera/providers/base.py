"""The typed contract between Tessera and a hypervisor pool.

Like Nova's ComputeDriver and Libcloud's NodeDriver: one class per backend, capability
flags declared up front so callers refuse what a backend cannot do before trying it, and
native ids that only the driver interprets.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from tessera.domain.inventory import InventoryChange, InventorySnapshot


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do; the scheduler filters on these and the API checks them."""

    supports_snapshots: bool = False
    supports_live_migration: bool = False
    supports_cold_migration: bool = False
    supports_cbt: bool = False
    supports_dvs: bool = False
    supports_templates: bool = False
    supports_clone: bool = False
    supports_console: bool = False
    supports_hot_add_nic: bool = False
    supports_hot_add_disk: bool = False
    supports_push_events: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {name: bool(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to reach a pool. The password never leaves this object in clear text
    except to the driver's own login call."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_tls: bool = True
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class ProviderAbout:
    """What a connection test reports about the endpoint."""

    product: str
    version: str
    instance_uuid: str = ""


class Provider(ABC):
    """One connection to one pool (a vCenter, a libvirt host)."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @abstractmethod
    def connect(self) -> ProviderAbout:
        """Open the session (log in); doubles as the connection test."""

    @abstractmethod
    def close(self) -> None:
        """Release the session; safe to call twice."""

    @abstractmethod
    def list_inventory(self) -> InventorySnapshot:
        """Read everything the pool holds, in bulk."""

    def stream_inventory(self) -> Iterator[InventorySnapshot]:
        """The same inventory as list_inventory, in chunks as it arrives, so a caller can
        store one chunk while the next is read. An object only references objects of its
        own or an earlier chunk. By default, one chunk."""
        yield self.list_inventory()

    @abstractmethod
    def watch(self, stop: threading.Event) -> Iterator[list[InventoryChange]]:
        """Yield batches of changes until `stop` is set.

        The first batch is yielded once the watch is established and may be empty; every
        change after that point is reported. While nothing changes, an empty batch comes
        at least every few seconds, so the caller can act on time (stop, periodic resync).
        Raises ProviderError when the connection is lost.
        """

    def __enter__(self) -> Provider:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
