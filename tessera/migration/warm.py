"""Warm migration: the copy phase runs while the source VM runs, in rounds.

copy        round 0 turns CBT on (remembering how it was), makes an empty raw staging
            volume per disk and copies every allocated area (QueryChangedDiskAreas "*");
            each later round waits ROUND_INTERVAL_S, then copies only the areas changed
            since the previous round's change id. Every round takes a snapshot (its disks'
            change ids bound the round), reads the changed ranges of the disk's flat
            extent over the datastore's HTTP interface (Range requests), writes them at
            the same offsets of the staging volume, and removes the snapshot. Each round
            is its own checkpointed step (the workflow calls the phase until it says
            converged), so a crash resumes after the last completed round. The rounds
            end when one copies at most CUTOVER_BYTES (or after MAX_ROUNDS).
power_off   as in cold mode
final_sync  the last delta with the source off, then per disk: the staging volume
            becomes the target (converted to qcow2 locally when the plan wants qcow2,
            which reads only its allocated data) and is compared with the source; then
            snapshots of ours are gone and CBT is as it was.

Why raw staging: a changed range is one pwrite at its own offset, with no qemu process
per round; the one conversion costs a local read of the allocated data at cutover.
Why flat extents only: a changed area is a guest offset, which is a file offset in a flat
extent (VMFS disks) and nowhere in a sparse VMDK; readiness refuses warm for those.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.db.rows import utcnow
from tessera.migration import disks, transfer
from tessera.migration.model import DatastoreFile, SourceVM, volume_name
from tessera.migration.readiness import check_disk
from tessera.providers.faults import ProviderError
from tessera.providers.libvirt import imports
from tessera.providers.vsphere import cbt, export

if TYPE_CHECKING:
    from tessera.migration.workflow import _Ctx

ROUND_INTERVAL_S = 5.0
CUTOVER_BYTES = 64 << 20
MAX_ROUNDS = 10
READ_CHUNK = 8 << 20
_PROGRESS_EVERY_S = 0.5
_MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Round:
    """What one round of the copy phase did; `converged`: time to power off."""

    text: str
    converged: bool


def snapshot_name(plan_id: str) -> str:
    return f"tessera-warm-{plan_id[:8]}"


def staging_name(plan_id: str, position: int, index: int, target_format: str) -> str:
    """The raw volume rounds write into: the target itself when the plan wants raw."""
    raw = volume_name(plan_id, position, index, "raw")
    return raw if target_format == "raw" else raw.replace(".img", ".warm.img")


def _state(ctx: _Ctx, position: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with ctx.rt.sessions() as session:
        entry = ctx.entry(session, position)
        return [dict(d) for d in entry.disks], dict(entry.phases)


def _save(ctx: _Ctx, position: int, disks_now: list[dict[str, Any]], **phases: Any) -> None:
    with ctx.rt.sessions.begin() as session:
        entry = ctx.entry(session, position)
        entry.disks = [dict(d) for d in disks_now]
        if phases:
            entry.phases = {**entry.phases, **phases}
        entry.updated_at = utcnow()


def _flat_source(ctx: _Ctx, vm: SourceVM, index: int, free_bytes: int) -> DatastoreFile:
    """The disk's flat extent on the datastore, after the safety checks."""
    image, _ = check_disk(ctx.src, vm, index, free_bytes)
    if not image.data_file:
        raise disks.DiskRefused(
            f"disk {index} is {image.subformat}; warm mode needs a flat extent (VMFS disk)"
        )
    source = export.datastore_file(ctx.src, vm.datacenter, vm.disks[index].ds_path)
    return transfer.with_name(source, image.data_file)


