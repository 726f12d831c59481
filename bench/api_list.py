"""GET /v1/vms over 50,000 VMs, filtered and paged: p99 latency and requests/s.

The inventory comes from a real sync of a 50,000-VM lab vCenter into SQLite. The API runs
as it would in production (uvicorn, 2 stateless processes: no watchers, tasks left to
workers) and the load comes from a second process, wrk, over a mix of filters, sorts and
deep cursor pages.

    .venv/bin/python -m bench.api_list [--vms 50000] [--seconds 20] [--connections 16]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, lab_vcenter_spec, machine, record, start_api
from tessera.config import Settings
from tessera.inventory import pools
from tessera.lab.vcsim import VcsimSpec, start_vcsim
from tessera.runtime import Runtime, ensure_admin_token

COMMAND = ".venv/bin/python -m bench.api_list"

LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Authorization"] = "Bearer %s"})
end
"""


def seed(data_dir: Path, vms: int) -> tuple[str, float]:
    """Sync a lab vCenter of `vms` VMs into a fresh SQLite DB; returns token, sync seconds."""
    lab = start_vcsim(
        VcsimSpec(vms=vms, clusters=4, hosts_per_cluster=10, datastores=8),
        data_dir / "lab",
    )
    try:
        settings = Settings(data_dir=data_dir)
        rt = Runtime.open(settings)
        pid = pools.add_provider(rt, lab_vcenter_spec(lab)).id
        report = pools.sync_provider(rt, pid)
        rt.close()
        return ensure_admin_token(settings), report.seconds
    finally:
        lab.stop()


def query_mix(base: str, token: str) -> list[str]:
    """The paths wrk cycles through: what an operator's list views ask for."""
    headers = {"Authorization": f"Bearer {token}"}

    def get(path: str, **params: Any) -> Any:
        return httpx.get(base + path, params=params, headers=headers, timeout=30).json()

    def cursor_after(pages: int, **params: Any) -> str:
        cursor = None
        for _ in range(pages):
            page = get("/v1/vms", limit=50, **params, **({"cursor": cursor} if cursor else {}))
            cursor = page["next_cursor"]
        assert cursor
        return str(cursor)

    provider_id = get("/v1/providers")[0]["id"]
    host_id = get("/v1/hosts", limit=5)["items"][3]["id"]
    return [
        "/v1/vms?limit=50",
        "/v1/vms?power_state=running&limit=50",
        "/v1/vms?power_state=stopped&sort=-memory_mib&limit=50",
        f"/v1/vms?provider_id={provider_id}&host_id={host_id}&limit=50",
        "/v1/vms?name=VM1&limit=50",
        f"/v1/vms?limit=50&cursor={cursor_after(100)}",
        f"/v1/vms?power_state=running&limit=50&cursor={cursor_after(20, power_state='running')}",
        "/v1/vms?sort=-cpu_count&limit=50&fields=name,power_state,nics",
    ]


def run_wrk(url: str, lua: Path, seconds: int, connections: int) -> tuple[float, float, str]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return p99_ms, rps, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        token, sync_s = seed(data_dir, args.vms)
        print(f"seeded {args.vms} VMs by a real sync in {sync_s:.1f} s")
        port = free_port()
        # Two stateless API processes, as in the multi-machine setup: no watchers, no task
        # execution (workers would run tasks; two API processes must not share one
        # executor id).
        api_env = {
            "TESSERA_DATA_DIR": str(data_dir),
            "TESSERA_WATCH_ENABLED": "false",
            "TESSERA_RUN_TASKS": "false",
        }
        api = start_api(api_env, port, workers=2)
        try:
            base = f"http://127.0.0.1:{port}"
            paths = query_mix(base, token)
            lua = data_dir / "mix.lua"
            lua.write_text(LUA % (", ".join(f'"{p}"' for p in paths), token))
            run_wrk(base, lua, 3, args.connections)  # warm-up
            p99_ms, rps, out = run_wrk(base, lua, args.seconds, args.connections)
            print(out)
            rare = []
            with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
                for _ in range(21):
                    started = time.perf_counter()
                    client.get(f"{base}/v1/vms?name=no-such-vm")
                    rare.append((time.perf_counter() - started) * 1000)
            print(f"a name matching nothing (full scan): median {sorted(rare)[10]:.1f} ms")
        finally:
            api.terminate()
            api.wait(10)
    print(machine())
    record("api_list_50k_p99_ms", p99_ms, "ms", COMMAND)
    record("api_list_50k_rps", rps, "req/s", COMMAND)


if __name__ == "__main__":
    main()
