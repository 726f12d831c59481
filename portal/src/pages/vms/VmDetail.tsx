/** One VM: its facts, disks, NICs (MACs), snapshots, events and tasks, and every change. */
import { PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { Breadcrumb, Button, Card, Descriptions, Form, Input, InputNumber, Result, Select, Space, Table, Tabs, Tag, Typography } from "antd";
import { useCallback, useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router-dom";

import { ApiError, api, path } from "../../api/client";
import { useDatastores, useHosts, useNetworks, useProjects, useProviders } from "../../api/lookups";
import type { Disk, EventEntry, Nic, Page, Snapshot, Task, TaskState, VMDetail } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { ErrorAlert } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { PageLoading } from "../../layout/PageLoading";
import { PowerStateTag, TaskStateTag } from "../../components/StateTags";
import { useFormat } from "../../i18n/format";
import { taskKindLabel } from "../../tasks/labels";
import { useTaskUpdates, useTasks } from "../../tasks/TaskContext";
import { useTaskAction } from "../../tasks/useTaskAction";
import { TaskForm, VM_NAME, VmActions, capable } from "./VmActions";

const MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;
const GIB = 1024 ** 3;

function eventLabel(t: ReturnType<typeof useTranslation>["t"], kind: string): string {
  return t(`common:eventKind.${kind.replace(/\./g, "_")}`, { defaultValue: kind });
}

function DisksTab({ vm, canEdit }: { vm: VMDetail; canEdit: boolean }) {
  const { t } = useTranslation();
  const f = useFormat();
  const { can } = useAuth();
  const { run } = useTaskAction();
  const datastores = useDatastores(vm.provider_id);
  const [adding, setAdding] = useState(false);
  const [growing, setGrowing] = useState<Disk | null>(null);
  const vmPath = path`/v1/vms/${vm.id}`;
  return (
    <>
      {canEdit && can("add_disk") && (
        <Button icon={<PlusOutlined />} onClick={() => setAdding(true)} style={{ marginBottom: 12 }}>
          {t("vms:disk.add")}
        </Button>
      )}
      <Table<Disk>
        rowKey="id"
        size="small"
        pagination={false}
        dataSource={vm.disks}
        locale={{ emptyText: t("vms:disk.none") }}
        columns={[
          { title: t("vms:disk.label"), dataIndex: "label" },
          { title: t("vms:disk.size"), dataIndex: "size_bytes", render: (n: number) => f.bytes(n) },
          {
            title: t("vms:field.datastore"),
            dataIndex: "datastore_id",
            render: (id: string | null) => (id ? (datastores.byId.get(id)?.name ?? id) : "—"),
          },
          { title: t("vms:disk.format"), dataIndex: "format" },
          { title: t("vms:disk.path"), dataIndex: "path", ellipsis: true },
          ...(canEdit
            ? [
                {
                  title: "",
                  key: "actions",
                  render: (_: unknown, disk: Disk) => (
                    <Space>
                      {can("grow_disk") && (
                        <Typography.Link onClick={() => setGrowing(disk)}>{t("vms:disk.grow")}</Typography.Link>
                      )}
                      {can("remove_disk") && (
                        <Typography.Link
                          type="danger"
                          onClick={() =>
                            run({
                              title: t("vms:disk.confirmRemove", { label: disk.label }),
                              content: t("vms:disk.confirmRemoveDetail"),
                              danger: true,
                              submit: () => api.delete<Task>(`${vmPath}/disks/${disk.id}`),
                            })
                          }
                        >
                          {t("common:action.delete")}
                        </Typography.Link>
                      )}
                    </Space>
                  ),
                },
              ]
            : []),
        ]}
      />
      <TaskForm<{ size_gib: number; datastore_id?: string }>
        open={adding}
        title={t("vms:disk.add")}
        onClose={() => setAdding(false)}
        initialValues={{ size_gib: 10 }}
        submit={(values) => api.post<Task>(`${vmPath}/disks`, values)}
      >
        <Form.Item name="size_gib" label={t("vms:disk.sizeGib")} rules={[{ required: true }]}>
          <InputNumber min={1} max={65536} style={{ width: "100%" }} />
        </Form.Item>
        <Form.Item name="datastore_id" label={t("vms:field.datastore")}>
          <Select allowClear options={datastores.items.map((d) => ({ value: d.id, label: d.name }))} />
        </Form.Item>
      </TaskForm>
      <TaskForm<{ size_gib: number }>
        open={growing !== null}
        title={t("vms:disk.growTitle", { label: growing?.label ?? "" })}
        onClose={() => setGrowing(null)}
        initialValues={{ size_gib: growing ? Math.ceil(growing.size_bytes / GIB) + 1 : 1 }}
        submit={(values) => api.post<Task>(`${vmPath}/disks/${growing?.id}/grow`, values)}
      >
        <Form.Item
          name="size_gib"
          label={t("vms:disk.newSizeGib")}
          extra={t("vms:disk.growOnly")}
          rules={[{ required: true }]}
        >
          <InputNumber
            min={growing ? Math.ceil(growing.size_bytes / GIB) : 1}
            max={65536}
            style={{ width: "100%" }}
          />
        </Form.Item>
      </TaskForm>
    </>
  );
}

function NicsTab({ vm, canEdit }: { vm: VMDetail; canEdit: boolean }) {
  const { t } = useTranslation();
  const { can } = useAuth();
  const { run } = useTaskAction();
  const [adding, setAdding] = useState(false);
  const networks = useNetworks(vm.provider_id, adding);
  const vmPath = path`/v1/vms/${vm.id}`;
  return (
    <>
      {canEdit && can("add_nic") && (
        <Button icon={<PlusOutlined />} onClick={() => setAdding(true)} style={{ marginBottom: 12 }}>
          {t("vms:nic.add")}
        </Button>
      )}
      <Table<Nic>
        rowKey="id"
        size="small"
        pagination={false}
        dataSource={vm.nics}
        locale={{ emptyText: t("vms:nic.none") }}
        columns={[
          { title: "#", dataIndex: "position", render: (n: number) => n + 1, width: 48 },
          {
            title: t("vms:nic.mac"),
            dataIndex: "mac",
            render: (mac: string) => <Typography.Text code copyable>{mac}</Typography.Text>,
          },
          { title: t("vms:nic.network"), dataIndex: "network_name" },
          { title: t("vms:nic.model"), dataIndex: "model" },
          ...(canEdit && can("remove_nic")
            ? [
                {
                  title: "",
                  key: "actions",
                  render: (_: unknown, nic: Nic) => (
                    <Typography.Link
                      type="danger"
                      onClick={() =>
                        run({
                          title: t("vms:nic.confirmRemove", { mac: nic.mac }),
                          danger: true,
                          submit: () => api.delete<Task>(`${vmPath}/nics/${nic.id}`),
                        })
                      }
                    >
                      {t("common:action.delete")}
                    </Typography.Link>
                  ),
                },
              ]
            : []),
        ]}
      />
      <TaskForm<{ network_id: string; mac?: string }>
        open={adding}
        title={t("vms:nic.add")}
        onClose={() => setAdding(false)}
        submit={(values) => api.post<Task>(`${vmPath}/nics`, { ...values, mac: values.mac || undefined })}
      >
        <Form.Item
          name="network_id"
          label={t("vms:nic.network")}
          rules={[{ required: true, message: t("vms:validation.network") }]}
        >
          <Select options={networks.items.map((n) => ({ value: n.id, label: n.name }))} />
        </Form.Item>
        <Form.Item
          name="mac"
          label={t("vms:nic.mac")}
          extra={t("vms:nic.macHelp")}
          rules={[{ pattern: MAC, message: t("vms:validation.mac") }]}
        >
          <Input placeholder="52:54:00:aa:bb:cc" />
        </Form.Item>
      </TaskForm>
    </>
  );
}

function SnapshotsTab({ vm, canEdit, reload }: { vm: VMDetail; canEdit: boolean; reload: number }) {
  const { t } = useTranslation();
  const f = useFormat();
  const { can } = useAuth();
  const { run } = useTaskAction();
  const [snapshots, setSnapshots] = useState<Snapshot[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [creating, setCreating] = useState(false);
  const vmPath = path`/v1/vms/${vm.id}`;
  useEffect(() => {
    api
      .get<Snapshot[]>(`${vmPath}/snapshots`)
      .then((list) => {
        setSnapshots(list);
        setError(null);
      })
      .catch(setError);
  }, [vmPath, reload]);
  const snapshotPath = (name: string) => `${vmPath}/snapshots/${encodeURIComponent(name)}`;
  return (
    <>
      {canEdit && can("create_snapshot") && (
        <Button icon={<PlusOutlined />} onClick={() => setCreating(true)} style={{ marginBottom: 12 }}>
          {t("vms:snapshot.create")}
        </Button>
      )}
      <ErrorAlert error={error} style={{ marginBottom: 12 }} />
      <Table<Snapshot>
        rowKey="id"
        size="small"
        pagination={false}
        loading={snapshots === null && !error}
        dataSource={snapshots ?? []}
        locale={{ emptyText: t("vms:snapshot.none") }}
        columns={[
          {
            title: t("vms:snapshot.name"),
            dataIndex: "name",
            render: (name: string, s) => (
              <Space>
                {name}
                {s.is_current && <Tag color="blue">{t("vms:snapshot.current")}</Tag>}
              </Space>
            ),
          },
          { title: t("vms:snapshot.description"), dataIndex: "description", ellipsis: true },
          { title: t("vms:snapshot.created"), dataIndex: "created_at", render: (iso: string | null) => f.dateTime(iso) },
          ...(canEdit
            ? [
                {
                  title: "",
                  key: "actions",
                  render: (_: unknown, s: Snapshot) => (
                    <Space>
                      {can("revert_snapshot") && (
                        <Typography.Link
                          onClick={() =>
                            run({
                              title: t("vms:snapshot.confirmRevert", { name: s.name }),
                              content: t("vms:snapshot.confirmRevertDetail"),
                              danger: true,
                              submit: () => api.post<Task>(`${snapshotPath(s.name)}/revert`),
                            })
                          }
                        >
                          {t("vms:snapshot.revert")}
                        </Typography.Link>
                      )}
                      {can("delete_snapshot") && (
                        <Typography.Link
                          type="danger"
                          onClick={() =>
                            run({
                              title: t("vms:snapshot.confirmDelete", { name: s.name }),
                              danger: true,
                              submit: () => api.delete<Task>(snapshotPath(s.name)),
                            })
                          }
                        >
                          {t("common:action.delete")}
                        </Typography.Link>
                      )}
                    </Space>
                  ),
                },
              ]
            : []),
        ]}
      />
      <TaskForm<{ name: string }>
        open={creating}
        title={t("vms:snapshot.create")}
        onClose={() => setCreating(false)}
        submit={(values) => api.post<Task>(`${vmPath}/snapshots`, values)}
      >
        <Form.Item
          name="name"
          label={t("vms:snapshot.name")}
          rules={[{ required: true, pattern: VM_NAME, message: t("vms:validation.name") }]}
        >
          <Input />
        </Form.Item>
      </TaskForm>
    </>
  );
}

function EventsTab({ events }: { events: EventEntry[] | null }) {
  const { t } = useTranslation();
  const f = useFormat();
  return (
    <Table<EventEntry>
      rowKey="id"
      size="small"
      loading={events === null}
      dataSource={events ?? []}
      pagination={{ pageSize: 20, hideOnSinglePage: true }}
      columns={[
        { title: t("vms:event.at"), dataIndex: "at", render: (iso: string) => f.dateTime(iso), width: 200 },
        { title: t("vms:event.kind"), dataIndex: "kind", render: (kind: string) => eventLabel(t, kind) },
        { title: t("vms:event.actor"), dataIndex: "actor" },
        {
          title: t("vms:event.detail"),
          key: "detail",
          render: (_: unknown, e: EventEntry) =>
            e.message ||
            (e.kind === "vm.changed" && e.after ? Object.keys(e.after).join(", ") : e.object_name),
        },
      ]}
    />
  );
}

interface TaskSummary {
  id: string;
  kind: string;
  state: TaskState;
  at: string;
  actor: string;
}

/** The VM's tasks, from its events (each task transition names its kind and state). */
function tasksFromEvents(events: EventEntry[]): TaskSummary[] {
  const seen = new Map<string, TaskSummary>();
  for (const e of events) {
    if (!e.kind.startsWith("task.") || !e.task_id || seen.has(e.task_id)) continue;
    const after = e.after ?? {};
    seen.set(e.task_id, {
      id: e.task_id,
      kind: String(after.task_kind ?? e.object_name),
      state: String(after.state ?? "queued") as TaskState,
      at: e.at,
      actor: e.actor,
    });
  }
  return [...seen.values()];
}

function TasksTab({ events }: { events: EventEntry[] | null }) {
  const { t } = useTranslation();
  const f = useFormat();
  const { open } = useTasks();
  const tasks = useMemo(() => tasksFromEvents(events ?? []), [events]);
  return (
    <Table<TaskSummary>
      rowKey="id"
      size="small"
      loading={events === null}
      dataSource={tasks}
      pagination={{ pageSize: 20, hideOnSinglePage: true }}
      locale={{ emptyText: t("vms:noTasks") }}
      columns={[
        {
          title: t("tasks:field.kind"),
          dataIndex: "kind",
          render: (kind: string, task) => (
            <Typography.Link onClick={() => open(task.id)}>{taskKindLabel(t, kind)}</Typography.Link>
          ),
        },
        { title: t("tasks:field.state"), dataIndex: "state", render: (s: TaskState) => <TaskStateTag state={s} /> },
        { title: t("tasks:field.requester"), dataIndex: "actor" },
        { title: t("tasks:field.updated"), dataIndex: "at", render: (iso: string) => f.dateTime(iso) },
      ]}
    />
  );
}

export default function VmDetailPage() {
  const { vmId = "" } = useParams();
  const { t } = useTranslation();
  const f = useFormat();
  const { can } = useAuth();
  const [vm, setVm] = useState<VMDetail | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [events, setEvents] = useState<EventEntry[] | null>(null);
  const [reload, setReload] = useState(0);
  const providers = useProviders(can("list_providers"));
  const hosts = useHosts(vm?.provider_id, Boolean(vm) && can("list_hosts"));
  const projects = useProjects(Boolean(vm?.project_id) && can("list_projects"));
  const provider = vm ? providers.byId.get(vm.provider_id) : undefined;

  const load = useCallback(() => {
    const vmPath = path`/v1/vms/${vmId}`;
    api
      .get<VMDetail>(vmPath)
      .then((body) => {
        setVm(body);
        setError(null);
      })
      .catch(setError);
    api
      .get<Page<EventEntry>>(`${vmPath}/events`, { limit: 200 })
      .then((page) => setEvents(page.items))
      .catch(() => setEvents([]));
  }, [vmId]);
  useEffect(load, [load, reload]);

  useTaskUpdates((task) => {
    if (task.vm_id === vmId || task.result?.clone_vm_id === vmId) setReload((n) => n + 1);
  });

  if (error && !vm) {
    if (error instanceof ApiError && error.status === 404) {
      return (
        <div data-testid="vm-not-found">
          <Result
            status="404"
            title={t("vms:notFound")}
            extra={<Link to="/vms">{t("vms:backToList")}</Link>}
          />
        </div>
      );
    }
    return <ErrorAlert error={error} />;
  }
  if (!vm) return <PageLoading />;

  const canEdit = !vm.is_template;
  const host = vm.host_id ? hosts.byId.get(vm.host_id) : undefined;
  return (
    <>
      <Breadcrumb
        style={{ marginBottom: 8 }}
        items={[{ title: <Link to="/vms">{t("vms:title")}</Link> }, { title: vm.name }]}
      />
      <PageHeader
        title={
          <Space>
            <span data-testid="vm-name">{vm.name}</span>
            <PowerStateTag state={vm.power_state} />
            {vm.is_template && <Tag color="purple">{t("vms:template")}</Tag>}
          </Space>
        }
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={() => setReload((n) => n + 1)}>
              {t("common:action.refresh")}
            </Button>
            <VmActions vm={vm} provider={provider} />
          </>
        }
      />
      <Card style={{ marginBottom: 16 }}>
        <Descriptions column={{ xs: 1, md: 2, xl: 3 }} size="small">
          <Descriptions.Item label={t("vms:field.cpus")}>{f.number(vm.cpu_count)}</Descriptions.Item>
          <Descriptions.Item label={t("vms:field.memory")}>{f.mib(vm.memory_mib)}</Descriptions.Item>
          <Descriptions.Item label={t("vms:field.guestOs")}>{vm.guest_os || "—"}</Descriptions.Item>
          <Descriptions.Item label={t("vms:field.pool")}>{provider?.name ?? vm.provider_id}</Descriptions.Item>
          <Descriptions.Item label={t("vms:field.host")}>{host?.name ?? vm.host_id ?? "—"}</Descriptions.Item>
          <Descriptions.Item label={t("vms:field.project")}>
            {vm.project_id ? (projects.byId.get(vm.project_id)?.name ?? vm.project_id) : t("vms:noProject")}
          </Descriptions.Item>
          <Descriptions.Item label={t("vms:field.tags")}>
            {vm.tags.length ? vm.tags.map((tag) => <Tag key={tag}>{tag}</Tag>) : "—"}
          </Descriptions.Item>
          <Descriptions.Item label={t("vms:field.created")}>{f.dateTime(vm.created_at)}</Descriptions.Item>
          <Descriptions.Item label={t("vms:field.updated")}>{f.dateTime(vm.updated_at)}</Descriptions.Item>
          <Descriptions.Item label={t("vms:field.id")}>
            <Typography.Text copyable>{vm.id}</Typography.Text>
          </Descriptions.Item>
          <Descriptions.Item label={t("vms:field.instanceUuid")}>{vm.instance_uuid || "—"}</Descriptions.Item>
          {vm.annotation && (
            <Descriptions.Item label={t("vms:field.annotation")}>{vm.annotation}</Descriptions.Item>
          )}
        </Descriptions>
      </Card>
      <Card>
        <Tabs
          items={[
            {
              key: "disks",
              label: t("vms:tab.disks", { count: vm.disks.length }),
              children: (
                <DisksTab vm={vm} canEdit={canEdit && capable(provider, "supports_disk_edit")} />
              ),
            },
            {
              key: "nics",
              label: t("vms:tab.nics", { count: vm.nics.length }),
              children: <NicsTab vm={vm} canEdit={canEdit && capable(provider, "supports_nic_edit")} />,
            },
            ...(capable(provider, "supports_snapshots")
              ? [
                  {
                    key: "snapshots",
                    label: t("vms:tab.snapshots"),
                    children: <SnapshotsTab vm={vm} canEdit={canEdit} reload={reload} />,
                  },
                ]
              : []),
            { key: "events", label: t("vms:tab.events"), children: <EventsTab events={events} /> },
            { key: "tasks", label: t("vms:tab.tasks"), children: <TasksTab events={events} /> },
          ]}
        />
      </Card>
    </>
  );
}