def _start(ctx: _Ctx, position: int, vm: SourceVM) -> list[dict[str, Any]]:
    """Round 0's preparation: CBT on (how it was is kept), empty staging volumes."""
    _, phases = _state(ctx, position)
    if "warm_cbt_was" not in phases:
        _save(ctx, position, [], warm_cbt_was=vm.cbt_enabled)
    cbt.set_cbt(ctx.src, ctx.native_id, True)
    started = []
    for index, disk in enumerate(vm.disks):
        pool_id = ctx.targets.pools[disk.datastore]
        pool = imports.target_pool(ctx.dst, pool_id)
        _flat_source(ctx, vm, index, pool.free_bytes)
        staging = staging_name(ctx.plan_id, position, index, ctx.target_format)
        path = Path(imports.fresh_volume(ctx.dst, pool_id, staging, disk.capacity_bytes, "raw"))
        if not path.parent.is_dir():
            raise transfer.TransferError(
                f"the worker cannot see {pool.name}'s folder {pool.path}; run it where the "
                "pool's storage is mounted"
            )
        started.append(
            {
                "index": index,
                "ds_path": disk.ds_path,
                "volume": volume_name(ctx.plan_id, position, index, ctx.target_format),
                "staging": str(path),
                "key": disk.key,
                "format": "raw",
                "state": "copying",
                "total_bytes": 0,
                "transfer_bytes": 0,
                "done_bytes": 0,
                "mib_s": 0.0,
                "eta_s": None,
                "change_id": "*",
                "rounds": [],
            }
        )
    return started


def copy_areas(
    read: Callable[[int, int], bytes],
    target: Path,
    areas: list[tuple[int, int]],
    on_bytes: Callable[[int], None],
) -> int:
    """Copy each (offset, length) area from `read` to the same offset of `target`."""
    done = 0
    fd = os.open(target, os.O_WRONLY)
    try:
        for start, length in areas:
            for offset in range(start, start + length, READ_CHUNK):
                size = min(READ_CHUNK, start + length - offset)
                data = read(offset, size)
                if len(data) != size:
                    raise transfer.TransferError(
                        f"the datastore returned {len(data)} of {size} bytes at {offset}"
                    )
                os.pwrite(fd, data, offset)
                done += size
                on_bytes(done)
        os.fsync(fd)
    finally:
        os.close(fd)
    return done


def _round(ctx: _Ctx, position: int, vm: SourceVM, state: list[dict[str, Any]], no: int) -> int:
    """One round over every disk through one snapshot; the bytes copied."""
    for leftover in cbt.snapshots_named(ctx.src, ctx.native_id, snapshot_name(ctx.plan_id)):
        cbt.remove_snapshot(ctx.src, leftover)
    snap = cbt.create_snapshot(ctx.src, ctx.native_id, snapshot_name(ctx.plan_id))
    total = 0
    try:
        for entry in state:
            if entry.get("state") == "done":
                continue
            disk = vm.disks[entry["index"]]
            areas = cbt.changed_areas(
                ctx.src, ctx.native_id, snap.native_id, disk.key, entry["change_id"],
                disk.capacity_bytes,
            )  # fmt: skip
            wanted = sum(length for _, length in areas)
            source = _flat_source(ctx, vm, entry["index"], 1 << 62)
            reader = transfer.RangeReader(source)
            started = last = time.monotonic()
            entry.update(total_bytes=wanted, transfer_bytes=wanted, done_bytes=0, eta_s=None)

            def progress(
                done: int,
                entry: dict[str, Any] = entry,
                started: float = started,
                wanted: int = wanted,
            ) -> None:
                nonlocal last
                now = time.monotonic()
                if now - last < _PROGRESS_EVERY_S:
                    return
                last = now
                if ctx.cancel_asked():
                    raise transfer.Cancelled
                rate = done / (now - started) / _MIB
                eta = (wanted - done) / (rate * _MIB) if rate > 0 else None
                entry.update(done_bytes=done, mib_s=round(rate, 1), eta_s=eta and round(eta, 1))
                _save(ctx, position, state)

            try:
                copied = copy_areas(reader, Path(entry["staging"]), areas, progress)
            finally:
                reader.close()
            seconds = max(time.monotonic() - started, 1e-6)
            entry.update(
                done_bytes=copied,
                mib_s=round(copied / seconds / _MIB, 1),
                eta_s=0.0,
                change_id=snap.change_ids[disk.key],
                rounds=[
                    *entry["rounds"],
                    {"round": no, "bytes": copied, "areas": len(areas),
                     "seconds": round(seconds, 2)},
                ],
            )  # fmt: skip
            total += copied
    finally:
        cbt.remove_snapshot(ctx.src, snap.native_id)
    return total


