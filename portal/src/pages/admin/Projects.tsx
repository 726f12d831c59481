/**
 * Projects, and for the one selected: its members and their roles, its grants (the
 * pools, zones and networks it may use) and its quotas against what it uses.
 * Platform admins manage every project; a project admin manages the members of the
 * project they are logged in to and reads its grants and quotas.
 */
import { DeleteOutlined, PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import {
  App,
  Button,
  Card,
  Col,
  Empty,
  Flex,
  Form,
  Input,
  InputNumber,
  Modal,
  Progress,
  Row,
  Select,
  Space,
  Table,
  Tabs,
  Tag,
  Typography,
} from "antd";
import type { TableColumnsType } from "antd";
import { useCallback, useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { useSearchParams } from "react-router-dom";

import { api, path } from "../../api/client";
import { useNetworks, useProviders } from "../../api/lookups";
import type { Grant, GrantKind, Member, NetworkListed, Project, QuotaName, QuotaUsage, RoleName, User } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { useFormat } from "../../i18n/format";
import { useSubmit } from "../../api/useSubmit";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ROLES: RoleName[] = ["reader", "member", "project-admin"];
const GRANT_KINDS: GrantKind[] = ["provider", "zone", "network"];
const QUOTAS: QuotaName[] = ["vms", "vcpus", "ram_mib", "disk_gib", "floating_ips", "snapshots"];
/** Limits are set in the API's units; the table shows sizes as sizes. */
const QUOTA_UNITS: Partial<Record<QuotaName, string>> = { ram_mib: "MiB", disk_gib: "GiB" };

/** A list the API returns in full (no paging), reloaded on demand. */
function useLoaded<T>(url: string | null) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => {
    if (!url) return;
    api
      .get<T>(url)
      .then((body) => {
        setData(body);
        setError(null);
      })
      .catch(setError);
  }, [url]);
  useEffect(() => {
    setData(null);
    load();
  }, [load]);
  return { data, error, load };
}

