"""Shared helpers for benchmarks: recording figures and describing the machine."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tessera.inventory import pools
from tessera.lab.vcsim import RunningVcsim

RESULTS = Path(__file__).with_name("results.json")


def record(key: str, value: float, unit: str, command: str) -> None:
    """Merge one figure into bench/results.json under `key`."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[key] = {"value": round(value, 3), "unit": unit, "command": command}
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"{key} = {value:.3f} {unit}")


def machine() -> str:
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    gib = mem_kib // 1024 // 1024
    return f"{os.cpu_count()} cores ({cpu}), {gib} GiB, Python {platform.python_version()}"


def lab_vcenter_spec(lab: RunningVcsim) -> pools.ProviderSpec:
    """The lab vCenter as a pool to register (its certificate is self-signed)."""
    return pools.ProviderSpec(
        name="vc",
        kind="vsphere",
        url=lab.url,
        username=lab.username,
        password=lab.password,
        verify_tls=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_api(env: dict[str, str], port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """Serve the API in a separate process, as in production; wait until it answers."""
    venv_bin = Path(__file__).resolve().parent.parent / ".venv" / "bin"
    proc = subprocess.Popen(
        [
            str(venv_bin / "uvicorn"),
            "tessera.api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={**os.environ, **env},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("API did not start")
