/**
 * Unmanaged VMs (platform admins): the VMs the pools have that no project owns yet,
 * filtered by pool, cluster, folder, name, power state and guest OS; adopting the
 * selected ones (or everything the filters match) into a project as they are, and
 * releasing a project's VMs back. Each previews its count, asks, and submits that
 * count, so nothing else is touched if the selection changed meanwhile; the task then
 * runs live in the task drawer. Nothing of this reaches a pool.
 */
import { ReloadOutlined } from "@ant-design/icons";
import { App, Button, Flex, Form, Input, Result, Select, Table, Tag, Typography } from "antd";
import type { TableProps } from "antd";
import { useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";

import { api } from "../api/client";
import { useProjects, useProviders } from "../api/lookups";
import type { BulkPreview, Page, PowerState, Task } from "../api/types";
import { Can, useAuth } from "../auth/AuthContext";
import { CursorPager, currentCursor, firstPage } from "../components/CursorPager";
import type { CursorState } from "../components/CursorPager";
import { ErrorAlert, useNotifyError } from "../components/ErrorAlert";
import { PageHeader } from "../components/PageHeader";
import { PowerStateTag } from "../components/StateTags";
import { useFormat } from "../i18n/format";
import { useTaskUpdates } from "../tasks/TaskContext";
import { useTaskAction } from "../tasks/useTaskAction";

interface UnmanagedVm {
  id: string;
  name: string;
  power_state: PowerState;
  cpu_count: number;
  memory_mib: number;
  guest_os: string;
  provider_id: string;
  host_id: string | null;
  cluster_id: string | null;
  folder: string;
  is_template: boolean;
}

interface Cluster {
  id: string;
  name: string;
  provider_id: string;
}

interface Filters {
  provider_id?: string;
  cluster_id?: string;
  folder?: string;
  name?: string;
  power_state?: string;
  guest_os?: string;
}

const POWER_STATES: PowerState[] = ["running", "stopped", "suspended", "paused", "unknown"];
const SHOWN_NAMES = 10;

function useClusters(providerId?: string) {
  const [items, setItems] = useState<Cluster[]>([]);
  useEffect(() => {
    const abort = new AbortController();
    api
      .get<Page<Cluster>>("/v1/clusters", { provider_id: providerId, limit: 1000 }, abort.signal)
      .then((page) => setItems(page.items))
      .catch(() => undefined); // names are a nicety: the filter still takes ids
    return () => abort.abort();
  }, [providerId]);
  return items;
}

export default function Unmanaged() {
  const { t } = useTranslation();
  const f = useFormat();
  const { can } = useAuth();
  const { modal } = App.useApp();
  const notifyError = useNotifyError();
  const { run } = useTaskAction();
  const [filters, setFilters] = useState<Filters>({});
  const [pager, setPager] = useState<CursorState>(() => firstPage(50));
  const [page, setPage] = useState<Page<UnmanagedVm> | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [selected, setSelected] = useState<string[]>([]);
  const [reload, setReload] = useState(0);
  const [busy, setBusy] = useState(false);
  const [projectForm] = Form.useForm<{ project_id: string }>();
  const allowed = can("list_unmanaged_vms");
  const providers = useProviders(allowed);
  const projects = useProjects(allowed);
  const clusters = useClusters(filters.provider_id);
  const clusterNames = new Map(clusters.map((c) => [c.id, c.name]));

  const filterKey = JSON.stringify(filters);
  useEffect(() => {
    setPager((p) => firstPage(p.size));
    setSelected([]);
  }, [filterKey]);

  const cursor = currentCursor(pager);
  useEffect(() => {
    if (!allowed) return undefined;
    const abort = new AbortController();
    setLoading(true);
    api
      .get<Page<UnmanagedVm>>(
        "/v1/vms/unmanaged",
        { ...(JSON.parse(filterKey) as Filters), cursor, limit: pager.size },
        abort.signal,
      )
      .then((body) => {
        setPage(body);
        setError(null);
        setLoading(false);
      })
      .catch((err: unknown) => {
        if (abort.signal.aborted) return;
        setError(err);
        setLoading(false);
      });
    return () => abort.abort();
  }, [allowed, filterKey, cursor, pager.size, reload]);

  // An adoption or release that ended changed who owns what: look again.
  const pending = useRef<number | undefined>(undefined);
  useTaskUpdates((task: Task) => {
    const ended = task.state === "succeeded" || task.state === "failed";
    if (!ended || !(task.kind === "vm.adopt" || task.kind === "vm.release")) return;
    if (pending.current === undefined) {
      pending.current = window.setTimeout(() => {
        pending.current = undefined;
        setSelected([]);
        setReload((n) => n + 1);
      }, 500);
    }
  });
  useEffect(() => () => window.clearTimeout(pending.current), []);

  if (!allowed) return <Result status="403" title="403" subTitle={t("adopt:adminOnly")} />;

  const setFilter = (key: keyof Filters, value?: string | null) =>
    setFilters((old) => {
      const next: Filters = { ...old, [key]: value?.trim() || undefined };
      if (key === "provider_id") delete next.cluster_id;
      return next;
    });
  const hasFilter = Object.values(filters).some(Boolean);

  /** Ask for the project; then preview, confirm with the count and submit. */
  const start = (kind: "adopt" | "release") => {
    projectForm.resetFields();
    modal.confirm({
      title: t(`adopt:${kind}.chooseProject`),
      okText: t("common:action.next"),
      cancelText: t("common:action.cancel"),
      okButtonProps: { id: "project-next" },
      content: (
        <Form form={projectForm} layout="vertical">
          <Form.Item
            name="project_id"
            label={t("adopt:field.project")}
            rules={[{ required: true, message: t("adopt:projectRequired") }]}
          >
            <Select
              showSearch
              optionFilterProp="label"
              data-testid="adopt-project"
              options={projects.items.map((p) => ({ value: p.id, label: p.name }))}
            />
          </Form.Item>
        </Form>
      ),
      onOk: async () => {
        const { project_id } = await projectForm.validateFields();
        void confirm(kind, project_id);
      },
    });
  };

  const confirm = async (kind: "adopt" | "release", projectId: string) => {
    const select =
      kind === "adopt"
        ? selected.length > 0
          ? { vm_ids: selected }
          : { ...filters }
        : { project_id: projectId };
    setBusy(true);
    let preview: BulkPreview;
    try {
      preview = await api.post<BulkPreview>(`/v1/vms/${kind}/preview`, { select });
    } catch (err) {
      notifyError(err);
      return;
    } finally {
      setBusy(false);
    }
    if (preview.count === 0) {
      modal.info({ title: t("adopt:nothing"), okText: t("common:action.ok") });
      return;
    }
    const project = projects.byId.get(projectId)?.name ?? projectId;
    const names = preview.vms.slice(0, SHOWN_NAMES).map((vm) => vm.name);
    run({
      title: t(`adopt:${kind}.confirm`, { count: preview.count, project }),
      danger: kind === "release",
      content: (
        <>
          <Typography.Paragraph data-testid="adopt-preview">{names.join(", ")}</Typography.Paragraph>
          {preview.count > names.length && (
            <Typography.Paragraph type="secondary">
              {t("adopt:andMore", { count: preview.count - names.length })}
            </Typography.Paragraph>
          )}
          <Typography.Text type="secondary">{t(`adopt:${kind}.untouched`)}</Typography.Text>
        </>
      ),
      submit: () =>
        api.post<Task>(
          `/v1/vms/${kind}`,
          kind === "adopt"
            ? { select, project_id: projectId, expected_count: preview.count }
            : { select, expected_count: preview.count },
        ),
    });
  };

  const columns: TableProps<UnmanagedVm>["columns"] = [
    {
      title: t("adopt:field.name"),
      dataIndex: "name",
      render: (name: string, vm) => (
        <>
          {name} {vm.is_template && <Tag color="purple">{t("adopt:template")}</Tag>}
        </>
      ),
    },
    {
      title: t("adopt:field.powerState"),
      dataIndex: "power_state",
      render: (state: PowerState) => <PowerStateTag state={state} />,
    },
    {
      title: t("adopt:field.cpus"),
      dataIndex: "cpu_count",
      align: "right",
      render: (n: number) => f.number(n),
    },
    {
      title: t("adopt:field.memory"),
      dataIndex: "memory_mib",
      align: "right",
      render: (mib: number) => f.mib(mib),
    },
    { title: t("adopt:field.folder"), dataIndex: "folder", render: (p: string) => p || "—" },
    { title: t("adopt:field.guestOs"), dataIndex: "guest_os", ellipsis: true },
    {
      title: t("adopt:field.pool"),
      dataIndex: "provider_id",
      render: (id: string) => providers.byId.get(id)?.name ?? "…",
    },
    {
      title: t("adopt:field.cluster"),
      dataIndex: "cluster_id",
      render: (id: string | null) => (id ? (clusterNames.get(id) ?? "…") : "—"),
    },
  ];

  const rows = page?.items ?? [];
  const adoptDisabled = selected.length === 0 && !hasFilter;
  return (
    <>
      <PageHeader
        title={t("adopt:title")}
        subtitle={t("adopt:subtitle")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={() => setReload((n) => n + 1)}>
              {t("common:action.refresh")}
            </Button>
            <Can op="release_vms">
              <Button loading={busy} onClick={() => start("release")} data-testid="release-button">
                {t("adopt:release.button")}
              </Button>
            </Can>
            <Can op="adopt_vms">
              <Button
                type="primary"
                loading={busy}
                disabled={adoptDisabled}
                title={adoptDisabled ? t("adopt:needSelection") : undefined}
                onClick={() => start("adopt")}
                data-testid="adopt-button"
              >
                {selected.length > 0
                  ? t("adopt:adopt.selected", { count: selected.length })
                  : t("adopt:adopt.filtered")}
              </Button>
            </Can>
          </>
        }
      />
      <Flex gap={8} wrap="wrap" style={{ marginBottom: 12 }}>
        <Input.Search
          allowClear
          placeholder={t("adopt:filter.name")}
          onSearch={(value) => setFilter("name", value)}
          style={{ width: 200 }}
          data-testid="unmanaged-filter-name"
        />
        <Select
          allowClear
          showSearch
          optionFilterProp="label"
          placeholder={t("adopt:filter.pool")}
          value={filters.provider_id}
          onChange={(value?: string) => setFilter("provider_id", value)}
          options={providers.items.map((p) => ({ value: p.id, label: p.name }))}
          style={{ width: 170 }}
        />
        <Select
          allowClear
          showSearch
          optionFilterProp="label"
          placeholder={t("adopt:filter.cluster")}
          value={filters.cluster_id}
          onChange={(value?: string) => setFilter("cluster_id", value)}
          options={clusters.map((c) => ({ value: c.id, label: c.name }))}
          style={{ width: 170 }}
        />
        <Input.Search
          allowClear
          placeholder={t("adopt:filter.folder")}
          onSearch={(value) => setFilter("folder", value)}
          style={{ width: 220 }}
          data-testid="unmanaged-filter-folder"
        />
        <Select
          allowClear
          placeholder={t("adopt:filter.powerState")}
          value={filters.power_state}
          onChange={(value?: string) => setFilter("power_state", value)}
          options={POWER_STATES.map((s) => ({ value: s, label: t(`common:powerState.${s}`) }))}
          style={{ width: 150 }}
        />
        <Input.Search
          allowClear
          placeholder={t("adopt:filter.guestOs")}
          onSearch={(value) => setFilter("guest_os", value)}
          style={{ width: 180 }}
        />
      </Flex>
      <ErrorAlert error={error} style={{ marginBottom: 12 }} />
      <Table<UnmanagedVm>
        rowKey="id"
        size="middle"
        columns={columns}
        dataSource={rows}
        loading={loading}
        pagination={false}
        data-testid="unmanaged-table"
        rowSelection={{
          selectedRowKeys: selected,
          preserveSelectedRowKeys: true,
          onChange: (keys) => setSelected(keys as string[]),
        }}
        locale={{ emptyText: loading ? " " : t("adopt:empty") }}
      />
      <CursorPager
        state={pager}
        nextCursor={page?.next_cursor ?? null}
        onChange={setPager}
        loading={loading}
        shown={rows.length}
      />
    </>
  );
}
