"""convert_ratio_to_qemu_img: the migration's disk conversion against plain qemu-img.

One run, on one machine: a 2 GiB disk (half random data, half zeros and repeated bytes)
as a monolithicSparse VMDK on a lab vCenter datastore. The lab's datastores are local
folders, so the datastore is also "mounted" on this host, as an NFS datastore is on a
conversion host. Nine rounds, alternating, of
  mounted: the copy phase's conversion through the datastore's mount (tessera.migration:
           path confinement, header checks, qemu-img info, then qemu-img reading the file
           into an empty qcow2, with progress and cancel polling),
  plain:   `qemu-img convert -f vmdk -O qcow2` of the same disk file, read locally,
  https:   the copy phase's conversion over the datastore's HTTPS interface (TLS, as
           vCenter's is): the road when no mount is configured,
and the ratios of the medians' throughputs (virtual bytes per second):
convert_ratio_to_qemu_img (mounted / plain) and convert_ratio_to_qemu_img_https. For
context, in the same rounds: plain qemu-img over the same HTTPS source (what our checks
and polling cost on top of that transport), and the bare HTTPS download of the file (one
GET, nothing converted: the most any HTTPS transport can reach here). The digest
(`qemu-img compare`) the copy phase runs after the conversion is not timed, as before.
Each round swaps the order of mounted and plain, and every measurement starts after a
pause of SETTLE_S, so that neither the local pair nor its order inherits the lab
vCenter's work from the HTTPS runs just before (other sessions may share the cores).

    .venv/bin/python bench/convert.py
"""

from __future__ import annotations

import http.client
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, record
from tessera.lab.guest import put_datastore_file
from tessera.lab.vcsim import VcsimSpec, start_vcsim
from tessera.migration import transfer
from tessera.migration.model import DatastoreFile, SourceVM
from tessera.migration.readiness import check_source
from tessera.providers.base import Endpoint
from tessera.providers.vsphere import export
from tessera.providers.vsphere.driver import VSphereProvider

SIZE = 2 << 30
ROUNDS = 9
SETTLE_S = 1.0
VM = "DC0_VM00000"


def make_disk(work: Path) -> Path:
    raw, vmdk = work / "disk.raw", work / f"{VM}.vmdk"
    chunk = 1 << 20
    with raw.open("wb") as fh:
        for i in range(SIZE // chunk):
            if i % 2 == 0:
                fh.write(os.urandom(chunk))
            elif i % 4 == 1:
                fh.write(bytes(chunk))
            else:
                fh.write(bytes([i % 251]) * chunk)
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicSparse",
         str(raw), str(vmdk)],
        check=True,
    )  # fmt: skip
    raw.unlink()
    return vmdk


def empty_qcow2(path: Path) -> None:
    path.unlink(missing_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(SIZE)], check=True)


def download_s(source: DatastoreFile) -> float:
    """Seconds to GET the whole file over one TLS connection, reading into a buffer."""
    parts = urlsplit(source.url)
    context = ssl._create_unverified_context()
    conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context)
    started = time.monotonic()
    conn.request("GET", f"{parts.path}?{parts.query}", headers={"Cookie": source.cookie})
    answer = conn.getresponse()
    buf = memoryview(bytearray(4 << 20))
    while answer.readinto(buf):
        pass
    conn.close()
    return time.monotonic() - started


