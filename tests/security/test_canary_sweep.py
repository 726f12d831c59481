"""After the whole run: no canary secret in any response, log record, database or file.

`tests/fixtures/canary.py` watched the run as it went; this test runs last (the plugin
moves it there), adds every file the run left under pytest's base temporary directory,
and fails on any secret found anywhere.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest
import requests

from tests.fixtures.canary import (
    CANARY_VCENTER_PASSWORD,
    WATCH,
    CanaryWatch,
)

FULL_RUN_MIN_RESPONSES = 500


def test_no_secret_anywhere_after_the_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    if WATCH.responses < FULL_RUN_MIN_RESPONSES:
        pytest.skip(f"only {WATCH.responses} responses seen: the sweep needs the whole suite")
    WATCH.check_files(tmp_path_factory.getbasetemp())
    assert WATCH.log_records > 0 and WATCH.files > 0
    print(
        f"canary sweep: {WATCH.responses} responses, {WATCH.log_records} log records, "
        f"{WATCH.postgres_rows} PostgreSQL rows, {WATCH.files} files searched"
    )
    assert WATCH.leaks == [], "secrets leaked:\n" + "\n".join(sorted(set(WATCH.leaks)))


def test_the_watch_finds_planted_secrets() -> None:
    """The sweep above can fail: each kind of place reports a planted secret. (Planted
    outside pytest's temporary directory, which the real sweep searches.)"""
    with tempfile.TemporaryDirectory() as planted:
        _plant_and_search(Path(planted))


def _plant_and_search(tmp_path: Path) -> None:
    watch = CanaryWatch()
    token = "tsr_" + "A" * 43
    leaky = httpx.Response(
        200,
        content=f'{{"password": "{CANARY_VCENTER_PASSWORD}"}}'.encode(),
        request=httpx.Request("GET", "http://127.0.0.1/v1/providers"),
    )
    issued = httpx.Response(
        201,
        content=f'{{"secret": "{token}"}}'.encode(),
        request=httpx.Request("POST", "http://127.0.0.1/v1/auth/tokens"),
    )
    fuzzed = requests.Response()
    fuzzed._content = f"Bearer {token}".encode()
    fuzzed.request = requests.Request("GET", "http://127.0.0.1/v1/audit").prepare()
    (tmp_path / "tessera.db").write_bytes(b"\x00row" + token.encode())
    (tmp_path / "admin.token").write_text(token)
    watch.check_response(leaky)
    watch.check_response(issued)
    watch.check_requests_response(fuzzed)
    watch.check_files(tmp_path)
    watch.check("a log record", f"Authorization: Bearer {token}".encode())
    assert watch.leaks == [
        "the lab vCenter password in the response to GET /v1/providers",
        "an API token in the response to GET /v1/audit",
        "an API token in the file tessera.db",
        "an API token in a log record",
    ]
