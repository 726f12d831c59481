/**
 * Pools (vCenters and KVM hosts): reachability, how old their inventory is, sync now;
 * administrators add one (the server tests the connection first) or remove one.
 */
import { PlusOutlined, ReloadOutlined, SyncOutlined } from "@ant-design/icons";
import { Alert, App, Button, Form, Input, Modal, Radio, Space, Switch, Table, Tag, Tooltip, Typography } from "antd";
import type { TableProps } from "antd";
import { useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import { api, path } from "../api/client";
import type { Provider, Task } from "../api/types";
import { Can, useAuth } from "../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../components/ErrorAlert";
import { PageHeader } from "../components/PageHeader";
import { PoolStatusTag } from "../components/StateTags";
import { useFormat } from "../i18n/format";
import { useTaskUpdates } from "../tasks/TaskContext";
import { useTaskAction } from "../tasks/useTaskAction";
import { useSubmit } from "../api/useSubmit";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

interface AddForm {
  name: string;
  kind: "vsphere" | "libvirt";
  url: string;
  username?: string;
  password?: string;
  verify_tls: boolean;
  region: string;
  zone: string;
}

function AddPool({ open, onClose, onAdded }: { open: boolean; onClose: () => void; onAdded: (p: Provider) => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<AddForm>();
  const kind = Form.useWatch("kind", form) ?? "vsphere";
  const { busy, error, setError, submit } = useSubmit();

  const onOk = async () => {
    const values = await form.validateFields();
    await submit(async () => {
      const added = await api.post<Provider>("/v1/providers", {
        ...values,
        username: values.username || undefined,
        password: values.password || undefined,
        verify_tls: values.kind === "vsphere" ? values.verify_tls : true,
      });
      onAdded(added);
    });
  };

  return (
    <Modal
      open={open}
      title={t("pools:add.title")}
      onCancel={onClose}
      afterClose={() => {
        form.resetFields();
        setError(null);
      }}
      onOk={() => void onOk()}
      okText={busy ? t("pools:add.testing") : t("pools:add.submit")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      okButtonProps={{ id: "add-pool-ok" }}
      width={560}
    >
      <Typography.Paragraph type="secondary">{t("pools:add.intro")}</Typography.Paragraph>
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Form<AddForm>
        form={form}
        layout="vertical"
        initialValues={{ kind: "vsphere", verify_tls: true, region: "default", zone: "default" }}
      >
        <Form.Item name="kind" label={t("pools:field.kind")}>
          <Radio.Group
            optionType="button"
            options={[
              { value: "vsphere", label: t("pools:kind.vsphere") },
              { value: "libvirt", label: t("pools:kind.libvirt") },
            ]}
          />
        </Form.Item>
        <Form.Item
          name="name"
          label={t("pools:field.name")}
          rules={[{ required: true, pattern: NAME, message: t("pools:validation.name") }]}
        >
          <Input data-testid="pool-name" />
        </Form.Item>
        <Form.Item
          name="url"
          label={t("pools:field.url")}
          extra={kind === "vsphere" ? t("pools:add.urlHelpVsphere") : t("pools:add.urlHelpLibvirt")}
          rules={[{ required: true, message: t("pools:validation.url") }]}
        >
          <Input
            placeholder={kind === "vsphere" ? "https://vcenter.example.org/sdk" : "qemu+tcp://10.0.0.3/system"}
            data-testid="pool-url"
          />
        </Form.Item>
        <Space.Compact block>
          <Form.Item name="username" label={t("pools:field.username")} style={{ flex: 1, marginRight: 8 }}>
            <Input autoComplete="off" data-testid="pool-username" />
          </Form.Item>
          <Form.Item name="password" label={t("pools:field.password")} style={{ flex: 1 }}>
            <Input.Password autoComplete="new-password" data-testid="pool-password" />
          </Form.Item>
        </Space.Compact>
        {kind === "vsphere" && (
          <Form.Item name="verify_tls" label={t("pools:field.verifyTls")} valuePropName="checked" extra={t("pools:add.verifyHelp")}>
            <Switch data-testid="pool-verify-tls" />
          </Form.Item>
        )}
        <Space.Compact block>
          <Form.Item
            name="region"
            label={t("pools:field.region")}
            rules={[{ required: true, pattern: NAME, message: t("pools:validation.name") }]}
            style={{ flex: 1, marginRight: 8 }}
          >
            <Input />
          </Form.Item>
          <Form.Item
            name="zone"
            label={t("pools:field.zone")}
            rules={[{ required: true, pattern: NAME, message: t("pools:validation.name") }]}
            style={{ flex: 1 }}
          >
            <Input />
          </Form.Item>
        </Space.Compact>
      </Form>
    </Modal>
  );
}

export default function Pools() {
  const { t } = useTranslation();
  const f = useFormat();
  const { can, principal } = useAuth();
  const { message, modal } = App.useApp();
  const notifyError = useNotifyError();
  const { submit } = useTaskAction();
  const [pools, setPools] = useState<Provider[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [adding, setAdding] = useState(false);
  const [, setTick] = useState(0);

  const load = useCallback(() => {
    api
      .get<Provider[]>("/v1/providers")
      .then((list) => {
        setPools(list);
        setError(null);
      })
      .catch(setError);
  }, []);
  useEffect(load, [load]);
  // Ages ("synced 3 minutes ago") move on by themselves; so does the server's view of them.
  useEffect(() => {
    const timer = window.setInterval(() => setTick((n) => n + 1), 30000);
    return () => window.clearInterval(timer);
  }, []);
  useTaskUpdates((task: Task) => {
    if (task.kind === "provider.sync" && (task.state === "succeeded" || task.state === "failed")) load();
  });

  const sync = (pool: Provider) =>
    void submit({ submit: () => api.post<Task>(path`/v1/providers/${pool.id}/sync`) });

  const remove = (pool: Provider) =>
    modal.confirm({
      title: t("pools:delete.confirm", { name: pool.name }),
      content: t("pools:delete.detail"),
      okText: t("common:action.delete"),
      okButtonProps: { danger: true },
      cancelText: t("common:action.cancel"),
      onOk: async () => {
        try {
          await api.delete(path`/v1/providers/${pool.id}`);
          message.success(t("pools:delete.done", { name: pool.name }));
          load();
        } catch (err) {
          notifyError(err);
        }
      },
    });

  const columns: TableProps<Provider>["columns"] = [
    {
      title: t("pools:field.name"),
      dataIndex: "name",
      width: 240,
      render: (name: string, p) => (
        <Space direction="vertical" size={0}>
          <Link to={`/vms?provider_id=${encodeURIComponent(p.id)}`}>{name}</Link>
          {p.url && <Typography.Text type="secondary" style={{ fontSize: 12 }}>{p.url}</Typography.Text>}
        </Space>
      ),
    },
    { title: t("pools:field.kind"), dataIndex: "kind", render: (kind: string) => t(`pools:kind.${kind}`, { defaultValue: kind }) },
    { title: t("pools:field.zone"), key: "zone", render: (_: unknown, p) => `${p.region} / ${p.zone}` },
    {
      title: t("pools:field.status"),
      dataIndex: "status",
      render: (status: Provider["status"], p) => (
        <Tooltip title={p.status_message}>
          <span data-testid={`pool-status-${p.name}`}>
            <PoolStatusTag status={status} />
          </span>
        </Tooltip>
      ),
    },
    ...(principal?.is_admin
      ? [
          {
            title: t("pools:field.product"),
            key: "product",
            ellipsis: true,
            render: (_: unknown, p: Provider) => [p.product, p.version].filter(Boolean).join(" ") || "—",
          },
        ]
      : []),
    {
      title: t("pools:field.lastSync"),
      key: "lastSync",
      render: (_: unknown, p) => (
        <Tooltip title={p.last_sync_ok_at ? f.dateTime(p.last_sync_ok_at) : undefined}>
          <span data-testid={`pool-age-${p.name}`}>
            {p.inventory_age_s === null ? t("pools:neverSynced") : f.ago(p.inventory_age_s)}
          </span>
        </Tooltip>
      ),
    },
    {
      title: t("pools:field.syncTook"),
      dataIndex: "last_sync_seconds",
      render: (s: number | null) => f.duration(s),
    },
    {
      title: "",
      key: "actions",
      render: (_: unknown, p) => (
        <Space>
          {can("sync_provider") && (
            <Button size="small" icon={<SyncOutlined />} onClick={() => sync(p)} data-testid={`pool-sync-${p.name}`}>
              {t("pools:sync")}
            </Button>
          )}
          {can("delete_provider") && (
            <Button size="small" danger onClick={() => remove(p)}>
              {t("common:action.delete")}
            </Button>
          )}
        </Space>
      ),
    },
  ];

  const unreachable = (pools ?? []).filter((p) => p.status === "unreachable");
  return (
    <>
      <PageHeader
        title={t("pools:title")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={load}>
              {t("common:action.refresh")}
            </Button>
            <Can op="add_provider">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => setAdding(true)} data-testid="add-pool">
                {t("pools:add.button")}
              </Button>
            </Can>
          </>
        }
      />
      <ErrorAlert error={error} style={{ marginBottom: 12 }} />
      {unreachable.length > 0 && (
        <Alert
          type="warning"
          showIcon
          style={{ marginBottom: 12 }}
          message={t("pools:unreachableBanner", { count: unreachable.length, names: unreachable.map((p) => p.name).join(", ") })}
        />
      )}
      <Table<Provider>
        rowKey="id"
        columns={columns}
        dataSource={pools ?? []}
        loading={pools === null && !error}
        pagination={false}
        locale={{ emptyText: t("pools:empty") }}
        data-testid="pool-table"
        rowClassName={(p) => (p.status === "unreachable" ? "pool-unreachable" : "")}
        expandable={{
          rowExpandable: (p) => Object.keys(p.capabilities).length > 0,
          expandedRowRender: (p) => (
            <Space wrap>
              {Object.entries(p.capabilities).map(([cap, on]) => (
                <Tag key={cap} color={on ? "green" : "default"}>
                  {t(`pools:capability.${cap}`, { defaultValue: cap })}
                </Tag>
              ))}
            </Space>
          ),
        }}
      />
      <AddPool
        open={adding}
        onClose={() => setAdding(false)}
        onAdded={(p) => {
          setAdding(false);
          message.success(t("pools:add.done", { name: p.name }));
          load();
        }}
      />
    </>
  );
}