def ours_s(
    provider: VSphereProvider, source_vm: SourceVM, mounts: dict[str, str], out: Path
) -> float:
    """Seconds for the copy phase's checks and conversion into an empty qcow2."""
    empty_qcow2(out)
    time.sleep(SETTLE_S)
    started = time.monotonic()
    checked = check_source(provider, source_vm, 0, 1 << 50, mounts)
    transfer.convert(
        checked.source, checked.image.fmt, out, "qcow2", total_bytes=checked.image.virtual_size,
        on_progress=lambda _p: None, should_stop=lambda: False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    out.unlink()
    return elapsed


def timed(args: list[str], out: Path) -> float:
    time.sleep(SETTLE_S)
    started = time.monotonic()
    subprocess.run(args, check=True)
    elapsed = time.monotonic() - started
    out.unlink()
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tessera-bench-convert-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        lab = start_vcsim(VcsimSpec(vms=1), work / "vc")
        try:
            vmdk = make_disk(work)
            endpoint = Endpoint(lab.url, lab.username, lab.password, verify_tls=False)
            provider = VSphereProvider(endpoint)
            provider.connect()
            view_vm = next(v for v in provider.list_inventory().vms if v.name == VM)
            source_vm = export.source_vm(provider, view_vm.native_id)
            ds_path = source_vm.disks[0].ds_path
            put_datastore_file(lab, ds_path, vmdk)
            datastore, _, path = ds_path.partition("] ")
            name = datastore.lstrip("[")
            mount = next((lab.workdir / "datastores").glob(f"govcsim-*-{name}-*"))
            mounts = {name: str(mount)}
            local = mount / path
            source = export.datastore_file(provider, source_vm.datacenter, ds_path)
            out = work / "out.qcow2"
            file_mib = local.stat().st_size / (1 << 20)
            plain_args = ["qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", str(local), str(out)]
            times: dict[str, list[float]] = {
                k: [] for k in ("mounted", "plain", "https", "plain_https", "download")
            }
            loads = [os.getloadavg()[0]]
            for round_no in range(ROUNDS):
                if round_no % 2:
                    times["plain"].append(timed(plain_args, out))
                times["mounted"].append(ours_s(provider, source_vm, mounts, out))
                if not round_no % 2:
                    times["plain"].append(timed(plain_args, out))
                times["https"].append(ours_s(provider, source_vm, {}, out))
                with transfer.cookie_object(source) as secret:
                    times["plain_https"].append(
                        timed(
                            ["qemu-img", "convert", *secret, "--image-opts",
                             transfer.source_opts(source, "vmdk"), "-O", "qcow2", str(out)],
                            out,
                        )
                    )  # fmt: skip
                time.sleep(SETTLE_S)
                times["download"].append(download_s(source))
                loads.append(os.getloadavg()[0])
            provider.close()
        finally:
            lab.stop()
    mib = SIZE / (1 << 20)
    median = {k: statistics.median(v) for k, v in times.items()}
    mounted_rate, plain_rate = mib / median["mounted"], mib / median["plain"]
    https_rate, plain_https_rate = mib / median["https"], mib / median["plain_https"]
    download_rate = file_mib / median["download"]
    print(machine())
    print(f"load average (1 min) during the run: {min(loads):.1f}-{max(loads):.1f}")
    print(
        f"ours via the mount {mounted_rate:.0f} MiB/s, plain local {plain_rate:.0f} MiB/s, ", end=""
    )
    print(
        f"ours over https {https_rate:.0f} MiB/s, plain over https {plain_https_rate:.0f} ", end=""
    )
    print(f"MiB/s (virtual bytes / s); bare download {download_rate:.0f} MiB/s of the ", end="")
    print(f"{file_mib:.0f} MiB file")
    for what, values in times.items():
        print(f"  {what}: " + ", ".join(f"{v:.2f}" for v in values) + " s")
    command = ".venv/bin/python bench/convert.py"
    record("convert_ratio_to_qemu_img", mounted_rate / plain_rate, "ratio", command)
    record("convert_ratio_to_qemu_img_https", https_rate / plain_rate, "ratio", command)
    record(
        "convert_ratio_to_qemu_img_same_https_source", https_rate / plain_https_rate, "ratio",
        command,
    )  # fmt: skip
    record("convert_mib_s", mounted_rate, "MiB/s", command)
    record("convert_https_mib_s", https_rate, "MiB/s", command)
    # The download alone against the local convert: no HTTPS transport's ratio exceeds it.
    record(
        "convert_ratio_ceiling_https_download", median["plain"] / median["download"], "ratio",
        command,
    )  # fmt: skip


if __name__ == "__main__":
    main()
