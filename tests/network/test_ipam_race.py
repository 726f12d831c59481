"""Allocation races, on SQLite and PostgreSQL, over real HTTP: parallel ports on a small
subnet never share an address and exactly as many as it holds get one; parallel
overlapping subnets let exactly one in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tessera.config import Settings
from tessera.runtime import Runtime, ensure_admin_token

RACERS = 20


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "state", database_url=database_url, watch_enabled=False)


def _race(
    live_api: str, token: str, call: Callable[[httpx.Client, int], httpx.Response]
) -> list[httpx.Response]:
    start = threading.Barrier(RACERS)
    answers: list[httpx.Response] = []

    def run(n: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=live_api, headers=headers, timeout=120) as client:
            start.wait()
            answers.append(call(client, n))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert len(answers) == RACERS
    return answers


def test_parallel_allocations_never_share_an_address(runtime: Runtime, live_api: str) -> None:
    token = ensure_admin_token(runtime.settings)
    with httpx.Client(base_url=live_api, headers={"Authorization": f"Bearer {token}"}) as api:
        seg = api.post(
            "/v1/segments", json={"name": "race", "network_type": "vlan", "segmentation_id": 42}
        )
        segment_id = seg.json()["segment"]["id"]
        made = api.post("/v1/subnets", json={"segment_id": segment_id, "cidr": "10.42.0.0/28"})
        assert made.status_code == 201, made.text
        assert made.json()["addresses_total"] == 13  # .2 to .14

        answers = _race(
            live_api, token, lambda c, n: c.post("/v1/ports", json={"segment_id": segment_id})
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201] * 13 + [409] * 7, [a.text for a in answers if a.status_code != 201]
        addresses = [
            a.json()["fixed_ips"][0]["ip_address"] for a in answers if a.status_code == 201
        ]
        assert sorted(addresses, key=lambda a: int(a.rsplit(".", 1)[1])) == [
            f"10.42.0.{i}" for i in range(2, 15)
        ]
        assert len({a.json()["mac"] for a in answers if a.status_code == 201}) == 13
        for refused in (a.json() for a in answers if a.status_code == 409):
            assert refused["message"] == "subnet 10.42.0.0/28 has no free address left"

        overlapping = _race(
            live_api,
            token,
            lambda c, n: c.post(
                "/v1/subnets", json={"segment_id": segment_id, "cidr": f"10.43.0.0/{24 + n % 4}"}
            ),
        )
        assert sorted(a.status_code for a in overlapping) == [201] + [409] * (RACERS - 1)
        assert len(api.get("/v1/subnets").json()) == 2
