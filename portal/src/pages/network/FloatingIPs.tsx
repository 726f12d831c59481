/**
 * Floating IPs: an address of an external segment, NATed 1:1 to a port's fixed address
 * through the router joining the port's segment to the external one. Allocated within
 * the project's quota, associated, dissociated, released.
 */
import { PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { App, Button, Form, Modal, Select, Space, Table, Typography } from "antd";
import type { TableProps } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { api, path } from "../../api/client";
import type { FloatingIP, NetPort, Router, Segment } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { byId, useList, useProjectLabel } from "./shared";
import { useSubmit } from "../../api/useSubmit";

interface FipForm {
  segment_id?: string;
  target?: string;
}

/** A port's address as one choice: "port-id|10.0.0.5". */
function portChoices(ports: NetPort[], segments: Map<string, Segment>) {
  return ports
    .filter((p) => p.device_owner === "" || p.device_owner === "compute")
    .flatMap((p) =>
      p.fixed_ips.map((ip) => ({
        value: `${p.id}|${ip.ip_address}`,
        label: `${ip.ip_address} · ${p.name || p.mac} · ${segments.get(p.segment_id)?.name ?? p.segment_id}`,
      })),
    );
}

function splitTarget(target?: string): { port_id: string | null; fixed_ip?: string } {
  if (!target) return { port_id: null };
  const [port_id, fixed_ip] = target.split("|");
  return { port_id, fixed_ip };
}

/** Allocate one (with `fip` null), or point `fip` at a port. */
function FipModal({
  fip,
  open,
  externals,
  ports,
  segments,
  onClose,
  onDone,
}: {
  fip: FloatingIP | null;
  open: boolean;
  externals: Segment[];
  ports: NetPort[];
  segments: Map<string, Segment>;
  onClose: () => void;
  onDone: () => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<FipForm>();
  const { busy, error, setError, submit } = useSubmit();

  const onlyExternal = externals.length === 1 ? externals[0].id : undefined;
  useEffect(() => {
    if (open) form.setFieldsValue({ segment_id: onlyExternal, target: undefined });
  }, [open, onlyExternal, form]);

  const onOk = async () => {
    const v = await form.validateFields();
    await submit(async () => {
      const target = splitTarget(v.target);
      if (fip) await api.put(path`/v1/floating-ips/${fip.id}`, target);
      else await api.post<FloatingIP>("/v1/floating-ips", { segment_id: v.segment_id, ...(target.port_id ? target : {}) });
      onDone();
    });
  };

  return (
    <Modal
      open={open}
      title={fip ? t("network:fips.associate.title", { address: fip.address }) : t("network:fips.allocate.title")}
      onCancel={onClose}
      afterClose={() => setError(null)}
      onOk={() => void onOk()}
      okText={fip ? t("network:fips.associate.button") : t("network:fips.allocate.button")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      okButtonProps={{ id: "fip-ok" }}
    >
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Form<FipForm> form={form} layout="vertical">
        {!fip && (
          <Form.Item
            name="segment_id"
            label={t("network:field.externalSegment")}
            rules={[{ required: true, message: t("network:validation.external") }]}
          >
            <Select options={externals.map((s) => ({ value: s.id, label: s.name }))} data-testid="fip-segment" />
          </Form.Item>
        )}
        <Form.Item
          name="target"
          label={t("network:field.port")}
          extra={t("network:fips.portHelp")}
          rules={fip ? [{ required: true, message: t("network:validation.port") }] : []}
        >
          <Select allowClear showSearch optionFilterProp="label" options={portChoices(ports, segments)} data-testid="fip-port" />
        </Form.Item>
      </Form>
    </Modal>
  );
}

export default function FloatingIPs() {
  const { t } = useTranslation();
  const { can, principal } = useAuth();
  const { modal } = App.useApp();
  const notifyError = useNotifyError();
  const projectLabel = useProjectLabel();
  const fips = useList<FloatingIP>("/v1/floating-ips");
  const segments = useList<Segment>("/v1/segments");
  const ports = useList<NetPort>(can("list_ports") ? "/v1/ports" : null);
  const routers = useList<Router>(can("list_routers") ? "/v1/routers" : null);
  const [editing, setEditing] = useState<{ fip: FloatingIP | null } | null>(null);
  const segmentsById = byId(segments.items);
  const portsById = byId(ports.items);
  const routersById = byId(routers.items);
  const externals = (segments.items ?? []).filter((s) => s.external);

  const act = async (run: () => Promise<unknown>) => {
    try {
      await run();
      fips.reload();
    } catch (err) {
      notifyError(err);
    }
  };

  const release = (fip: FloatingIP) =>
    modal.confirm({
      title: t("network:fips.release.confirm", { address: fip.address }),
      okText: t("network:fips.release.button"),
      okButtonProps: { danger: true, id: "confirm-ok" },
      cancelText: t("common:action.cancel"),
      onOk: () => act(() => api.delete(path`/v1/floating-ips/${fip.id}`)),
    });

  const columns: TableProps<FloatingIP>["columns"] = [
    {
      title: t("network:field.address"),
      dataIndex: "address",
      render: (v: string) => (
        <Typography.Text code strong>
          {v}
        </Typography.Text>
      ),
    },
    { title: t("network:field.externalSegment"), dataIndex: "segment_id", render: (id: string) => segmentsById.get(id)?.name ?? id },
    {
      title: t("network:field.associatedWith"),
      key: "target",
      render: (_: unknown, fip) =>
        fip.port_id ? (
          <span data-testid={`fip-target-${fip.address}`}>
            {fip.fixed_ip} · {portsById.get(fip.port_id)?.name || fip.port_id.slice(0, 8)}
          </span>
        ) : (
          <Typography.Text type="secondary" data-testid={`fip-target-${fip.address}`}>
            {t("network:fips.unassociated")}
          </Typography.Text>
        ),
    },
    {
      title: t("network:field.router"),
      dataIndex: "router_id",
      render: (id: string | null) => (id ? (routersById.get(id)?.name ?? id.slice(0, 8)) : "—"),
    },
    ...(principal?.is_admin
      ? [{ title: t("network:field.project"), key: "project", render: (_: unknown, f: FloatingIP) => projectLabel(f.project_id) }]
      : []),
    {
      title: "",
      key: "actions",
      render: (_: unknown, fip) => (
        <Space>
          {can("associate_floating_ip") &&
            (fip.port_id ? (
              <Button size="small" onClick={() => void act(() => api.put(path`/v1/floating-ips/${fip.id}`, { port_id: null }))} data-testid={`fip-dissociate-${fip.address}`}>
                {t("network:fips.dissociate")}
              </Button>
            ) : (
              <Button size="small" onClick={() => setEditing({ fip })} data-testid={`fip-associate-${fip.address}`}>
                {t("network:fips.associate.button")}
              </Button>
            ))}
          {can("delete_floating_ip") && (
            <Button size="small" danger onClick={() => release(fip)} data-testid={`fip-release-${fip.address}`}>
              {t("network:fips.release.button")}
            </Button>
          )}
        </Space>
      ),
    },
  ];

  return (
    <>
      <PageHeader
        title={t("network:fips.title")}
        subtitle={t("network:fips.subtitle")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={fips.reload}>
              {t("common:action.refresh")}
            </Button>
            <Can op="create_floating_ip">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing({ fip: null })} data-testid="allocate-fip">
                {t("network:fips.allocate.button")}
              </Button>
            </Can>
          </>
        }
      />
      <ErrorAlert error={fips.error} style={{ marginBottom: 12 }} />
      <Table<FloatingIP>
        rowKey="id"
        columns={columns}
        dataSource={fips.items ?? []}
        loading={fips.loading}
        pagination={false}
        scroll={{ x: "max-content" }}
        locale={{ emptyText: t("network:fips.empty") }}
        data-testid="fip-table"
      />
      <FipModal
        fip={editing?.fip ?? null}
        open={editing !== null}
        externals={externals}
        ports={ports.items ?? []}
        segments={segmentsById}
        onClose={() => setEditing(null)}
        onDone={() => {
          setEditing(null);
          fips.reload();
          ports.reload();
        }}
      />
    </>
  );
}
