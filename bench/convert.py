"""convert_ratio_to_qemu_img: the migration's disk conversion against plain qemu-img.

One run, on one machine: a 2 GiB disk (half random data, half zeros and repeated bytes)
as a monolithicSparse VMDK on a lab vCenter datastore (TLS, as vCenter's is). Five
rounds, alternating, of
  ours:   the copy phase's conversion (tessera.migration: header checks, qemu-img info,
          then qemu-img streaming from the datastore's HTTPS interface into an empty
          qcow2, with progress and cancel polling), and
  plain:  `qemu-img convert -f vmdk -O qcow2` of the same disk file, read locally,
and the ratio of the medians' throughputs (virtual bytes per second). For context, in
the same rounds: plain qemu-img over the same HTTPS source (what our checks and polling
cost on top of the transport), and the bare HTTPS download of the file (one GET, nothing
converted: the most any HTTPS transport can reach here).

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
from tessera.migration.model import DatastoreFile
from tessera.migration.readiness import check_disk
from tessera.providers.base import Endpoint
from tessera.providers.vsphere import export
from tessera.providers.vsphere.driver import VSphereProvider

SIZE = 2 << 30
ROUNDS = 5
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
            local = (
                next((lab.workdir / "datastores").glob(f"govcsim-*-{datastore.lstrip('[')}-*"))
                / path
            )
            source = export.datastore_file(provider, source_vm.datacenter, ds_path)
            out = work / "out.qcow2"
            file_mib = local.stat().st_size / (1 << 20)
            ours: list[float] = []
            plain: list[float] = []
            plain_https: list[float] = []
            download: list[float] = []
            for _ in range(ROUNDS):
                empty_qcow2(out)
                started = time.monotonic()
                image, _ = check_disk(provider, source_vm, 0, 1 << 50)
                transfer.convert(
                    source, image.fmt, out, "qcow2", total_bytes=image.virtual_size,
                    on_progress=lambda _p: None, should_stop=lambda: False,
                )  # fmt: skip
                ours.append(time.monotonic() - started)
                out.unlink()
                started = time.monotonic()
                subprocess.run(
                    ["qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", str(local), str(out)],
                    check=True,
                )
                plain.append(time.monotonic() - started)
                out.unlink()
                with transfer.cookie_object(source) as secret:
                    started = time.monotonic()
                    subprocess.run(
                        ["qemu-img", "convert", *secret, "--image-opts",
                         transfer.source_opts(source, "vmdk"), "-O", "qcow2", str(out)],
                        check=True,
                    )  # fmt: skip
                    plain_https.append(time.monotonic() - started)
                out.unlink()
                download.append(download_s(source))
            provider.close()
        finally:
            lab.stop()
    mib = SIZE / (1 << 20)
    ours_rate = mib / statistics.median(ours)
    plain_rate = mib / statistics.median(plain)
    https_rate = mib / statistics.median(plain_https)
    download_rate = file_mib / statistics.median(download)
    ceiling = statistics.median(plain) / statistics.median(download)
    print(machine())
    print(f"ours {ours_rate:.0f} MiB/s, plain local {plain_rate:.0f} MiB/s, ", end="")
    print(f"plain over https {https_rate:.0f} MiB/s (virtual bytes / s); ", end="")
    print(f"bare download {download_rate:.0f} MiB/s of the {file_mib:.0f} MiB file")
    for what, values in (("ours", ours), ("plain", plain), ("https", plain_https)):
        print(f"  {what}: " + ", ".join(f"{v:.2f}" for v in values) + " s")
    print("  download: " + ", ".join(f"{v:.2f}" for v in download) + " s")
    command = ".venv/bin/python bench/convert.py"
    record("convert_ratio_to_qemu_img", ours_rate / plain_rate, "ratio", command)
    record("convert_ratio_to_qemu_img_same_https_source", ours_rate / https_rate, "ratio", command)
    record("convert_mib_s", ours_rate, "MiB/s", command)
    # The download alone against the local convert: no HTTPS transport's ratio exceeds it.
    record("convert_ratio_ceiling_https_download", ceiling, "ratio", command)


if __name__ == "__main__":
    main()
