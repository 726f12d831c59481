"""A vSphere pool's datastore mounts: datastores that this host (the conversion host,
where Tessera's worker runs qemu-img) also reaches as a local folder, as NFS datastores
are mounted for virt-v2v's `-i vmx`. A cold migration then reads the disk files there
instead of over the datastore's HTTPS interface (tessera.migration.transfer).

Checked when set: each name a datastore of the pool's inventory; each path absolute, an
existing directory on this host, not `/`, and stored resolved (realpath), so what is
shown is what is read. Whatever is set, the copy reads no file outside the migrated VM's
folder under the mount (tessera.migration.transfer.mounted_file).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

from sqlalchemy import select

from tessera.db.rows import DatastoreRow
from tessera.errors import InvalidInputError
from tessera.inventory.pools import get_provider
from tessera.runtime import Runtime

_PATH_MAX = 4096


def parse(raw: Mapping[str, object], known: Collection[str]) -> dict[str, str]:
    """Datastore name -> resolved folder; a clear 422 naming the first bad entry."""
    mounts: dict[str, str] = {}
    for name, value in raw.items():
        if name not in known:
            names = ", ".join(sorted(known)) or "none (sync the pool first)"
            raise InvalidInputError(f"{name!r} is not a datastore of this pool; known: {names}")
        mounts[name] = check_path(name, value)
    return mounts


def check_path(name: str, value: object) -> str:
    """The folder a datastore is mounted at, resolved; InvalidInputError otherwise."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"the mount of {name} must be a path")
    if len(value) > _PATH_MAX or "\0" in value:
        raise InvalidInputError(f"the mount of {name} is not a usable path")
    if not value.startswith("/"):
        raise InvalidInputError(f"the mount of {name} must be an absolute path, not {value!r}")
    resolved = os.path.realpath(value)
    if resolved == "/":
        raise InvalidInputError(f"the mount of {name} cannot be / (it is {value!r} resolved)")
    if not os.path.isdir(resolved):
        raise InvalidInputError(
            f"the mount of {name}, {value!r}, is not an existing directory on this host"
        )
    return resolved


def store(rt: Runtime, provider_id: str, raw: Mapping[str, object]) -> dict[str, str]:
    """Replace a vSphere pool's mounts (none clears them); a KVM pool takes none."""
    with rt.sessions.begin() as session:
        row = get_provider(session, provider_id)
        if row.kind != "vsphere":
            raise InvalidInputError(
                f"pool {row.name!r} ({row.kind}) has no datastores to mount; only a vSphere "
                "pool takes datastore mounts"
            )
        known = set(
            session.scalars(select(DatastoreRow.name).where(DatastoreRow.provider_id == row.id))
        )
        mounts = parse(raw, known)
        row.datastore_mounts = mounts or None
        return mounts
