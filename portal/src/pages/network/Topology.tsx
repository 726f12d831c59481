/**
 * A project's networks as one picture: external networks, the routers with a gateway
 * on them, the segments their interfaces sit on, those segments' subnets, and the ports
 * (VM NICs) holding addresses there, with floating IPs on the ports they point at.
 * Administrators pick the project; everyone else sees their own.
 */
import { ReloadOutlined } from "@ant-design/icons";
import { Button, Card, Empty, Select } from "antd";
import { useMemo, useState } from "react";
import { useTranslation } from "react-i18next";

import { useProjects } from "../../api/lookups";
import type { FloatingIP, NetPort, Router, Segment, Subnet } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { ErrorAlert } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { TopologyGraph } from "./TopologyGraph";
import type { TopoLink, TopoNode } from "./TopologyGraph";
import { useList, useSegmentation } from "./shared";

const ALL = "*";
const PLATFORM = "-";

export default function Topology() {
  const { t } = useTranslation();
  const { can, principal } = useAuth();
  const segmentation = useSegmentation();
  const projects = useProjects(!!principal?.is_admin);
  const [project, setProject] = useState<string>(ALL);
  const segments = useList<Segment>("/v1/segments");
  const subnets = useList<Subnet>("/v1/subnets");
  const routers = useList<Router>(can("list_routers") ? "/v1/routers" : null);
  const ports = useList<NetPort>(can("list_ports") ? "/v1/ports" : null);
  const fips = useList<FloatingIP>(can("list_floating_ips") ? "/v1/floating-ips" : null);
  const error = segments.error ?? subnets.error ?? routers.error ?? ports.error ?? fips.error;

  const reload = () => {
    for (const list of [segments, subnets, routers, ports, fips]) list.reload();
  };

  const categories = [
    t("network:topology.external"),
    t("network:topology.routers"),
    t("network:topology.segments"),
    t("network:topology.subnets"),
    t("network:topology.ports"),
  ];

  const graph = useMemo(() => {
    const wanted = (projectId: string | null) =>
      project === ALL || (project === PLATFORM ? projectId === null : projectId === project);
    const nodes: TopoNode[] = [];
    const links: TopoLink[] = [];
    const shown = new Set<string>();
    const add = (node: TopoNode) => {
      if (shown.has(node.id)) return;
      shown.add(node.id);
      nodes.push(node);
    };
    const segmentById = new Map((segments.items ?? []).map((s) => [s.id, s]));
    const subnetById = new Map((subnets.items ?? []).map((s) => [s.id, s]));
    const segmentNode = (s: Segment) =>
      add({
        id: `seg:${s.id}`,
        label: s.name,
        column: s.external ? 0 : 2,
        detail: segmentation(s),
      });

    for (const s of segments.items ?? []) if (!s.external && wanted(s.project_id)) segmentNode(s);
    for (const r of routers.items ?? []) {
      if (!wanted(r.project_id)) continue;
      add({ id: `rtr:${r.id}`, label: r.name, column: 1, detail: r.enable_snat ? t("network:topology.snatOn") : t("network:topology.snatOff") });
      const ext = r.external_segment_id ? segmentById.get(r.external_segment_id) : undefined;
      if (ext) {
        segmentNode(ext);
        links.push({ source: `seg:${ext.id}`, target: `rtr:${r.id}`, label: r.gateway_ips.join(", ") });
      }
      for (const i of r.interfaces) {
        const net = subnetById.get(i.subnet_id);
        const seg = net ? segmentById.get(net.segment_id) : undefined;
        if (!seg) continue;
        segmentNode(seg);
        links.push({ source: `rtr:${r.id}`, target: `seg:${seg.id}`, label: i.ip_address });
      }
    }
    for (const s of subnets.items ?? []) {
      if (!shown.has(`seg:${s.segment_id}`) || segmentById.get(s.segment_id)?.external) continue;
      add({ id: `net:${s.id}`, label: s.cidr, column: 3, detail: s.name });
      links.push({ source: `seg:${s.segment_id}`, target: `net:${s.id}` });
    }
    const floating = new Map<string, string[]>();
    for (const f of fips.items ?? []) if (f.port_id) floating.set(f.port_id, [...(floating.get(f.port_id) ?? []), f.address]);
    for (const p of ports.items ?? []) {
      if (p.device_owner.startsWith("router") || !wanted(p.project_id)) continue;
      const where = p.fixed_ips.filter((ip) => shown.has(`net:${ip.subnet_id}`));
      if (where.length === 0) continue;
      const fipText = (floating.get(p.id) ?? []).join(", ");
      const kind = p.device_owner === "compute" ? t("network:topology.vm") : t("network:topology.port");
      add({
        id: `port:${p.id}`,
        label: `${p.name || p.mac}${fipText ? ` ⇄ ${fipText}` : ""}`,
        column: 4,
        detail: `${kind} · ${p.fixed_ips.map((ip) => ip.ip_address).join(", ")}${p.device_id ? ` · ${p.device_id}` : ""}`,
      });
      for (const ip of where) links.push({ source: `net:${ip.subnet_id}`, target: `port:${p.id}`, label: ip.ip_address });
    }
    return { nodes, links };
  }, [segments.items, subnets.items, routers.items, ports.items, fips.items, project, segmentation, t]);

  return (
    <>
      <PageHeader
        title={t("network:topology.title")}
        subtitle={t("network:topology.subtitle")}
        extra={
          <>
            {principal?.is_admin && (
              <Select
                value={project}
                onChange={setProject}
                style={{ width: 220 }}
                options={[
                  { value: ALL, label: t("network:topology.allProjects") },
                  { value: PLATFORM, label: t("network:platform") },
                  ...projects.items.map((p) => ({ value: p.id, label: p.name })),
                ]}
                data-testid="topology-project"
              />
            )}
            <Button icon={<ReloadOutlined />} onClick={reload}>
              {t("common:action.refresh")}
            </Button>
          </>
        }
      />
      <ErrorAlert error={error} style={{ marginBottom: 12 }} />
      <Card>
        {graph.nodes.length === 0 ? (
          <Empty description={t("network:topology.empty")} data-testid="topology-empty" />
        ) : (
          <TopologyGraph nodes={graph.nodes} links={graph.links} categories={categories} testId="topology" />
        )}
      </Card>
    </>
  );
}
