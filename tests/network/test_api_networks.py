"""The network API: bad input is a clear 4xx and leaves nothing behind, overlaps are
refused naming both ranges and owners (another project's only as such), the report lists
what collides, floating IPs need a router and fit the quota, projects stay apart."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.network.helpers import member, ok, segment, subnet


def _counts(api: TestClient) -> tuple[int, int, int]:
    return (
        len(ok(api.get("/v1/segments"))),
        len(ok(api.get("/v1/subnets"))),
        len(ok(api.get("/v1/ports"))),
    )


def test_bad_input_is_a_clear_4xx_and_makes_nothing(api: TestClient) -> None:
    web = segment(api, "web", 100)
    subnet(api, web["id"], "10.0.0.0/24", name="lan-a")
    before = _counts(api)
    cases = [
        (
            "/v1/segments",
            {"name": "big", "network_type": "vlan", "segmentation_id": 4095},
            422,
            "from 1 to 4094 (got 4095)",
        ),
        (
            "/v1/segments",
            {"name": "again", "network_type": "vlan", "segmentation_id": 100},
            409,
            "VLAN 100 on physical network 'default' is already used by segment 'web'",
        ),
        ("/v1/segments", {"name": "vx", "network_type": "vxlan"}, 422, "needs a segmentation_id"),
        (
            "/v1/subnets",
            {"segment_id": web["id"], "cidr": "10.0.1.0/24", "gateway_ip": "10.0.2.1"},
            422,
            "gateway_ip 10.0.2.1 is outside subnet 10.0.1.0/24",
        ),
        (
            "/v1/subnets",
            {"segment_id": web["id"], "cidr": "10.0.0.128/25"},
            409,
            "overlaps 10.0.0.0/24 (subnet 'lan-a' of segment 'web', the platform)",
        ),
        ("/v1/subnets", {"segment_id": web["id"], "cidr": "10.0.0.7/24"}, 422, "host bits set"),
        (
            "/v1/subnets",
            {
                "segment_id": web["id"],
                "cidr": "10.0.9.0/24",
                "allocation_pools": [{"start": "10.0.9.9", "end": "10.0.10.1"}],
            },
            422,
            "outside subnet 10.0.9.0/24",
        ),
        (
            "/v1/ports",
            {
                "segment_id": web["id"],
                "mac": "fa:16:3e:00:00:01",
                "fixed_ips": [{"subnet_id": "nope"}],
            },
            422,
            "is not a subnet of segment",
        ),
    ]
    for path, body, status, message in cases:
        answer = api.post(path, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.json()["message"], answer.text
    assert _counts(api) == before  # nothing half-made

    # one VLAN id on two physical networks is two segments
    segment(api, "web-b", 100, physical_network="physnet2")
    vx = ok(
        api.post(
            "/v1/segments", json={"name": "vx", "network_type": "vxlan", "segmentation_id": 100}
        ),
        202,
    )
    assert vx["segment"]["status"] == "active" and vx["task"] is None


def test_the_message_names_another_projects_range_only_as_such(api: TestClient) -> None:
    _, alice = member(api, "web", "alice")
    _, bob = member(api, "ops", "bob")
    mine = segment(alice, "alice-net", 300)
    subnet(alice, mine["id"], "10.20.0.0/16", name="alice-lan")
    theirs = segment(bob, "bob-net", 301)
    refused = bob.post("/v1/subnets", json={"segment_id": theirs["id"], "cidr": "10.20.5.0/24"})
    assert refused.status_code == 409
    message = refused.json()["message"]
    assert message == (
        "10.20.5.0/24 (subnet of segment 'bob-net', project 'ops') overlaps 10.20.0.0/16,"
        " a range owned by another project"
    ).replace("subnet of", f"subnet {_subnet_id(message)} of"), message
    assert "alice" not in message and "web" not in message
    # the admin is told whose it is
    admin_view = api.post("/v1/subnets", json={"segment_id": theirs["id"], "cidr": "10.20.5.0/24"})
    assert (
        "(subnet 'alice-lan' of segment 'alice-net', project 'web')" in admin_view.json()["message"]
    )


def _subnet_id(message: str) -> str:
    return message.split("subnet ", 1)[1].split(" ", 1)[0]


def test_peer_ranges_and_announcements_are_refused_the_report_lists_recorded_overlaps(
    api: TestClient,
) -> None:
    segment(api, "seed", 10)  # regions exist with pools; make one the API can name
    api.post("/v1/providers", json={"name": "x", "kind": "libvirt", "url": "qemu:///nothing"})
    from tessera.db.rows import RegionRow

    rt = api.app.state.runtime  # type: ignore[attr-defined]
    with rt.sessions.begin() as session:
        session.add_all([RegionRow(name="eu"), RegionRow(name="us")])
    eu = ok(
        api.post(
            "/v1/address-ranges",
            json={"name": "eu", "kind": "region", "cidr": "10.1.0.0/16", "region": "eu"},
        ),
        201,
    )
    ok(
        api.post(
            "/v1/address-ranges",
            json={"name": "us", "kind": "region", "cidr": "10.2.0.0/16", "region": "us"},
        ),
        201,
    )
    eu_net = segment(api, "eu-net", 11, region="eu")
    subnet(api, eu_net["id"], "10.1.1.0/24")  # inside its own region: fine
    strayed = api.post("/v1/subnets", json={"segment_id": eu_net["id"], "cidr": "10.2.1.0/24"})
    assert strayed.status_code == 409
    assert "overlaps 10.2.0.0/16 (region 'us')" in strayed.json()["message"]

    peer = api.post(
        "/v1/address-ranges", json={"name": "branch", "kind": "vpn-peer", "cidr": "10.1.1.128/25"}
    )
    assert peer.status_code == 409
    assert peer.json()["message"] == (
        "10.1.1.128/25 (vpn-peer 'branch') overlaps 10.1.0.0/16 (region 'eu') (and 1 more)"
    )
    announce = api.post(
        "/v1/address-ranges",
        json={"name": "eu-out", "kind": "announcement", "cidr": "10.2.0.0/20", "region": "eu"},
    )
    assert announce.status_code == 409 and "region 'us'" in announce.json()["message"]
    ok(
        api.post(
            "/v1/address-ranges",
            json={"name": "eu-out", "kind": "announcement", "cidr": "10.1.0.0/20", "region": "eu"},
        ),
        201,
    )

    assert ok(api.get("/v1/address-overlaps")) == []
    # a migration target's range is what it is: recorded, and reported
    ok(
        api.post(
            "/v1/address-ranges",
            json={"name": "old-dc", "kind": "migration-target", "cidr": "10.1.1.0/26"},
        ),
        201,
    )
    report = ok(api.get("/v1/address-overlaps"))
    owners = {frozenset((o["first"]["owner"], o["second"]["owner"])) for o in report}
    assert len(report) == 3, report
    assert any(
        "migration-target 'old-dc'" in " ".join(pair) and "region 'eu'" in " ".join(pair)
        for pair in owners
    )
    assert {o["second"]["cidr"] for o in report} | {o["first"]["cidr"] for o in report} >= {
        "10.1.1.0/26",
        "10.1.1.0/24",
        "10.1.0.0/20",
    }
    del eu


def test_a_floating_ip_needs_a_router_to_its_port_and_fits_the_quota(api: TestClient) -> None:
    project, alice = member(api, "web", "alice")
    ext = ok(
        api.post("/v1/segments", json={"name": "public", "network_type": "flat", "external": True}),
        202,
    )["segment"]
    subnet(api, ext["id"], "203.0.113.0/29")
    lan = segment(alice, "lan", 400)
    lan_subnet = subnet(alice, lan["id"], "192.168.50.0/24")
    port = ok(alice.post("/v1/ports", json={"segment_id": lan["id"]}), 201)
    assert [f["ip_address"] for f in port["fixed_ips"]] == ["192.168.50.2"]
    before = len(ok(alice.get("/v1/floating-ips")))
    no_router = alice.post(
        "/v1/floating-ips", json={"segment_id": ext["id"], "port_id": port["id"]}
    )
    assert no_router.status_code == 409, no_router.text
    assert "no router connects" in no_router.json()["message"]
    assert len(ok(alice.get("/v1/floating-ips"))) == before  # no address kept

    router = ok(
        alice.post("/v1/routers", json={"name": "edge", "external_segment_id": ext["id"]}), 201
    )
    assert router["external_segment_id"] == ext["id"] and router["gateway_ips"] == ["203.0.113.2"]
    ok(alice.put(f"/v1/routers/{router['id']}/interfaces/{lan_subnet['id']}"))
    fip = ok(
        alice.post("/v1/floating-ips", json={"segment_id": ext["id"], "port_id": port["id"]}), 201
    )
    assert (fip["address"], fip["fixed_ip"], fip["router_id"]) == (
        "203.0.113.3",
        "192.168.50.2",
        router["id"],
    )

    ok(api.put(f"/v1/projects/{project}/quota", json={"floating_ips": 2}))
    ok(alice.post("/v1/floating-ips", json={"segment_id": ext["id"]}), 201)
    refused = alice.post("/v1/floating-ips", json={"segment_id": ext["id"]})
    assert refused.status_code == 403, refused.text
    assert (refused.json()["quota"], refused.json()["in_use"], refused.json()["limit"]) == (
        "floating_ips",
        2,
        2,
    )
    usage = {q["quota"]: q for q in ok(alice.get(f"/v1/projects/{project}/usage"))["quotas"]}
    assert usage["floating_ips"]["in_use"] == 2

    # what is in use cannot go
    assert alice.delete(f"/v1/routers/{router['id']}").status_code == 409
    assert alice.delete(f"/v1/subnets/{lan_subnet['id']}").status_code == 409
    assert alice.delete(f"/v1/segments/{lan['id']}").status_code == 409
    ok(alice.put(f"/v1/floating-ips/{fip['id']}", json={"port_id": None}))
    ok(alice.delete(f"/v1/ports/{port['id']}"), 204)
    ok(alice.delete(f"/v1/routers/{router['id']}/interfaces/{lan_subnet['id']}"), 204)
    ok(alice.delete(f"/v1/routers/{router['id']}"), 204)
    ok(alice.delete(f"/v1/segments/{lan['id']}"), 202)
    assert alice.get(f"/v1/segments/{lan['id']}").status_code == 404


def test_projects_do_not_see_or_touch_each_others_networks(api: TestClient) -> None:
    _, alice = member(api, "web", "alice")
    _, bob = member(api, "ops", "bob")
    _, reader = member(api, "web", "rita", role="reader")
    net = segment(alice, "alice-net", 500)
    sub = subnet(alice, net["id"], "172.16.0.0/24")
    port = ok(alice.post("/v1/ports", json={"segment_id": net["id"]}), 201)
    group = ok(alice.post("/v1/security-groups", json={"name": "web"}), 201)
    shared = ok(
        api.post(
            "/v1/segments",
            json={"name": "shared", "network_type": "vlan", "segmentation_id": 501, "shared": True},
        ),
        202,
    )["segment"]

    assert {s["id"] for s in ok(bob.get("/v1/segments"))} == {shared["id"]}
    assert ok(bob.get("/v1/subnets")) == [] and ok(bob.get("/v1/ports")) == []
    for path in (
        f"/v1/segments/{net['id']}",
        f"/v1/subnets/{sub['id']}",
        f"/v1/ports/{port['id']}",
        f"/v1/security-groups/{group['id']}",
    ):
        assert bob.get(path).status_code == 404
        assert bob.delete(path).status_code == 404
    on_theirs = bob.post("/v1/ports", json={"segment_id": net["id"]})
    assert on_theirs.status_code == 404
    assert (
        bob.post(
            "/v1/ports", json={"segment_id": net["id"], "security_group_ids": [group["id"]]}
        ).status_code
        == 404
    )
    # a shared segment takes anyone's ports, but only an admin changes it
    ok(bob.post("/v1/ports", json={"segment_id": shared["id"]}), 201)
    assert bob.patch(f"/v1/segments/{shared['id']}", json={"name": "mine"}).status_code == 403
    assert (
        bob.post(
            "/v1/segments", json={"name": "s", "network_type": "flat", "shared": True}
        ).status_code
        == 403
    )
    # readers read, members change
    assert {s["id"] for s in ok(reader.get("/v1/segments"))} == {net["id"], shared["id"]}
    assert reader.post("/v1/ports", json={"segment_id": net["id"]}).status_code == 403
    assert alice.get("/v1/address-overlaps").status_code == 403


def test_addresses_run_out_with_a_409_and_come_back_when_freed(api: TestClient) -> None:
    net = segment(api, "tiny", 600)
    sub = subnet(api, net["id"], "10.99.0.0/29")  # gateway .1, pool .2-.6
    made = [ok(api.post("/v1/ports", json={"segment_id": net["id"]}), 201) for _ in range(5)]
    assert [p["fixed_ips"][0]["ip_address"] for p in made] == [f"10.99.0.{i}" for i in range(2, 7)]
    full = api.post("/v1/ports", json={"segment_id": net["id"]})
    assert full.status_code == 409 and "no free address" in full.json()["message"]
    assert ok(api.get(f"/v1/subnets/{sub['id']}"))["addresses_used"] == 5
    ok(api.delete(f"/v1/ports/{made[2]['id']}"), 204)
    again = ok(api.post("/v1/ports", json={"segment_id": net["id"]}), 201)
    assert again["fixed_ips"][0]["ip_address"] == "10.99.0.4"
    taken = api.post(
        "/v1/ports",
        json={
            "segment_id": net["id"],
            "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.99.0.4"}],
        },
    )
    assert taken.status_code == 409 and "already in use" in taken.json()["message"]
    gateway = api.post(
        "/v1/ports",
        json={
            "segment_id": net["id"],
            "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.99.0.1"}],
        },
    )
    assert gateway.status_code == 409 and "is the gateway" in gateway.json()["message"]
    mac = made[0]["mac"]
    clash = api.post("/v1/ports", json={"segment_id": net["id"], "mac": mac, "fixed_ips": []})
    assert clash.status_code == 409 and f"MAC {mac} is already used" in clash.json()["message"]
    v6 = subnet(api, net["id"], "fd00:99::/64")
    dual = ok(
        api.post(
            "/v1/ports", json={"segment_id": net["id"], "fixed_ips": [{"subnet_id": v6["id"]}]}
        ),
        201,
    )
    assert dual["fixed_ips"] == [{"subnet_id": v6["id"], "ip_address": "fd00:99::2"}]
