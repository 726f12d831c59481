/**
 * One segment: how it is realised on each pool, its subnets with how many addresses are
 * held of their allocation pools, and its ports (VM NICs, router interfaces).
 */
import { ArrowLeftOutlined, DeleteOutlined, PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { App, Button, Card, Descriptions, Form, Input, Modal, Select, Space, Switch, Table, Tag, Typography } from "antd";
import type { TableProps } from "antd";
import { useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router-dom";

import { api, path } from "../../api/client";
import { useProviders } from "../../api/lookups";
import type { NetPort, Realisation, Segment, Subnet, Task } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { UsageBar } from "../../components/UsageBar";
import { useFormat } from "../../i18n/format";
import { useTaskUpdates } from "../../tasks/TaskContext";
import { RealisationTag, SegmentStatusTag, byId, useList, useProjectLabel, useSegmentation } from "./shared";
import { useSubmit } from "../../api/useSubmit";

interface SubnetForm {
  name?: string;
  cidr: string;
  gateway_ip?: string;
  no_gateway: boolean;
  pool_start?: string;
  pool_end?: string;
  dns_nameservers: string[];
  enable_dhcp: boolean;
}

function AddSubnet({ segment, open, onClose, onAdded }: { segment: Segment; open: boolean; onClose: () => void; onAdded: () => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<SubnetForm>();
  const noGateway = Form.useWatch("no_gateway", form) ?? false;
  const { busy, error, setError, submit } = useSubmit();

  const onOk = async () => {
    const v = await form.validateFields();
    await submit(async () => {
      await api.post<Subnet>("/v1/subnets", {
        segment_id: segment.id,
        cidr: v.cidr.trim(),
        name: v.name ?? "",
        gateway_ip: v.no_gateway ? undefined : v.gateway_ip?.trim() || undefined,
        no_gateway: v.no_gateway,
        allocation_pools: v.pool_start && v.pool_end ? [{ start: v.pool_start.trim(), end: v.pool_end.trim() }] : [],
        dns_nameservers: v.dns_nameservers ?? [],
        enable_dhcp: v.enable_dhcp,
      });
      onAdded();
    });
  };

  return (
    <Modal
      open={open}
      title={t("network:subnets.create.title", { segment: segment.name })}
      onCancel={onClose}
      afterClose={() => {
        form.resetFields();
        setError(null);
      }}
      onOk={() => void onOk()}
      okText={t("common:action.create")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      okButtonProps={{ id: "subnet-ok" }}
      width={560}
    >
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Form<SubnetForm> form={form} layout="vertical" initialValues={{ no_gateway: false, enable_dhcp: true, dns_nameservers: [] }}>
        <Form.Item name="name" label={t("network:field.name")}>
          <Input data-testid="subnet-name" />
        </Form.Item>
        <Form.Item
          name="cidr"
          label={t("network:field.cidr")}
          extra={t("network:subnets.create.cidrHelp")}
          rules={[{ required: true, message: t("network:validation.cidr") }]}
        >
          <Input placeholder="10.0.0.0/24" data-testid="subnet-cidr" />
        </Form.Item>
        <Space.Compact block>
          <Form.Item name="gateway_ip" label={t("network:field.gateway")} extra={t("network:subnets.create.gatewayHelp")} style={{ flex: 1, marginRight: 8 }}>
            <Input disabled={noGateway} data-testid="subnet-gateway" />
          </Form.Item>
          <Form.Item name="no_gateway" label={t("network:field.noGateway")} valuePropName="checked">
            <Switch />
          </Form.Item>
        </Space.Compact>
        <Typography.Text type="secondary">{t("network:subnets.create.poolHelp")}</Typography.Text>
        <Space.Compact block style={{ marginTop: 8 }}>
          <Form.Item name="pool_start" label={t("network:field.poolStart")} style={{ flex: 1, marginRight: 8 }}>
            <Input data-testid="subnet-pool-start" />
          </Form.Item>
          <Form.Item name="pool_end" label={t("network:field.poolEnd")} style={{ flex: 1 }}>
            <Input data-testid="subnet-pool-end" />
          </Form.Item>
        </Space.Compact>
        <Form.Item name="dns_nameservers" label={t("network:field.dns")}>
          <Select mode="tags" open={false} tokenSeparators={[",", " "]} />
        </Form.Item>
        <Form.Item name="enable_dhcp" label={t("network:field.dhcp")} valuePropName="checked">
          <Switch />
        </Form.Item>
      </Form>
    </Modal>
  );
}

interface PortForm {
  name?: string;
  subnet_id?: string;
  ip_address?: string;
}

function AddPort({ segment, subnets, open, onClose, onAdded }: { segment: Segment; subnets: Subnet[]; open: boolean; onClose: () => void; onAdded: () => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<PortForm>();
  const { busy, error, setError, submit } = useSubmit();

  const onOk = async () => {
    const v = await form.validateFields();
    await submit(async () => {
      await api.post<NetPort>("/v1/ports", {
        segment_id: segment.id,
        name: v.name ?? "",
        fixed_ips: v.subnet_id ? [{ subnet_id: v.subnet_id, ip_address: v.ip_address?.trim() || undefined }] : undefined,
      });
      onAdded();
    });
  };

  return (
    <Modal
      open={open}
      title={t("network:ports.create.title", { segment: segment.name })}
      onCancel={onClose}
      afterClose={() => {
        form.resetFields();
        setError(null);
      }}
      onOk={() => void onOk()}
      okText={t("common:action.create")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      okButtonProps={{ id: "port-ok" }}
    >
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Form<PortForm> form={form} layout="vertical">
        <Form.Item name="name" label={t("network:field.name")}>
          <Input data-testid="port-name" />
        </Form.Item>
        <Form.Item name="subnet_id" label={t("network:field.subnet")} extra={t("network:ports.create.subnetHelp")}>
          <Select allowClear options={subnets.map((s) => ({ value: s.id, label: `${s.name || s.id} (${s.cidr})` }))} />
        </Form.Item>
        <Form.Item name="ip_address" label={t("network:field.ipAddress")} extra={t("network:ports.create.ipHelp")}>
          <Input />
        </Form.Item>
      </Form>
    </Modal>
  );
}

export default function SegmentDetail() {
  const { segmentId = "" } = useParams();
  const { t } = useTranslation();
  const f = useFormat();
  const { can, principal } = useAuth();
  const { modal } = App.useApp();
  const notifyError = useNotifyError();
  const segmentation = useSegmentation();
  const projectLabel = useProjectLabel();
  const providers = useProviders(can("list_providers"));
  const [segment, setSegment] = useState<Segment | null>(null);
  const [error, setError] = useState<unknown>(null);
  const subnets = useList<Subnet>("/v1/subnets", { segment_id: segmentId });
  const ports = useList<NetPort>(can("list_ports") ? "/v1/ports" : null, { segment_id: segmentId });
  const [adding, setAdding] = useState<"subnet" | "port" | null>(null);

  const load = useCallback(() => {
    api
      .get<Segment>(path`/v1/segments/${segmentId}`)
      .then((s) => {
        setSegment(s);
        setError(null);
      })
      .catch(setError);
    subnets.reload();
    ports.reload();
  }, [segmentId, subnets.reload, ports.reload]);
  useEffect(load, [load]);
  useTaskUpdates((task: Task) => {
    if (task.kind.startsWith("segment.") && task.state !== "queued") load();
  });

  const writable = !!segment && can("create_subnet") && (principal?.is_admin || segment.project_id === principal?.project_id);
  const subnetsById = byId(subnets.items);

  const confirmDelete = (title: string, run: () => Promise<unknown>) =>
    modal.confirm({
      title,
      okText: t("common:action.delete"),
      okButtonProps: { danger: true, id: "confirm-ok" },
      cancelText: t("common:action.cancel"),
      onOk: async () => {
        try {
          await run();
          load();
        } catch (err) {
          notifyError(err);
        }
      },
    });

  const realisationColumns: TableProps<Realisation>["columns"] = [
    { title: t("network:field.pool"), dataIndex: "provider_id", render: (id: string) => providers.byId.get(id)?.name ?? id },
    { title: t("network:field.state"), dataIndex: "state", render: (_: unknown, r) => <RealisationTag state={r.state} /> },
    { title: t("network:field.nativeName"), dataIndex: "native_name", render: (v: string) => v || "—" },
    { title: t("network:field.location"), dataIndex: "location", render: (v: string) => v || "—" },
  ];

  const subnetColumns: TableProps<Subnet>["columns"] = [
    { title: t("network:field.name"), dataIndex: "name", render: (v: string) => v || "—" },
    { title: t("network:field.cidr"), dataIndex: "cidr", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
    { title: t("network:field.gateway"), dataIndex: "gateway_ip", render: (v: string | null) => v ?? t("network:subnets.noGateway") },
    {
      title: t("network:field.pools"),
      key: "pools",
      render: (_: unknown, s) => s.allocation_pools.map((p) => `${p.start} – ${p.end}`).join(", "),
    },
    {
      title: t("network:field.ipUsage"),
      key: "usage",
      render: (_: unknown, s) => (
        <span data-testid={`subnet-usage-${s.cidr}`}>
          <UsageBar used={s.addresses_used} total={s.addresses_total} format={(n) => f.number(n)} />
        </span>
      ),
    },
    { title: t("network:field.dhcp"), dataIndex: "enable_dhcp", render: (on: boolean) => (on ? t("network:on") : t("network:off")) },
    {
      title: "",
      key: "actions",
      render: (_: unknown, s) =>
        writable && can("delete_subnet") ? (
          <Button
            size="small"
            danger
            icon={<DeleteOutlined />}
            onClick={() => confirmDelete(t("network:subnets.delete.confirm", { cidr: s.cidr }), () => api.delete(path`/v1/subnets/${s.id}`))}
          >
            {t("common:action.delete")}
          </Button>
        ) : null,
    },
  ];

  const portColumns: TableProps<NetPort>["columns"] = [
    { title: t("network:field.name"), dataIndex: "name", render: (v: string, p) => v || p.id.slice(0, 8) },
    { title: t("network:field.mac"), dataIndex: "mac", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
    {
      title: t("network:field.fixedIps"),
      key: "ips",
      render: (_: unknown, p) => (
        <Space direction="vertical" size={0}>
          {p.fixed_ips.map((ip) => (
            <span key={ip.ip_address}>
              {ip.ip_address}{" "}
              <Typography.Text type="secondary">{subnetsById.get(ip.subnet_id)?.cidr}</Typography.Text>
            </span>
          ))}
        </Space>
      ),
    },
    {
      title: t("network:field.deviceOwner"),
      key: "owner",
      render: (_: unknown, p) =>
        p.device_owner ? (
          <Space size={4}>
            <Tag>{t(`network:deviceOwner.${p.device_owner}`)}</Tag>
            {p.device_owner === "compute" && p.device_id ? <Link to={`/vms/${encodeURIComponent(p.device_id)}`}>{p.device_id.slice(0, 8)}</Link> : null}
          </Space>
        ) : (
          <Typography.Text type="secondary">{t("network:ports.unbound")}</Typography.Text>
        ),
    },
    {
      title: "",
      key: "actions",
      render: (_: unknown, p) =>
        can("delete_port") && (p.device_owner === "" || p.device_owner === "compute") ? (
          <Button
            size="small"
            danger
            icon={<DeleteOutlined />}
            onClick={() => confirmDelete(t("network:ports.delete.confirm", { name: p.name || p.mac }), () => api.delete(path`/v1/ports/${p.id}`))}
          >
            {t("common:action.delete")}
          </Button>
        ) : null,
    },
  ];

  return (
    <>
      <PageHeader
        title={segment ? t("network:segment.title", { name: segment.name }) : t("network:segments.title")}
        extra={
          <>
            <Link to="/network/segments">
              <Button icon={<ArrowLeftOutlined />}>{t("common:action.back")}</Button>
            </Link>
            <Button icon={<ReloadOutlined />} onClick={load}>
              {t("common:action.refresh")}
            </Button>
          </>
        }
      />
      <ErrorAlert error={error} style={{ marginBottom: 12 }} />
      {segment && (
        <Space direction="vertical" size={16} style={{ width: "100%" }} data-testid="segment-detail">
          <Card>
            <Descriptions column={{ xs: 1, md: 3 }} size="small">
              <Descriptions.Item label={t("network:field.type")}>{segmentation(segment)}</Descriptions.Item>
              <Descriptions.Item label={t("network:field.status")}>
                <span data-testid="segment-status">
                  <SegmentStatusTag status={segment.status} />
                </span>
              </Descriptions.Item>
              <Descriptions.Item label={t("network:field.project")}>{projectLabel(segment.project_id)}</Descriptions.Item>
              <Descriptions.Item label={t("network:field.shared")}>{segment.shared ? t("network:yes") : t("network:no")}</Descriptions.Item>
              <Descriptions.Item label={t("network:field.external")}>{segment.external ? t("network:yes") : t("network:no")}</Descriptions.Item>
              <Descriptions.Item label={t("network:field.description")}>{segment.description || "—"}</Descriptions.Item>
            </Descriptions>
          </Card>
          <Card title={t("network:segment.realisations")} size="small">
            <Table<Realisation>
              rowKey="provider_id"
              size="small"
              columns={realisationColumns}
              dataSource={segment.realisations}
              pagination={false}
              locale={{ emptyText: t("network:segments.noPools") }}
              data-testid="realisation-table"
            />
          </Card>
          <Card
            title={t("network:segment.subnets")}
            size="small"
            extra={
              writable && (
                <Button size="small" icon={<PlusOutlined />} onClick={() => setAdding("subnet")} data-testid="add-subnet">
                  {t("network:subnets.create.button")}
                </Button>
              )
            }
          >
            <ErrorAlert error={subnets.error} style={{ marginBottom: 12 }} />
            <Table<Subnet>
              rowKey="id"
              size="small"
              columns={subnetColumns}
              dataSource={subnets.items ?? []}
              loading={subnets.loading}
              pagination={false}
              scroll={{ x: "max-content" }}
              locale={{ emptyText: t("network:subnets.empty") }}
              data-testid="subnet-table"
            />
          </Card>
          {can("list_ports") && (
            <Card
              title={t("network:segment.ports")}
              size="small"
              extra={
                can("create_port") && (subnets.items?.length ?? 0) > 0 && (
                  <Button size="small" icon={<PlusOutlined />} onClick={() => setAdding("port")} data-testid="add-port">
                    {t("network:ports.create.button")}
                  </Button>
                )
              }
            >
              <ErrorAlert error={ports.error} style={{ marginBottom: 12 }} />
              <Table<NetPort>
                rowKey="id"
                size="small"
                columns={portColumns}
                dataSource={ports.items ?? []}
                loading={ports.loading}
                pagination={false}
                scroll={{ x: "max-content" }}
                locale={{ emptyText: t("network:ports.empty") }}
                data-testid="port-table"
              />
            </Card>
          )}
          <AddSubnet segment={segment} open={adding === "subnet"} onClose={() => setAdding(null)} onAdded={() => { setAdding(null); load(); }} />
          <AddPort
            segment={segment}
            subnets={subnets.items ?? []}
            open={adding === "port"}
            onClose={() => setAdding(null)}
            onAdded={() => {
              setAdding(null);
              load();
            }}
          />
        </Space>
      )}
    </>
  );
}
