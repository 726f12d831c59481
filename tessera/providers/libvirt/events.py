"""The one libvirt event loop of the process.

libvirt only delivers events and keepalives to connections opened after
virEventRegisterDefaultImpl, and that may be called once per process; so every connect
calls `ensure_event_loop()` first, which registers it and starts a daemon thread that
runs it, exactly once.
"""

from __future__ import annotations

import threading

import libvirt

_lock = threading.Lock()
_started = threading.Event()


def _ignore_error(_ctx: object, _err: object) -> None:
    """Drop libvirt's own error report; errors reach us as exceptions anyway."""


def _run() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it, once per process;
    also silence libvirt's default printing of every error to stderr."""
    with _lock:
        if _started.is_set():
            return
        libvirt.registerErrorHandler(_ignore_error, None)
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run, name="libvirt-events", daemon=True).start()
        _started.set()
