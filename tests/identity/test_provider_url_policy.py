"""The provider URL policy: a pool's URL may not point at a local file, a scheme its
driver does not speak, a cloud metadata service, or a link-local or unspecified address,
nor carry a libvirt option other than the harmless few; all refused (422, naming why)
before any connection is tried."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.inventory.pools import check_url


@pytest.mark.parametrize(
    ("kind", "url", "reason"),
    [
        ("libvirt", "file:///etc/passwd", "got 'file'"),
        ("vsphere", "file:///etc/passwd", "got 'file'"),
        ("vsphere", "gopher://127.0.0.1:70/_stats", "got 'gopher'"),
        ("vsphere", "https://169.254.169.254/sdk", "cloud metadata address"),
        ("vsphere", "http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("vsphere", "https://[fd00:ec2::254]/sdk", "cloud metadata address"),
        ("vsphere", "https://[::ffff:169.254.169.254]/sdk", "cloud metadata address"),
        ("vsphere", "https://2852039166/sdk", "resolves to 169.254.169.254"),
        ("vsphere", "https://%31%36%39.254.169.254/sdk", "cloud metadata address"),
        ("vsphere", "https://[fe80::1]/sdk", "link-local"),
        ("vsphere", "https://metadata.google.internal/", "cloud metadata service"),
        ("vsphere", "https://METADATA.Google.Internal./sdk", "cloud metadata service"),
        ("libvirt", "qemu+tcp://metadata/system", "cloud metadata service"),
        ("libvirt", "qemu+tcp://169.254.1.1/system", "link-local"),
        ("libvirt", "qemu+ssh://root@169.254.10.10/system", "link-local"),
        ("vsphere", "https://0.0.0.0/sdk", "unspecified"),
        ("vsphere", "https://[::]/sdk", "unspecified"),
        # libvirt options that run a command or read a file on the control plane
        ("libvirt", "qemu+ssh://127.0.0.1/system?command=/bin/sh", "option 'command'"),
        ("libvirt", "qemu+unix:///system?socket=/run/docker.sock", "option 'socket'"),
        ("libvirt", "qemu+ssh://127.0.0.1/system?keyfile=/etc/shadow", "option 'keyfile'"),
        ("libvirt", "qemu+ssh://127.0.0.1/system?sshauth=agent", "option 'sshauth'"),
        ("libvirt", "qemu+ssh://127.0.0.1/system?known_hosts=/x", "option 'known_hosts'"),
        ("libvirt", "qemu+ssh://127.0.0.1/system?netcat=/tmp/nc", "option 'netcat'"),
        ("libvirt", "qemu+tcp://127.0.0.1/system?mode=legacy", "option 'mode'"),
        ("libvirt", "qemu+tls://127.0.0.1/system?pkipath=/root", "option 'pkipath'"),
        ("libvirt", "qemu+ssh://127.0.0.1/system?no_tty=1&proxy=netcat", "option 'proxy'"),
        # spelled as libvirt reads them: any case, escaped, after a ';'; and any other
        ("libvirt", "qemu+ssh://127.0.0.1/system?COMMAND=id", "option 'command'"),
        ("libvirt", "qemu+ssh://127.0.0.1/system?%63ommand=id", "option 'command'"),
        ("libvirt", "qemu+ssh://127.0.0.1/system?no_tty=1;command=id", "option 'command'"),
        ("libvirt", "qemu+ssh://127.0.0.1/system?name=qemu:///system", "option 'name'"),
    ],
)
def test_refused_urls(api: TestClient, kind: str, url: str, reason: str) -> None:
    refused = api.post("/v1/providers", json={"name": "bad", "kind": kind, "url": url})
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_input"
    assert reason in refused.json()["message"]
    assert api.get("/v1/providers").json() == []


def test_a_loopback_lab_is_accepted(api: TestClient, kvm_host: Any) -> None:
    """The lab's pools listen on loopback, which stays allowed."""
    added = api.post("/v1/providers", json={"name": "kvm", "kind": "libvirt", "url": kvm_host.uri})
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "ok"


def test_an_unresolvable_name_fails_the_connection_test(api: TestClient) -> None:
    """A name that does not resolve is not the policy's to judge: the connection test is."""
    url = "qemu+tcp://no-such-host.invalid/system"
    failed = api.post("/v1/providers", json={"name": "nowhere", "kind": "libvirt", "url": url})
    assert failed.status_code == 422
    assert "connection test failed" in failed.json()["message"]


@pytest.mark.parametrize(
    "url",
    [
        "qemu+ssh://root@127.0.0.1/system?no_tty=1",
        "qemu+tls://127.0.0.1/system?no_verify=1&no_tty=1",
        "qemu+tcp://127.0.0.1/system?",
        "qemu:///system",
    ],
)
def test_harmless_libvirt_options_pass(url: str) -> None:
    check_url("libvirt", url)
