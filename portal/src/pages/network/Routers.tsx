/**
 * Routers: their interfaces on the project's subnets (each holding the subnet's gateway
 * address), and their gateway on an external segment with SNAT on or off.
 */
import { DeleteOutlined, PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { App, Button, Form, Input, Modal, Select, Space, Switch, Table, Tag, Typography } from "antd";
import type { TableProps } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import { api, path } from "../../api/client";
import type { Router, Segment, Subnet } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { NAME, byId, useList, useProjectLabel } from "./shared";
import { useSubmit } from "../../api/useSubmit";

interface RouterForm {
  name: string;
  external_segment_id?: string;
  enable_snat: boolean;
}

/** Create a router, or (with `router`) set its gateway. */
function RouterModal({
  router,
  open,
  externals,
  onClose,
  onDone,
}: {
  router: Router | null;
  open: boolean;
  externals: Segment[];
  onClose: () => void;
  onDone: () => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<RouterForm>();
  const { busy, error, setError, submit } = useSubmit();

  useEffect(() => {
    if (open) form.setFieldsValue({ enable_snat: router?.enable_snat ?? true, external_segment_id: router?.external_segment_id ?? undefined });
  }, [open, router, form]);

  const onOk = async () => {
    const v = await form.validateFields();
    await submit(async () => {
      if (router) {
        await api.put(path`/v1/routers/${router.id}/gateway`, { segment_id: v.external_segment_id, enable_snat: v.enable_snat });
      } else {
        await api.post<Router>("/v1/routers", {
          name: v.name,
          external_segment_id: v.external_segment_id || undefined,
          enable_snat: v.enable_snat,
        });
      }
      onDone();
    });
  };

  return (
    <Modal
      open={open}
      title={router ? t("network:routers.gateway.title", { name: router.name }) : t("network:routers.create.title")}
      onCancel={onClose}
      afterClose={() => {
        form.resetFields();
        setError(null);
      }}
      onOk={() => void onOk()}
      okText={router ? t("common:action.save") : t("common:action.create")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      okButtonProps={{ id: "router-ok" }}
    >
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Form<RouterForm> form={form} layout="vertical" initialValues={{ enable_snat: true }}>
        {!router && (
          <Form.Item name="name" label={t("network:field.name")} rules={[{ required: true, pattern: NAME, message: t("network:validation.name") }]}>
            <Input data-testid="router-name" />
          </Form.Item>
        )}
        <Form.Item
          name="external_segment_id"
          label={t("network:field.externalGateway")}
          extra={t("network:routers.create.gatewayHelp")}
          rules={router ? [{ required: true, message: t("network:validation.external") }] : []}
        >
          <Select
            allowClear={!router}
            options={externals.map((s) => ({ value: s.id, label: s.name }))}
            data-testid="router-external"
          />
        </Form.Item>
        <Form.Item name="enable_snat" label={t("network:field.snat")} valuePropName="checked" extra={t("network:routers.create.snatHelp")}>
          <Switch data-testid="router-snat" />
        </Form.Item>
      </Form>
    </Modal>
  );
}

function Interfaces({
  router,
  subnets,
  segments,
  onChange,
}: {
  router: Router;
  subnets: Subnet[];
  segments: Map<string, Segment>;
  onChange: () => void;
}) {
  const { t } = useTranslation();
  const { can } = useAuth();
  const notifyError = useNotifyError();
  const [chosen, setChosen] = useState<string | undefined>();
  const byIdSubnets = byId(subnets);
  const attached = new Set(router.interfaces.map((i) => i.subnet_id));
  const candidates = subnets.filter((s) => !attached.has(s.id) && !segments.get(s.segment_id)?.external);

  const add = async () => {
    if (!chosen) return;
    try {
      await api.put(path`/v1/routers/${router.id}/interfaces/${chosen}`);
      setChosen(undefined);
      onChange();
    } catch (err) {
      notifyError(err);
    }
  };
  const remove = async (subnetId: string) => {
    try {
      await api.delete(path`/v1/routers/${router.id}/interfaces/${subnetId}`);
      onChange();
    } catch (err) {
      notifyError(err);
    }
  };

  const columns: TableProps<Router["interfaces"][number]>["columns"] = [
    {
      title: t("network:field.subnet"),
      dataIndex: "subnet_id",
      render: (id: string) => {
        const s = byIdSubnets.get(id);
        if (!s) return id;
        const seg = segments.get(s.segment_id);
        return (
          <Space size={4}>
            <Typography.Text code>{s.cidr}</Typography.Text>
            {seg && <Link to={`/network/segments/${encodeURIComponent(seg.id)}`}>{seg.name}</Link>}
          </Space>
        );
      },
    },
    { title: t("network:field.ipAddress"), dataIndex: "ip_address" },
    {
      title: "",
      key: "actions",
      render: (_: unknown, i) =>
        can("remove_router_interface") ? (
          <Button size="small" danger onClick={() => void remove(i.subnet_id)}>
            {t("network:routers.interfaces.remove")}
          </Button>
        ) : null,
    },
  ];

  return (
    <Space direction="vertical" style={{ width: "100%" }} data-testid={`router-interfaces-${router.name}`}>
      <Table
        rowKey="port_id"
        size="small"
        columns={columns}
        dataSource={router.interfaces}
        pagination={false}
        locale={{ emptyText: t("network:routers.interfaces.empty") }}
      />
      {can("add_router_interface") && (
        <Space>
          <Select
            style={{ width: 320 }}
            placeholder={t("network:routers.interfaces.choose")}
            value={chosen}
            onChange={setChosen}
            options={candidates.map((s) => ({
              value: s.id,
              label: `${s.cidr} · ${segments.get(s.segment_id)?.name ?? s.segment_id}`,
            }))}
            data-testid={`interface-subnet-${router.name}`}
          />
          <Button icon={<PlusOutlined />} disabled={!chosen} onClick={() => void add()} data-testid={`interface-add-${router.name}`}>
            {t("network:routers.interfaces.add")}
          </Button>
        </Space>
      )}
    </Space>
  );
}

export default function Routers() {
  const { t } = useTranslation();
  const { can, principal } = useAuth();
  const { modal } = App.useApp();
  const notifyError = useNotifyError();
  const projectLabel = useProjectLabel();
  const routers = useList<Router>("/v1/routers");
  const segments = useList<Segment>("/v1/segments");
  const subnets = useList<Subnet>("/v1/subnets");
  const [editing, setEditing] = useState<{ router: Router | null } | null>(null);
  const segmentsById = byId(segments.items);
  const externals = (segments.items ?? []).filter((s) => s.external);

  const reload = () => {
    routers.reload();
    subnets.reload();
  };

  const confirm = (title: string, run: () => Promise<unknown>) =>
    modal.confirm({
      title,
      okText: t("common:action.confirm"),
      okButtonProps: { danger: true, id: "confirm-ok" },
      cancelText: t("common:action.cancel"),
      onOk: async () => {
        try {
          await run();
          reload();
        } catch (err) {
          notifyError(err);
        }
      },
    });

  const columns: TableProps<Router>["columns"] = [
    { title: t("network:field.name"), dataIndex: "name", render: (v: string) => <Typography.Text strong>{v}</Typography.Text> },
    {
      title: t("network:field.externalGateway"),
      key: "gateway",
      render: (_: unknown, r) =>
        r.external_segment_id ? (
          <Space size={4} data-testid={`router-gateway-${r.name}`}>
            <span>{segmentsById.get(r.external_segment_id)?.name ?? r.external_segment_id}</span>
            {r.gateway_ips.map((ip) => (
              <Typography.Text code key={ip}>
                {ip}
              </Typography.Text>
            ))}
          </Space>
        ) : (
          <Typography.Text type="secondary">{t("network:routers.noGateway")}</Typography.Text>
        ),
    },
    {
      title: t("network:field.snat"),
      dataIndex: "enable_snat",
      render: (on: boolean, r) => (r.external_segment_id ? <Tag color={on ? "green" : "default"}>{on ? t("network:on") : t("network:off")}</Tag> : "—"),
    },
    { title: t("network:field.interfaces"), key: "interfaces", align: "right", render: (_: unknown, r) => r.interfaces.length },
    ...(principal?.is_admin
      ? [{ title: t("network:field.project"), key: "project", render: (_: unknown, r: Router) => projectLabel(r.project_id) }]
      : []),
    {
      title: "",
      key: "actions",
      render: (_: unknown, r) => (
        <Space>
          {can("set_router_gateway") && (
            <Button size="small" onClick={() => setEditing({ router: r })} data-testid={`router-set-gateway-${r.name}`}>
              {t("network:routers.gateway.set")}
            </Button>
          )}
          {can("clear_router_gateway") && r.external_segment_id && (
            <Button size="small" onClick={() => confirm(t("network:routers.gateway.clearConfirm", { name: r.name }), () => api.delete(path`/v1/routers/${r.id}/gateway`))}>
              {t("network:routers.gateway.clear")}
            </Button>
          )}
          {can("delete_router") && (
            <Button
              size="small"
              danger
              icon={<DeleteOutlined />}
              onClick={() => confirm(t("network:routers.delete.confirm", { name: r.name }), () => api.delete(path`/v1/routers/${r.id}`))}
            >
              {t("common:action.delete")}
            </Button>
          )}
        </Space>
      ),
    },
  ];

  return (
    <>
      <PageHeader
        title={t("network:routers.title")}
        subtitle={t("network:routers.subtitle")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={reload}>
              {t("common:action.refresh")}
            </Button>
            <Can op="create_router">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing({ router: null })} data-testid="create-router">
                {t("network:routers.create.button")}
              </Button>
            </Can>
          </>
        }
      />
      <ErrorAlert error={routers.error} style={{ marginBottom: 12 }} />
      <Table<Router>
        rowKey="id"
        columns={columns}
        dataSource={routers.items ?? []}
        loading={routers.loading}
        pagination={false}
        scroll={{ x: "max-content" }}
        locale={{ emptyText: t("network:routers.empty") }}
        data-testid="router-table"
        expandable={{
          expandedRowRender: (r) => (
            <Interfaces router={r} subnets={subnets.items ?? []} segments={segmentsById} onChange={reload} />
          ),
          expandRowByClick: false,
        }}
      />
      <RouterModal
        router={editing?.router ?? null}
        open={editing !== null}
        externals={externals}
        onClose={() => setEditing(null)}
        onDone={() => {
          setEditing(null);
          reload();
        }}
      />
    </>
  );
}
