"""Full sync of a 10,000-VM lab vCenter into SQLite, against the raw page bytes.

In one run, alternating: (a) the RetrievePropertiesEx/ContinueRetrievePropertiesEx pages
of the VMs arriving as bytes, nothing parsed; (b) a complete sync (login, inventory read,
reconcile into a fresh SQLite DB, commit). The figure is median(b) / median(a). Peak RSS is
measured in a child process that does one sync and nothing else. The naive baseline is
pyvmomi reading each VM's properties one object at a time (a subset, extrapolated).

    .venv/bin/python -m bench.sync_10k [--vms 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine, record
from bench.vsphere_parse import large_lab, naive, raw_pages
from tessera.config import Settings
from tessera.inventory import pools
from tessera.lab.vcsim import start_vcsim
from tessera.providers.base import Endpoint
from tessera.providers.vsphere import VSphereProvider
from tessera.runtime import Runtime

COMMAND = ".venv/bin/python -m bench.sync_10k"


def one_sync(url: str, username: str, password: str, data_dir: Path) -> tuple[float, int]:
    """A fresh DB, the pool registered, one full sync; returns (seconds, VMs written)."""
    rt = Runtime.open(Settings(data_dir=data_dir))
    try:
        spec = pools.ProviderSpec(
            name="vc",
            kind="vsphere",
            url=url,
            username=username,
            password=password,
            verify_tls=False,
        )
        pid = pools.add_provider(rt, spec).id
        started = time.perf_counter()
        report = pools.sync_provider(rt, pid)
        return time.perf_counter() - started, report.counts.added["vm"]
    finally:
        rt.close()


def child(url: str, username: str) -> None:
    """Entry of the peak-RSS child: one sync, then report ru_maxrss."""
    with tempfile.TemporaryDirectory() as tmp:
        seconds, vms = one_sync(url, username, os.environ["BENCH_VC_PASSWORD"], Path(tmp))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "vms": vms, "peak_rss_mib": peak_mib}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--naive-subset", type=int, default=200)
    parser.add_argument("--child", nargs=2, metavar=("URL", "USERNAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
        lab = start_vcsim(large_lab(args.vms), Path(tmp) / "lab")
        try:
            endpoint = Endpoint(lab.url, lab.username, lab.password, False, 120.0)
            probe = VSphereProvider(endpoint)
            probe.connect()
            raw: list[float] = []
            syncs: list[float] = []
            for index in range(args.rounds):
                raw.append(raw_pages(probe)[0])
                seconds, vms = one_sync(
                    lab.url, lab.username, lab.password, Path(tmp) / f"db{index}"
                )
                assert vms == args.vms, f"synced {vms} VMs, expected {args.vms}"
                syncs.append(seconds)
            naive_s, total = naive(probe, args.naive_subset)
            naive_total = naive_s / min(args.naive_subset, total) * total
            probe.close()
            measured = subprocess.run(
                [sys.executable, "-m", "bench.sync_10k", "--child", lab.url, lab.username],
                env={**os.environ, "BENCH_VC_PASSWORD": lab.password},
                check=True,
                capture_output=True,
                text=True,
            )
            peak = json.loads(measured.stdout.strip().splitlines()[-1])
        finally:
            lab.stop()
    raw_s, sync_s = statistics.median(raw), statistics.median(syncs)
    print(f"raw pages: {[round(r, 3) for r in raw]} -> median {raw_s:.3f} s")
    print(f"full sync: {[round(s, 3) for s in syncs]} -> median {sync_s:.3f} s")
    print(f"naive pyvmomi: {naive_s:.2f} s for {args.naive_subset} VMs -> ~{naive_total:.0f} s")
    print(f"child sync {peak['seconds']:.2f} s, peak RSS {peak['peak_rss_mib']:.0f} MiB")
    print(machine())
    record("sync_10k_vms_ratio_to_raw", sync_s / raw_s, "ratio", COMMAND)
    record("sync_10k_vms_peak_rss_mib", peak["peak_rss_mib"], "MiB", COMMAND)
    record("sync_10k_vms_seconds", sync_s, "s", COMMAND)
    record("sync_10k_vms_raw_seconds", raw_s, "s", COMMAND)
    record("sync_10k_vms_naive_pyvmomi_seconds", naive_total, "s (extrapolated)", COMMAND)


if __name__ == "__main__":
    main()
