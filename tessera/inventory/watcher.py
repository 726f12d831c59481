"""Keeps each pool's inventory current from its change feed, in background threads.

One thread per provider: open a watch, run a full sync once it is established (so nothing
between the last sync and the watch is missed), then apply each batch as it comes. A lost
connection marks the pool unreachable and is retried with backoff; a periodic full
resync catches anything a feed may have dropped.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import select

from tessera.db.rows import ProviderRow
from tessera.errors import NotFoundError, ProviderFailedError
from tessera.inventory.pools import endpoint_for, get_provider, record_failure, sync_provider
from tessera.inventory.reconcile import apply_changes
from tessera.providers import open_provider
from tessera.providers.faults import ProviderError
from tessera.runtime import Runtime

log = logging.getLogger(__name__)

_BACKOFF_START_S = 1.0
_BACKOFF_MAX_S = 30.0


class ProviderWatcher:
    """The watch loop of one provider."""

    def __init__(self, rt: Runtime, provider_id: str) -> None:
        self.rt = rt
        self.provider_id = provider_id
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"watch-{provider_id[:8]}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout_s)

    def _run(self) -> None:
        backoff = _BACKOFF_START_S
        while not self.stop_event.is_set():
            try:
                self._watch_once()
                backoff = _BACKOFF_START_S
            except NotFoundError:
                return  # the provider was deleted
            except (ProviderError, ProviderFailedError) as exc:
                if isinstance(exc, ProviderError):
                    record_failure(self.rt, self.provider_id, exc)
                log.warning("watch of provider %s lost: %s", self.provider_id, exc)
            except Exception:
                log.exception("watch of provider %s failed", self.provider_id)
            self.stop_event.wait(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _watch_once(self) -> None:
        with self.rt.sessions() as session:
            row = get_provider(session, self.provider_id)
            kind, endpoint = row.kind, endpoint_for(self.rt, row)
        with open_provider(kind, endpoint) as provider:
            established = False
            next_resync = 0.0
            for batch in provider.watch(self.stop_event):
                if not established or time.monotonic() >= next_resync:
                    established = True
                    sync_provider(self.rt, self.provider_id)
                    next_resync = time.monotonic() + self.rt.settings.resync_interval_s
                if batch:
                    with self.rt.provider_lock(self.provider_id), self.rt.sessions.begin() as s:
                        get_provider(s, self.provider_id)
                        apply_changes(s, self.provider_id, batch)
                if self.stop_event.is_set():
                    return


class WatchManager:
    """Starts and stops one ProviderWatcher per registered provider."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.watchers: dict[str, ProviderWatcher] = {}
        self._guard = threading.Lock()

    def start_all(self) -> None:
        with self.rt.sessions() as session:
            ids = list(session.scalars(select(ProviderRow.id)))
        for provider_id in ids:
            self.start(provider_id)

    def start(self, provider_id: str) -> None:
        with self._guard:
            if provider_id in self.watchers:
                return
            watcher = ProviderWatcher(self.rt, provider_id)
            self.watchers[provider_id] = watcher
        watcher.start()

    def stop(self, provider_id: str) -> None:
        with self._guard:
            watcher = self.watchers.pop(provider_id, None)
        if watcher is not None:
            watcher.stop()

    def stop_all(self) -> None:
        with self._guard:
            watchers = list(self.watchers.values())
            self.watchers.clear()
        for watcher in watchers:
            watcher.stop_event.set()
        for watcher in watchers:
            watcher.stop()
