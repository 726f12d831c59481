"""The API serves the built portal from its own origin: the page for any path the API
does not own, hashed assets cached for good (precompressed when the browser accepts it),
and a plain page saying how to build when there is no build."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tessera.api.portal import IMMUTABLE, REVALIDATE, install_portal

INDEX = "<!doctype html><title>portal</title><div id=root></div>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A portal build as Vite and portal/scripts/compress.mjs lay it out."""
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "favicon.svg").write_text("<svg/>")
    (root / "assets" / "index-abc123.js").write_text("console.log('plain')")
    (root / "assets" / "index-abc123.js.br").write_bytes(b"brotli bytes")
    (root / "assets" / "index-abc123.js.gz").write_bytes(b"gzip bytes")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


def _client(dist: Path) -> Iterator[TestClient]:
    app = FastAPI()

    @app.get("/v1/things")
    def things() -> list[str]:
        return []

    install_portal(app, dist)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(dist: Path) -> Iterator[TestClient]:
    yield from _client(dist)


@pytest.mark.parametrize("path", ["/", "/vms", "/vms/3f0c/snapshots", "/admin/audit?user=x"])
def test_every_app_path_gets_the_page_which_is_never_cached(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == REVALIDATE


def test_assets_are_immutable_and_precompressed_when_accepted(client: TestClient) -> None:
    plain = client.get("/assets/index-abc123.js", headers={"Accept-Encoding": "identity"})
    assert plain.text == "console.log('plain')"
    assert plain.headers["cache-control"] == IMMUTABLE
    assert plain.headers["content-type"].startswith("text/javascript")
    assert "content-encoding" not in plain.headers
    for accepted, encoding, body in (
        ("gzip, br", "br", b"brotli bytes"),
        ("gzip", "gzip", b"gzip bytes"),
    ):
        # Read the raw bytes: the test client must not decode them.
        with client.stream(
            "GET", "/assets/index-abc123.js", headers={"Accept-Encoding": accepted}
        ) as packed:
            assert packed.headers["content-encoding"] == encoding
            assert packed.headers["vary"] == "Accept-Encoding"
            assert b"".join(packed.iter_raw()) == body


def test_files_at_the_root_are_served_but_revalidated(client: TestClient) -> None:
    response = client.get("/favicon.svg")
    assert response.text == "<svg/>"
    assert response.headers["cache-control"] == REVALIDATE


def test_a_missing_asset_is_a_404_not_the_page(client: TestClient) -> None:
    response = client.get("/assets/index-old999.js")
    assert response.status_code == 404
    assert INDEX not in response.text


def test_nothing_outside_the_build_is_served(client: TestClient) -> None:
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
        assert "outside the build" not in client.get(path).text


def test_the_api_keeps_its_own_paths(client: TestClient) -> None:
    assert client.get("/v1/things").json() == []
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert INDEX not in missing.text
    assert client.get("/openapi.json").json()["paths"].keys() == {"/v1/things"}
    assert client.post("/vms").status_code == 404  # not 405: only GET and HEAD are the page's
    assert client.head("/vms").status_code == 200


def test_without_a_build_the_page_says_how_to_make_one(tmp_path: Path) -> None:
    for client in _client(tmp_path / "never-built"):
        response = client.get("/vms")
        assert response.status_code == 200
        assert "scripts/bootstrap.sh" in response.text
        assert "npm run build" in response.text


def test_the_real_app_serves_the_portal_beside_the_api(api: TestClient) -> None:
    """Whatever the state of portal/dist, the API's routes and errors are untouched."""
    assert api.get("/healthz").json()["status"] == "ok"
    missing = api.get("/v1/no-such-route")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    page = api.get("/vms", headers={"Authorization": ""})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    documented = set(api.get("/openapi.json").json()["paths"]) - {"/healthz"}
    assert all(path.startswith("/v1/") for path in documented)  # the portal is not in it