function CreateProject({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: (p: Project) => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<{ name: string; description: string }>();
  const { busy, error, submit } = useSubmit();

  const onOk = async () => {
    const values = await form.validateFields();
    await submit(async () => {
      const created = await api.post<Project>("/v1/projects", { name: values.name, description: values.description ?? "" });
      form.resetFields();
      onCreated(created);
    });
  };

  return (
    <Modal
      open={open}
      title={t("admin:projects.create.title")}
      onCancel={onClose}
      onOk={() => void onOk()}
      okText={t("common:action.create")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      okButtonProps={{ id: "create-project-ok" }}
    >
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Form form={form} layout="vertical">
        <Form.Item
          name="name"
          label={t("admin:projects.field.name")}
          rules={[{ required: true, pattern: NAME, message: t("admin:validation.name") }]}
        >
          <Input data-testid="project-name" />
        </Form.Item>
        <Form.Item name="description" label={t("admin:projects.field.description")}>
          <Input.TextArea rows={2} maxLength={1024} data-testid="project-description" />
        </Form.Item>
      </Form>
    </Modal>
  );
}

function Members({ project, manage }: { project: Project; manage: boolean }) {
  const { t } = useTranslation();
  const notifyError = useNotifyError();
  const { message } = App.useApp();
  const members = useLoaded<Member[]>(path`/v1/projects/${project.id}/members`);
  const users = useLoaded<User[]>(manage ? "/v1/users" : null);
  const [userId, setUserId] = useState<string | undefined>();
  const [role, setRole] = useState<RoleName>("member");

  const assign = async (user: string, newRole: RoleName, name: string) => {
    try {
      await api.put(path`/v1/projects/${project.id}/members/${user}`, { role: newRole });
      message.success(t("admin:members.assigned", { user: name, role: t(`common:role.${newRole}`) }));
      members.load();
    } catch (err) {
      notifyError(err);
    }
  };
  const remove = async (member: Member) => {
    try {
      await api.delete(path`/v1/projects/${project.id}/members/${member.user_id}`);
      members.load();
    } catch (err) {
      notifyError(err);
    }
  };

  const columns: TableColumnsType<Member> = [
    { title: t("admin:members.field.user"), dataIndex: "user_name" },
    {
      title: t("admin:members.field.role"),
      dataIndex: "role",
      render: (r: RoleName, m) =>
        manage ? (
          <Select<RoleName>
            value={r}
            style={{ width: 160 }}
            onChange={(value) => void assign(m.user_id, value, m.user_name)}
            options={ROLES.map((value) => ({ value, label: t(`common:role.${value}`) }))}
            aria-label={t("admin:members.field.role")}
          />
        ) : (
          <Tag>{t(`common:role.${r}`)}</Tag>
        ),
    },
    ...(manage
      ? [
          {
            title: "",
            key: "actions",
            width: 80,
            render: (_: unknown, m: Member) => (
              <Button size="small" danger icon={<DeleteOutlined />} onClick={() => void remove(m)}>
                {t("admin:members.remove")}
              </Button>
            ),
          },
        ]
      : []),
  ];

  const memberIds = new Set((members.data ?? []).map((m) => m.user_id));
  const candidates = (users.data ?? []).filter((u) => !memberIds.has(u.id));
  return (
    <>
      <ErrorAlert error={members.error ?? users.error} style={{ marginBottom: 12 }} />
      {manage && (
        <Flex gap={8} wrap="wrap" style={{ marginBottom: 12 }}>
          <Select
            showSearch
            optionFilterProp="label"
            placeholder={t("admin:members.pickUser")}
            value={userId}
            onChange={setUserId}
            options={candidates.map((u) => ({ value: u.id, label: u.name }))}
            style={{ width: 220 }}
            data-testid="member-user"
          />
          <Select<RoleName>
            value={role}
            onChange={setRole}
            options={ROLES.map((value) => ({ value, label: t(`common:role.${value}`) }))}
            style={{ width: 160 }}
            data-testid="member-role"
          />
          <Button
            type="primary"
            icon={<PlusOutlined />}
            disabled={!userId}
            data-testid="member-add"
            onClick={() => {
              const user = candidates.find((u) => u.id === userId);
              if (user) void assign(user.id, role, user.name).then(() => setUserId(undefined));
            }}
          >
            {t("admin:members.add")}
          </Button>
        </Flex>
      )}
      <Table<Member>
        rowKey="user_id"
        size="small"
        columns={columns}
        dataSource={members.data ?? []}
        loading={members.data === null && !members.error}
        pagination={false}
        locale={{ emptyText: t("admin:members.empty") }}
        data-testid="member-table"
      />
    </>
  );
}

function Grants({ project }: { project: Project }) {
  const { t } = useTranslation();
  const f = useFormat();
  const { can } = useAuth();
  const notifyError = useNotifyError();
  const grants = useLoaded<Grant[]>(path`/v1/projects/${project.id}/grants`);
  const providers = useProviders(can("list_providers"));
  const adding = can("add_grant");
  const networks = useNetworks(null, can("list_networks"));
  const [kind, setKind] = useState<GrantKind>("provider");
  const [target, setTarget] = useState<string | undefined>();

  // Targets by kind, named as an operator knows them; zones are those of the pools.
  const targets = useMemo(() => {
    const zones = new Map<string, string>();
    for (const p of providers.items) zones.set(p.zone_id, `${p.region} / ${p.zone}`);
    const pools = new Map(providers.items.map((p) => [p.id, p.name]));
    return {
      provider: pools,
      zone: zones,
      network: new Map(
        (networks.items as NetworkListed[]).map((n) => [n.id, `${n.provider_name ?? pools.get(n.provider_id) ?? ""} / ${n.name}`]),
      ),
    } satisfies Record<GrantKind, Map<string, string>>;
  }, [providers.items, networks.items]);

  const add = async () => {
    if (!target) return;
    try {
      await api.put(path`/v1/projects/${project.id}/grants/${kind}/${target}`);
      setTarget(undefined);
      grants.load();
    } catch (err) {
      notifyError(err);
    }
  };
  const remove = async (g: Grant) => {
    try {
      await api.delete(path`/v1/projects/${project.id}/grants/${g.kind}/${g.target_id}`);
      grants.load();
    } catch (err) {
      notifyError(err);
    }
  };

  const granted = new Set((grants.data ?? []).filter((g) => g.kind === kind).map((g) => g.target_id));
  const columns: TableColumnsType<Grant> = [
    { title: t("admin:grants.field.kind"), dataIndex: "kind", render: (k: GrantKind) => <Tag>{t(`admin:grants.kind.${k}`)}</Tag> },
    {
      title: t("admin:grants.field.target"),
      dataIndex: "target_id",
      render: (id: string, g) => targets[g.kind].get(id) ?? id,
    },
    { title: t("admin:grants.field.since"), dataIndex: "created_at", render: (iso: string) => f.dateTime(iso) },
    ...(can("remove_grant")
      ? [
          {
            title: "",
            key: "actions",
            width: 80,
            render: (_: unknown, g: Grant) => (
              <Button size="small" danger icon={<DeleteOutlined />} onClick={() => void remove(g)}>
                {t("admin:grants.revoke")}
              </Button>
            ),
          },
        ]
      : []),
  ];

  return (
    <>
      <Typography.Paragraph type="secondary">{t("admin:grants.intro")}</Typography.Paragraph>
      <ErrorAlert error={grants.error} style={{ marginBottom: 12 }} />
      {adding && (
        <Flex gap={8} wrap="wrap" style={{ marginBottom: 12 }}>
          <Select<GrantKind>
            value={kind}
            onChange={(value) => {
              setKind(value);
              setTarget(undefined);
            }}
            options={GRANT_KINDS.map((value) => ({ value, label: t(`admin:grants.kind.${value}`) }))}
            style={{ width: 160 }}
            data-testid="grant-kind"
          />
          <Select
            showSearch
            optionFilterProp="label"
            placeholder={t("admin:grants.pickTarget")}
            value={target}
            onChange={setTarget}
            options={[...targets[kind]]
              .filter(([id]) => !granted.has(id))
              .map(([value, label]) => ({ value, label }))}
            style={{ width: 280 }}
            data-testid="grant-target"
          />
          <Button type="primary" icon={<PlusOutlined />} disabled={!target} onClick={() => void add()} data-testid="grant-add">
            {t("admin:grants.add")}
          </Button>
        </Flex>
      )}
      <Table<Grant>
        rowKey={(g) => `${g.kind}/${g.target_id}`}
        size="small"
        columns={columns}
        dataSource={grants.data ?? []}
        loading={grants.data === null && !grants.error}
        pagination={false}
        locale={{ emptyText: t("admin:grants.empty") }}
        data-testid="grant-table"
      />
    </>
  );
}

function Quotas({ project }: { project: Project }) {
  const { t } = useTranslation();
  const f = useFormat();
  const { message } = App.useApp();
  const usage = useLoaded<{ quotas: QuotaUsage[] }>(path`/v1/projects/${project.id}/usage`);
  const [editing, setEditing] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [form] = Form.useForm<Record<QuotaName, number | null>>();

  // Amounts in the quota's own unit: MiB of memory and GiB of disk read better as sizes.
  const amount = (quota: QuotaName, value: number | null) => {
    if (value === null) return t("admin:quotas.unlimited");
    if (quota === "ram_mib") return f.mib(value);
    if (quota === "disk_gib") return f.bytes(value * 1024 ** 3);
    return f.number(value);
  };

  const startEdit = () => {
    form.setFieldsValue(Object.fromEntries((usage.data?.quotas ?? []).map((q) => [q.quota, q.limit])));
    setError(null);
    setEditing(true);
  };
  const save = async () => {
    const values = await form.validateFields();
    setBusy(true);
    try {
      await api.put(
        path`/v1/projects/${project.id}/quota`,
        Object.fromEntries(QUOTAS.map((q) => [q, values[q] ?? null])),
      );
      setEditing(false);
      message.success(t("admin:quotas.saved", { project: project.name }));
      usage.load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const columns: TableColumnsType<QuotaUsage> = [
    { title: t("admin:quotas.field.quota"), dataIndex: "quota", render: (q: QuotaName) => t(`admin:quotas.name.${q}`) },
    { title: t("admin:quotas.field.limit"), dataIndex: "limit", render: (v: number | null, q) => amount(q.quota, v) },
    { title: t("admin:quotas.field.inUse"), dataIndex: "in_use", render: (v: number, q) => amount(q.quota, v) },
    { title: t("admin:quotas.field.reserved"), dataIndex: "reserved", render: (v: number, q) => amount(q.quota, v) },
    { title: t("admin:quotas.field.free"), dataIndex: "free", render: (v: number | null, q) => amount(q.quota, v) },
    {
      title: t("admin:quotas.field.usage"),
      key: "usage",
      width: 180,
      render: (_: unknown, q) =>
        q.limit === null ? (
          "—"
        ) : (
          <Progress
            size="small"
            percent={q.limit > 0 ? Math.min(100, Math.round(((q.in_use + q.reserved) / q.limit) * 100)) : 100}
            status={q.free !== null && q.free <= 0 ? "exception" : "normal"}
          />
        ),
    },
  ];

  return (
    <>
      <ErrorAlert error={usage.error} style={{ marginBottom: 12 }} />
      <Can op="set_quota">
        <Flex justify="flex-end" style={{ marginBottom: 12 }}>
          <Button onClick={startEdit} disabled={!usage.data} data-testid="quota-edit">
            {t("admin:quotas.edit")}
          </Button>
        </Flex>
      </Can>
      <Table<QuotaUsage>
        rowKey="quota"
        size="small"
        columns={columns}
        dataSource={usage.data?.quotas ?? []}
        loading={usage.data === null && !usage.error}
        pagination={false}
        data-testid="quota-table"
      />
      <Modal
        open={editing}
        title={t("admin:quotas.editTitle", { project: project.name })}
        onCancel={() => setEditing(false)}
        onOk={() => void save()}
        okText={t("common:action.save")}
        cancelText={t("common:action.cancel")}
        confirmLoading={busy}
        okButtonProps={{ id: "quota-save" }}
      >
        <Typography.Paragraph type="secondary">{t("admin:quotas.editHelp")}</Typography.Paragraph>
        <ErrorAlert error={error} style={{ marginBottom: 16 }} />
        <Form form={form} layout="horizontal" labelCol={{ span: 10 }}>
          {QUOTAS.map((q) => (
            <Form.Item key={q} name={q} label={t(`admin:quotas.name.${q}`)}>
              <InputNumber
                min={0}
                precision={0}
                suffix={QUOTA_UNITS[q]}
                style={{ width: 220 }}
                placeholder={t("admin:quotas.unlimited")}
                data-testid={`quota-input-${q}`}
              />
            </Form.Item>
          ))}
        </Form>
      </Modal>
    </>
  );
}

export default function Projects() {
  const { t } = useTranslation();
  const f = useFormat();
  const { principal, can } = useAuth();
  const { message, modal } = App.useApp();
  const notifyError = useNotifyError();
  const projects = useLoaded<Project[]>("/v1/projects");
  const [params, setParams] = useSearchParams();
  const [creating, setCreating] = useState(false);
  const selectedId = params.get("project");
  const selected = projects.data?.find((p) => p.id === selectedId) ?? null;

  const select = (id: string | null) => setParams(id ? { project: id } : {}, { replace: true });

  const remove = (project: Project) =>
    modal.confirm({
      title: t("admin:projects.delete.confirm", { name: project.name }),
      content: t("admin:projects.delete.detail"),
      okText: t("common:action.delete"),
      okButtonProps: { danger: true },
      cancelText: t("common:action.cancel"),
      onOk: async () => {
        try {
          await api.delete(path`/v1/projects/${project.id}`);
          message.success(t("admin:projects.delete.done", { name: project.name }));
          if (project.id === selectedId) select(null);
          projects.load();
        } catch (err) {
          notifyError(err);
        }
      },
    });

  const columns: TableColumnsType<Project> = [
    {
      title: t("admin:projects.field.name"),
      dataIndex: "name",
      render: (name: string, p) => <Typography.Link onClick={() => select(p.id)}>{name}</Typography.Link>,
    },
    { title: t("admin:projects.field.description"), dataIndex: "description", ellipsis: true },
    { title: t("admin:projects.field.created"), dataIndex: "created_at", render: (iso: string) => f.date(iso) },
    ...(can("delete_project")
      ? [
          {
            title: "",
            key: "actions",
            width: 60,
            render: (_: unknown, p: Project) => (
              <Button
                size="small"
                type="text"
                danger
                icon={<DeleteOutlined />}
                aria-label={t("common:action.delete")}
                onClick={(event) => {
                  event.stopPropagation();
                  remove(p);
                }}
              />
            ),
          },
        ]
      : []),
  ];

  // A project admin manages the members of the project they are logged in to.
  const manageMembers =
    selected !== null && (principal?.is_admin || (can("assign_role") && principal?.project_id === selected.id));

  return (
    <>
      <PageHeader
        title={t("admin:projects.title")}
        subtitle={t("admin:projects.subtitle")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={projects.load}>
              {t("common:action.refresh")}
            </Button>
            <Can op="create_project">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)} data-testid="create-project">
                {t("admin:projects.create.button")}
              </Button>
            </Can>
          </>
        }
      />
      <ErrorAlert error={projects.error} style={{ marginBottom: 12 }} />
      <Row gutter={[16, 16]}>
        <Col xs={24} xl={9}>
          <Table<Project>
            rowKey="id"
            size="middle"
            columns={columns}
            dataSource={projects.data ?? []}
            loading={projects.data === null && !projects.error}
            pagination={{ pageSize: 20, hideOnSinglePage: true }}
            locale={{ emptyText: t("admin:projects.empty") }}
            onRow={(p) => ({ onClick: () => select(p.id), style: { cursor: "pointer" } })}
            rowClassName={(p) => (p.id === selectedId ? "ant-table-row-selected" : "")}
            data-testid="project-table"
          />
        </Col>
        <Col xs={24} xl={15}>
          {selected ? (
            <Card
              title={
                <Space>
                  {selected.name}
                  <Typography.Text type="secondary" style={{ fontWeight: "normal" }}>
                    {selected.description}
                  </Typography.Text>
                </Space>
              }
              data-testid="project-detail"
            >
              <Tabs
                destroyOnHidden
                items={[
                  {
                    key: "members",
                    label: t("admin:members.tab"),
                    children: <Members key={selected.id} project={selected} manage={manageMembers} />,
                  },
                  { key: "grants", label: t("admin:grants.tab"), children: <Grants key={selected.id} project={selected} /> },
                  { key: "quotas", label: t("admin:quotas.tab"), children: <Quotas key={selected.id} project={selected} /> },
                ]}
              />
            </Card>
          ) : (
            <Card>
              <Empty description={t("admin:projects.pick")} />
            </Card>
          )}
        </Col>
      </Row>
      <CreateProject
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={(p) => {
          setCreating(false);
          message.success(t("admin:projects.create.done", { name: p.name }));
          projects.load();
          select(p.id);
        }}
      />
    </>
  );
}
