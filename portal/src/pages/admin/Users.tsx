/**
 * Users: platform admins create them (local, or directory users ahead of their first
 * login), enable and disable them, reset their passwords and delete them; a project
 * admin sees the members of their project. Roles are given on the Projects page.
 */
import { PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { App, Button, Dropdown, Form, Input, Modal, Radio, Space, Switch, Table, Tag, Typography } from "antd";
import type { TableColumnsType } from "antd";
import { useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { api, path } from "../../api/client";
import type { User } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { useFormat } from "../../i18n/format";
import { useSubmit } from "../../api/useSubmit";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MIN_PASSWORD = 8;

interface CreateForm {
  name: string;
  display_name?: string;
  email?: string;
  source: "local" | "ldap";
  password?: string;
  is_admin: boolean;
}

function CreateUser({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: (u: User) => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<CreateForm>();
  const source = Form.useWatch("source", form) ?? "local";
  const { busy, error, submit } = useSubmit();

  const onOk = async () => {
    const values = await form.validateFields();
    await submit(async () => {
      const created = await api.post<User>("/v1/users", {
        name: values.name,
        display_name: values.display_name ?? "",
        email: values.email ?? "",
        source: values.source,
        password: values.source === "local" ? values.password : undefined,
        is_admin: values.is_admin,
      });
      form.resetFields();
      onCreated(created);
    });
  };

  return (
    <Modal
      open={open}
      title={t("admin:users.create.title")}
      onCancel={onClose}
      onOk={() => void onOk()}
      okText={t("common:action.create")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      okButtonProps={{ id: "create-user-ok" }}
    >
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Form<CreateForm> form={form} layout="vertical" initialValues={{ source: "local", is_admin: false }}>
        <Form.Item
          name="name"
          label={t("admin:users.field.name")}
          rules={[{ required: true, pattern: NAME, message: t("admin:validation.name") }]}
        >
          <Input autoComplete="off" data-testid="user-name" />
        </Form.Item>
        <Form.Item name="display_name" label={t("admin:users.field.displayName")}>
          <Input maxLength={128} />
        </Form.Item>
        <Form.Item name="email" label={t("admin:users.field.email")} rules={[{ type: "email", message: t("admin:validation.email") }]}>
          <Input maxLength={256} />
        </Form.Item>
        <Form.Item name="source" label={t("admin:users.field.source")}>
          <Radio.Group
            optionType="button"
            options={[
              { value: "local", label: t("admin:users.source.local") },
              { value: "ldap", label: t("admin:users.source.ldap") },
            ]}
          />
        </Form.Item>
        {source === "local" && (
          <Form.Item
            name="password"
            label={t("admin:users.field.password")}
            rules={[{ required: true, min: MIN_PASSWORD, message: t("admin:validation.password", { min: MIN_PASSWORD }) }]}
          >
            <Input.Password autoComplete="new-password" data-testid="user-password" />
          </Form.Item>
        )}
        <Form.Item name="is_admin" label={t("admin:users.field.isAdmin")} valuePropName="checked" extra={t("admin:users.create.adminHelp")}>
          <Switch data-testid="user-is-admin" />
        </Form.Item>
      </Form>
    </Modal>
  );
}

function ResetPassword({ user, onClose }: { user: User | null; onClose: () => void }) {
  const { t } = useTranslation();
  const { message } = App.useApp();
  const [form] = Form.useForm<{ password: string }>();
  const { busy, error, submit } = useSubmit();

  const onOk = async () => {
    if (!user) return;
    const { password } = await form.validateFields();
    await submit(async () => {
      await api.patch(path`/v1/users/${user.id}`, { password });
      form.resetFields();
      message.success(t("admin:users.reset.done", { name: user.name }));
      onClose();
    });
  };

  return (
    <Modal
      open={user !== null}
      title={t("admin:users.reset.title", { name: user?.name ?? "" })}
      onCancel={() => {
        form.resetFields();
        onClose();
      }}
      onOk={() => void onOk()}
      okText={t("admin:users.reset.submit")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      okButtonProps={{ id: "reset-password-ok" }}
    >
      <Typography.Paragraph type="secondary">{t("admin:users.reset.help")}</Typography.Paragraph>
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Form form={form} layout="vertical">
        <Form.Item
          name="password"
          label={t("admin:users.field.newPassword")}
          rules={[{ required: true, min: MIN_PASSWORD, message: t("admin:validation.password", { min: MIN_PASSWORD }) }]}
        >
          <Input.Password autoComplete="new-password" data-testid="reset-password" />
        </Form.Item>
      </Form>
    </Modal>
  );
}

export default function Users() {
  const { t } = useTranslation();
  const f = useFormat();
  const { principal, can } = useAuth();
  const { message, modal } = App.useApp();
  const notifyError = useNotifyError();
  const [users, setUsers] = useState<User[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [creating, setCreating] = useState(false);
  const [resetting, setResetting] = useState<User | null>(null);

  const load = useCallback(() => {
    api
      .get<User[]>("/v1/users")
      .then((list) => {
        setUsers(list);
        setError(null);
      })
      .catch(setError);
  }, []);
  useEffect(load, [load]);

  const setEnabled = async (user: User, enabled: boolean) => {
    try {
      await api.patch(path`/v1/users/${user.id}`, { enabled });
      message.success(
        enabled ? t("admin:users.enabled", { name: user.name }) : t("admin:users.disabled", { name: user.name }),
      );
      load();
    } catch (err) {
      notifyError(err);
    }
  };

  const remove = (user: User) =>
    modal.confirm({
      title: t("admin:users.delete.confirm", { name: user.name }),
      content: t("admin:users.delete.detail"),
      okText: t("common:action.delete"),
      okButtonProps: { danger: true },
      cancelText: t("common:action.cancel"),
      onOk: async () => {
        try {
          await api.delete(path`/v1/users/${user.id}`);
          message.success(t("admin:users.delete.done", { name: user.name }));
          load();
        } catch (err) {
          notifyError(err);
        }
      },
    });

  // Only a platform admin changes another user (the server's rule); nobody disables or
  // deletes themselves from here.
  const manages = (user: User) => Boolean(principal?.is_admin) && user.id !== principal?.user_id;

  const columns: TableColumnsType<User> = [
    {
      title: t("admin:users.field.name"),
      dataIndex: "name",
      render: (name: string, u) => (
        <Space direction="vertical" size={0}>
          <Typography.Text strong>{name}</Typography.Text>
          {u.display_name && <Typography.Text type="secondary">{u.display_name}</Typography.Text>}
        </Space>
      ),
    },
    { title: t("admin:users.field.email"), dataIndex: "email", render: (email: string) => email || "—" },
    { title: t("admin:users.field.source"), dataIndex: "source", render: (s: User["source"]) => t(`admin:users.source.${s}`) },
    {
      title: t("admin:users.field.isAdmin"),
      dataIndex: "is_admin",
      render: (admin: boolean) => (admin ? <Tag color="gold">{t("common:user.platformAdmin")}</Tag> : "—"),
    },
    {
      title: t("admin:users.field.status"),
      key: "status",
      render: (_: unknown, u) => (
        <span data-testid={`user-status-${u.name}`}>
          {!u.enabled ? (
            <Tag color="default">{t("admin:users.status.disabled")}</Tag>
          ) : u.locked ? (
            <Tag color="error">{t("admin:users.status.locked")}</Tag>
          ) : (
            <Tag color="success">{t("admin:users.status.enabled")}</Tag>
          )}
        </span>
      ),
    },
    { title: t("admin:users.field.created"), dataIndex: "created_at", render: (iso: string) => f.date(iso) },
    {
      title: "",
      key: "actions",
      render: (_: unknown, u) =>
        manages(u) && (
          <Space>
            <Button size="small" onClick={() => void setEnabled(u, !u.enabled)} data-testid={`user-toggle-${u.name}`}>
              {u.enabled ? t("admin:users.disable") : t("admin:users.enable")}
            </Button>
            <Dropdown
              menu={{
                items: [
                  ...(u.source === "local"
                    ? [{ key: "reset", label: t("admin:users.reset.button"), onClick: () => setResetting(u) }]
                    : []),
                  ...(can("delete_user")
                    ? [{ key: "delete", danger: true, label: t("common:action.delete"), onClick: () => remove(u) }]
                    : []),
                ],
              }}
            >
              <Button size="small" data-testid={`user-more-${u.name}`}>
                {t("common:action.more")}
              </Button>
            </Dropdown>
          </Space>
        ),
    },
  ];

  return (
    <>
      <PageHeader
        title={t("admin:users.title")}
        subtitle={principal?.is_admin ? t("admin:users.subtitle") : t("admin:users.subtitleProject")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={load}>
              {t("common:action.refresh")}
            </Button>
            <Can op="create_user">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)} data-testid="create-user">
                {t("admin:users.create.button")}
              </Button>
            </Can>
          </>
        }
      />
      <ErrorAlert error={error} style={{ marginBottom: 12 }} />
      <Table<User>
        rowKey="id"
        size="middle"
        columns={columns}
        dataSource={users ?? []}
        loading={users === null && !error}
        pagination={{ pageSize: 50, hideOnSinglePage: true }}
        locale={{ emptyText: t("admin:users.empty") }}
        data-testid="user-table"
      />
      <CreateUser
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={(u) => {
          setCreating(false);
          message.success(t("admin:users.create.done", { name: u.name }));
          load();
        }}
      />
      <ResetPassword user={resetting} onClose={() => setResetting(null)} />
    </>
  );
}