def copy_round(ctx: _Ctx, position: int) -> Round:
    """The warm copy phase's next round (see the module docstring)."""
    vm = export.source_vm(ctx.src, ctx.native_id)
    state, phases = _state(ctx, position)
    no = int(phases.get("warm_round", -1)) + 1
    if no == 0:
        state = _start(ctx, position, vm)
    else:
        deadline = time.monotonic() + ROUND_INTERVAL_S
        while time.monotonic() < deadline:
            if ctx.cancel_asked():
                raise transfer.Cancelled
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    copied = _round(ctx, position, vm, state, no)
    _save(ctx, position, state, warm_round=no)
    kind = "full copy" if no == 0 else "delta"
    converged = (no >= 1 and copied <= CUTOVER_BYTES) or no + 1 >= MAX_ROUNDS
    return Round(f"round {no} ({kind}): {copied} bytes", converged)


def final_sync(ctx: _Ctx, position: int) -> str:
    """The last delta with the source off; the targets made and compared; the source's
    snapshots and CBT as they were."""
    vm = export.source_vm(ctx.src, ctx.native_id)
    state, phases = _state(ctx, position)
    no = int(phases.get("warm_round", 0)) + 1
    notes = []
    if any(d.get("state") != "done" for d in state):
        copied = _round(ctx, position, vm, state, no)
        _save(ctx, position, state, warm_round=no)
        notes.append(f"final delta {copied} bytes")
    for entry in state:
        if entry.get("state") == "done":
            continue
        index = entry["index"]
        disk = vm.disks[index]
        staging = Path(entry["staging"])
        target = staging
        if ctx.target_format != "raw":
            pool_id = ctx.targets.pools[disk.datastore]
            target = Path(
                imports.fresh_volume(
                    ctx.dst, pool_id, entry["volume"], disk.capacity_bytes, ctx.target_format
                )
            )
            _convert_local(staging, target, ctx.target_format)
            imports.drop_volume(ctx.dst, pool_id, staging.name)
        source = _flat_source(ctx, vm, index, 1 << 62)
        if not transfer.compare(source, "raw", target, ctx.target_format):
            raise transfer.TransferError(f"disk {index}'s copy differs from the source")
        entry.update(state="done", format=ctx.target_format, identical=True)
        _save(ctx, position, state)
    restore_source(ctx, position)
    notes.append(f"{len(state)} disk(s) identical")
    return ", ".join(notes)


def _convert_local(staging: Path, target: Path, fmt: str) -> None:
    proc = subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", fmt, "-n", "--target-is-zero",
         "-m", "8", "-W", str(staging), str(target)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise transfer.TransferError(f"qemu-img convert failed: {proc.stderr.strip()[-1500:]}")


def restore_source(ctx: _Ctx, position: int) -> None:
    """Our snapshots removed, CBT as it was before the migration (safe to repeat). The
    change ids die with CBT, so a later copy starts again at round 0."""
    for leftover in cbt.snapshots_named(ctx.src, ctx.native_id, snapshot_name(ctx.plan_id)):
        cbt.remove_snapshot(ctx.src, leftover)
    state, phases = _state(ctx, position)
    if "warm_cbt_was" in phases:
        cbt.set_cbt(ctx.src, ctx.native_id, bool(phases["warm_cbt_was"]))
    if "warm_round" in phases and any(d.get("state") != "done" for d in state):
        with ctx.rt.sessions.begin() as session:
            entry = ctx.entry(session, position)
            entry.phases = {k: v for k, v in entry.phases.items() if k != "warm_round"}


def staged_only(mode: str, phases: dict[str, Any]) -> bool:
    """Whether a warm migration made nothing on the target but its staging volumes:
    final_sync makes the rest, so before it nothing else needs the target host."""
    return mode == "warm" and phases.get("final_sync") in (None, "pending")


def drop_staging(ctx: _Ctx, position: int, vm: SourceVM) -> None:
    """A rollback's warm part on the target: the staging volumes removed. With the
    target host down, the worker removes the files it wrote itself by their path."""
    state, _ = _state(ctx, position)
    paths = {d["index"]: Path(d["staging"]) for d in state if d.get("staging")}
    for index, disk in enumerate(vm.disks):
        pool = ctx.targets.pools.get(disk.datastore)
        if pool is None:
            continue
        name = staging_name(ctx.plan_id, position, index, ctx.target_format)
        try:
            imports.drop_volume(ctx.dst, pool, name)
        except ProviderError:
            if index not in paths:
                raise
            paths[index].unlink(missing_ok=True)
