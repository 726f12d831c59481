/**
 * How pools and regions are joined (administrators): segments stretched over pools of
 * several zones (the same VLAN on each side), routed interconnects between regions (BGP
 * or OSPF, with what each side announces) and VPNs (IPsec or GRE, with what each side
 * reaches through the tunnel), each side with whether its session or tunnel is up.
 */
import { DeleteOutlined, PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { App, Button, Card, Form, Input, InputNumber, Modal, Radio, Select, Space, Table, Tag, Tooltip, Typography } from "antd";
import type { TableProps } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import { api, path } from "../../api/client";
import { useProviders } from "../../api/lookups";
import type { Interconnect, InterconnectKind, InterconnectSide, Segment } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { useFormat } from "../../i18n/format";
import { RealisationTag, useList, useSegmentation } from "./shared";
import { useSubmit } from "../../api/useSubmit";

const PHYSNET = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ROUTED: InterconnectKind[] = ["bgp", "ospf"];
const TUNNEL_COLOR = { up: "green", down: "red", unknown: "default" } as const;

interface SideForm {
  region: string;
  namespace: string;
  underlay_ip: string;
  asn?: number;
  tunnel_ip?: string;
  ranges: string[];
}

interface CreateForm {
  name: string;
  kind: InterconnectKind;
  a: SideForm;
  b: SideForm;
  ospf_area?: string;
  psk?: string;
}

function SideFields({ side, kind }: { side: "a" | "b"; kind: InterconnectKind }) {
  const { t } = useTranslation();
  return (
    <Card size="small" title={side === "a" ? t("network:interconnects.sideA") : t("network:interconnects.sideB")} style={{ flex: 1 }}>
      <Form.Item name={[side, "region"]} label={t("network:field.region")} rules={[{ required: true, message: t("network:validation.region") }]}>
        <Input data-testid={`ic-${side}-region`} />
      </Form.Item>
      <Form.Item
        name={[side, "namespace"]}
        label={t("network:field.namespace")}
        extra={t("network:interconnects.namespaceHelp")}
        rules={[{ required: true, pattern: PHYSNET, message: t("network:validation.name") }]}
      >
        <Input data-testid={`ic-${side}-namespace`} />
      </Form.Item>
      <Form.Item name={[side, "underlay_ip"]} label={t("network:field.underlayIp")} rules={[{ required: true, message: t("network:validation.address") }]}>
        <Input placeholder="192.0.2.1" data-testid={`ic-${side}-underlay`} />
      </Form.Item>
      {kind === "bgp" && (
        <Form.Item name={[side, "asn"]} label={t("network:field.asn")} rules={[{ required: true, message: t("network:validation.asn") }]}>
          <InputNumber min={1} max={4294967295} style={{ width: "100%" }} />
        </Form.Item>
      )}
      {kind === "gre" && (
        <Form.Item name={[side, "tunnel_ip"]} label={t("network:field.tunnelIp")} rules={[{ required: true, message: t("network:validation.address") }]}>
          <Input placeholder="10.255.0.1/30" />
        </Form.Item>
      )}
      <Form.Item name={[side, "ranges"]} label={t("network:field.ranges")} extra={t("network:interconnects.rangesHelp")}>
        <Select mode="tags" open={false} tokenSeparators={[",", " "]} data-testid={`ic-${side}-ranges`} />
      </Form.Item>
    </Card>
  );
}

function CreateInterconnect({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: () => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<CreateForm>();
  const kind = Form.useWatch("kind", form) ?? "bgp";
  const { busy, error, setError, submit } = useSubmit();

  const side = (s: SideForm) => ({
    region: s.region.trim(),
    namespace: s.namespace,
    underlay_ip: s.underlay_ip.trim(),
    asn: kind === "bgp" ? s.asn : undefined,
    tunnel_ip: kind === "gre" ? s.tunnel_ip?.trim() : undefined,
    ranges: s.ranges ?? [],
  });

  const onOk = async () => {
    const v = await form.validateFields();
    await submit(async () => {
      await api.post<Interconnect>("/v1/interconnects", {
        name: v.name,
        kind: v.kind,
        a: side(v.a),
        b: side(v.b),
        ospf_area: v.kind === "ospf" ? v.ospf_area || undefined : undefined,
        psk: v.kind === "ipsec" ? v.psk || undefined : undefined,
      });
      onCreated();
    });
  };

  return (
    <Modal
      open={open}
      title={t("network:interconnects.create.title")}
      onCancel={onClose}
      afterClose={() => {
        form.resetFields();
        setError(null);
      }}
      onOk={() => void onOk()}
      okText={t("common:action.create")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      okButtonProps={{ id: "interconnect-ok" }}
      width={820}
    >
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Form<CreateForm> form={form} layout="vertical" initialValues={{ kind: "bgp", a: { ranges: [] }, b: { ranges: [] } }}>
        <Space align="start" size="large">
          <Form.Item name="name" label={t("network:field.name")} rules={[{ required: true, pattern: PHYSNET, message: t("network:validation.name") }]}>
            <Input style={{ width: 240 }} data-testid="ic-name" />
          </Form.Item>
          <Form.Item name="kind" label={t("network:field.kind")}>
            <Radio.Group
              optionType="button"
              options={(["bgp", "ospf", "ipsec", "gre"] as const).map((k) => ({ value: k, label: t(`network:interconnectKind.${k}`) }))}
            />
          </Form.Item>
        </Space>
        {kind === "ospf" && (
          <Form.Item name="ospf_area" label={t("network:field.ospfArea")}>
            <Input placeholder="0.0.0.0" style={{ width: 240 }} />
          </Form.Item>
        )}
        {kind === "ipsec" && (
          <Form.Item name="psk" label={t("network:field.psk")} extra={t("network:interconnects.pskHelp")} rules={[{ min: 16, message: t("network:validation.psk") }]}>
            <Input.Password autoComplete="new-password" style={{ width: 360 }} />
          </Form.Item>
        )}
        <Space align="start" style={{ width: "100%" }}>
          <SideFields side="a" kind={kind} />
          <SideFields side="b" kind={kind} />
        </Space>
      </Form>
    </Modal>
  );
}

function TunnelTag({ side, kind }: { side: InterconnectSide; kind: InterconnectKind }) {
  const { t } = useTranslation();
  const f = useFormat();
  const state = side.tunnel_state;
  return (
    <Tooltip title={side.tunnel_checked_at ? t("network:interconnects.checkedAt", { time: f.dateTime(side.tunnel_checked_at) }) : t("network:interconnects.noAgent")}>
      <Tag color={TUNNEL_COLOR[state]} data-testid="tunnel-state">
        {ROUTED.includes(kind) ? t("network:interconnects.sessionState") : t("network:interconnects.tunnelState")}: {t(`network:tunnelState.${state}`)}
      </Tag>
    </Tooltip>
  );
}

function Side({ side, kind }: { side: InterconnectSide; kind: InterconnectKind }) {
  const { t } = useTranslation();
  return (
    <Space direction="vertical" size={0}>
      <Space size={8}>
        <Typography.Text strong>{side.region}</Typography.Text>
        <TunnelTag side={side} kind={kind} />
      </Space>
      <Typography.Text type="secondary" style={{ fontSize: 12 }}>
        {side.namespace} · {side.underlay_ip}
        {side.asn !== null ? ` · AS ${side.asn}` : ""}
        {side.tunnel_ip ? ` · ${side.tunnel_ip}` : ""}
      </Typography.Text>
      <span>
        <Typography.Text type="secondary" style={{ fontSize: 12 }}>
          {ROUTED.includes(kind) ? t("network:interconnects.announces") : t("network:interconnects.reaches")}
        </Typography.Text>{" "}
        {side.prefixes.length ? side.prefixes.map((p) => <Tag key={p}>{p}</Tag>) : "—"}
      </span>
    </Space>
  );
}

export default function Interconnects() {
  const { t } = useTranslation();
  const { can } = useAuth();
  const { modal } = App.useApp();
  const notifyError = useNotifyError();
  const segmentation = useSegmentation();
  const providers = useProviders(can("list_providers"));
  const interconnects = useList<Interconnect>("/v1/interconnects");
  const segments = useList<Segment>("/v1/segments");
  const [creating, setCreating] = useState(false);

  const zoneOf = (providerId: string) => {
    const p = providers.byId.get(providerId);
    return p ? `${p.region}/${p.zone}` : providerId;
  };
  const stretched = (segments.items ?? []).filter(
    (s) => new Set(s.realisations.filter((r) => r.state !== "removed").map((r) => zoneOf(r.provider_id))).size > 1,
  );
  const routed = (interconnects.items ?? []).filter((i) => ROUTED.includes(i.kind));
  const vpns = (interconnects.items ?? []).filter((i) => !ROUTED.includes(i.kind));

  const reload = () => {
    interconnects.reload();
    segments.reload();
  };

  const remove = (ic: Interconnect) =>
    modal.confirm({
      title: t("network:interconnects.delete.confirm", { name: ic.name }),
      content: t("network:interconnects.delete.detail"),
      okText: t("common:action.delete"),
      okButtonProps: { danger: true, id: "confirm-ok" },
      cancelText: t("common:action.cancel"),
      onOk: async () => {
        try {
          await api.delete(path`/v1/interconnects/${ic.id}`);
          reload();
        } catch (err) {
          notifyError(err);
        }
      },
    });

  const stretchedColumns: TableProps<Segment>["columns"] = [
    {
      title: t("network:field.name"),
      dataIndex: "name",
      render: (name: string, s) => <Link to={`/network/segments/${encodeURIComponent(s.id)}`}>{name}</Link>,
    },
    { title: t("network:field.type"), key: "type", render: (_: unknown, s) => segmentation(s) },
    {
      title: t("network:interconnects.zones"),
      key: "zones",
      render: (_: unknown, s) => (
        <Space wrap size={4}>
          {s.realisations.map((r) => (
            <span key={r.provider_id}>
              {providers.byId.get(r.provider_id)?.name ?? r.provider_id} ({zoneOf(r.provider_id)}) <RealisationTag state={r.state} />
            </span>
          ))}
        </Space>
      ),
    },
  ];

  const columns = (): TableProps<Interconnect>["columns"] => [
    { title: t("network:field.name"), dataIndex: "name", render: (v: string) => <Typography.Text strong>{v}</Typography.Text> },
    { title: t("network:field.kind"), dataIndex: "kind", render: (k: InterconnectKind) => <Tag color="blue">{t(`network:interconnectKind.${k}`)}</Tag> },
    { title: t("network:interconnects.sideA"), key: "a", render: (_: unknown, i) => <Side side={i.a} kind={i.kind} /> },
    { title: t("network:interconnects.sideB"), key: "b", render: (_: unknown, i) => <Side side={i.b} kind={i.kind} /> },
    {
      title: t("network:interconnects.detail"),
      key: "detail",
      render: (_: unknown, i) =>
        i.kind === "ospf"
          ? t("network:interconnects.area", { area: i.ospf_area ?? "0.0.0.0" })
          : i.kind === "ipsec"
            ? i.has_psk
              ? t("network:interconnects.pskStored")
              : "—"
            : "—",
    },
    {
      title: "",
      key: "actions",
      render: (_: unknown, i) =>
        can("delete_interconnect") ? (
          <Button size="small" danger icon={<DeleteOutlined />} onClick={() => remove(i)}>
            {t("common:action.delete")}
          </Button>
        ) : null,
    },
  ];

  return (
    <>
      <PageHeader
        title={t("network:interconnects.title")}
        subtitle={t("network:interconnects.subtitle")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={reload}>
              {t("common:action.refresh")}
            </Button>
            <Can op="create_interconnect">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)} data-testid="create-interconnect">
                {t("network:interconnects.create.button")}
              </Button>
            </Can>
          </>
        }
      />
      <ErrorAlert error={interconnects.error ?? segments.error} style={{ marginBottom: 12 }} />
      <Space direction="vertical" size={16} style={{ width: "100%" }}>
        <Card title={t("network:interconnects.stretched")} size="small">
          <Table<Segment>
            rowKey="id"
            size="small"
            columns={stretchedColumns}
            dataSource={stretched}
            loading={segments.loading}
            pagination={false}
            locale={{ emptyText: t("network:interconnects.noStretched") }}
            data-testid="stretched-table"
          />
        </Card>
        <Card title={t("network:interconnects.routed")} size="small">
          <Table<Interconnect>
            rowKey="id"
            size="small"
            columns={columns()}
            dataSource={routed}
            loading={interconnects.loading}
            pagination={false}
            locale={{ emptyText: t("network:interconnects.noRouted") }}
            data-testid="routed-table"
          />
        </Card>
        <Card title={t("network:interconnects.vpns")} size="small">
          <Table<Interconnect>
            rowKey="id"
            size="small"
            columns={columns()}
            dataSource={vpns}
            loading={interconnects.loading}
            pagination={false}
            locale={{ emptyText: t("network:interconnects.noVpns") }}
            data-testid="vpn-table"
          />
        </Card>
      </Space>
      <CreateInterconnect
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={() => {
          setCreating(false);
          reload();
        }}
      />
    </>
  );
}
