"""The portal's first load of the VM list over 50,000 VMs, in headless Chromium.

From navigation start to the first rows on screen, as a person opening the VM list with
an empty browser cache sees it: the page, the app's scripts, who the caller is, the
first page of VMs, drawn. The portal marks that moment itself
(`performance.mark("tessera:vm-list:first-rows")`, after the frame that shows the rows);
the median of several cold loads (a fresh browser context each) is recorded.

The inventory comes from a real sync of a 50,000-VM lab vCenter (as bench/api_list.py);
the API serves the built portal as in production (uvicorn, watchers and tasks off).

    .venv/bin/python -m bench.portal_vm_list [--vms 50000] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from bench.api_list import seed
from bench.common import free_port, machine, record, start_api
from tessera.api.portal import PORTAL_DIST
from tessera.config import Settings

COMMAND = ".venv/bin/python -m bench.portal_vm_list"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MARK = "tessera:vm-list:first-rows"
TARGET_MS = 1500


def session_token(base: str, data_dir: Path) -> str:
    """Log in as the admin, as the login page does."""
    password = Settings(data_dir=data_dir).admin_password_file.read_text().strip()
    answer = httpx.post(
        f"{base}/v1/auth/login", json={"user": "admin", "password": password}, timeout=30
    )
    answer.raise_for_status()
    return str(answer.json()["token"])


def first_rows_ms(base: str, token: str, runs: int) -> list[float]:
    """Cold loads of /vms, each in a new context (empty cache, its own session)."""
    timings = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            for run in range(runs + 1):
                context = browser.new_context(
                    base_url=base, viewport={"width": 1440, "height": 900}
                )
                # The login page keeps the session token in sessionStorage: plant it.
                context.add_init_script(f"sessionStorage.setItem('tessera.session', '{token}')")
                page = context.new_page()
                started = time.perf_counter()
                page.goto("/vms")
                page.locator("[data-testid=vm-table] tbody tr.ant-table-row").first.wait_for()
                waited_ms = (time.perf_counter() - started) * 1000
                page.wait_for_function(f"performance.getEntriesByName('{MARK}').length > 0")
                marked = page.evaluate(f"performance.getEntriesByName('{MARK}')[0].startTime")
                rows = page.locator("[data-testid=vm-table] tbody tr.ant-table-row").count()
                context.close()
                if run == 0:
                    continue  # the first start of Chromium itself warms the OS caches
                timings.append(float(marked))
                print(
                    f"run {run}: first {rows} rows at {marked:.0f} ms ({waited_ms:.0f} ms waited)"
                )
        finally:
            browser.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not (PORTAL_DIST / "index.html").is_file():
        raise SystemExit("the portal is not built: bash scripts/bootstrap.sh")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        _, sync_s = seed(data_dir, args.vms)
        print(f"seeded {args.vms} VMs by a real sync in {sync_s:.1f} s")
        port = free_port()
        api_env = {
            "TESSERA_DATA_DIR": str(data_dir),
            "TESSERA_WATCH_ENABLED": "false",
            "TESSERA_RUN_TASKS": "false",
        }
        api = start_api(api_env, port)
        try:
            base = f"http://127.0.0.1:{port}"
            timings = first_rows_ms(base, session_token(base, data_dir), args.runs)
        finally:
            api.terminate()
            api.wait(10)
    median = statistics.median(timings)
    print(f"first rows: median {median:.0f} ms, best {min(timings):.0f}, worst {max(timings):.0f}")
    print(f"target < {TARGET_MS} ms: {'met' if median < TARGET_MS else 'NOT met'}")
    print(machine())
    record("portal_vm_list_first_rows_ms", median, "ms", COMMAND)


if __name__ == "__main__":
    main()
