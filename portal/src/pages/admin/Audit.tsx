/**
 * The audit log: every mutating API call, refused ones too, newest first — all of it
 * for a platform admin, their project's for a project admin. Filters live in the URL.
 */
import { ReloadOutlined } from "@ant-design/icons";
import { Button, DatePicker, Flex, Input, Select, Space, Table, Tag, Tooltip, Typography } from "antd";
import type { TableColumnsType } from "antd";
import type { Dayjs } from "dayjs";
import dayjs from "dayjs";
import { useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { useSearchParams } from "react-router-dom";

import { api } from "../../api/client";
import type { AuditEntry, AuditOutcome, Page, Project } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { CursorPager, currentCursor, firstPage } from "../../components/CursorPager";
import type { CursorState } from "../../components/CursorPager";
import { ErrorAlert } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { useFormat } from "../../i18n/format";
import { useTasks } from "../../tasks/TaskContext";

const OUTCOMES: AuditOutcome[] = ["success", "denied", "invalid", "error"];
const OUTCOME_COLOR: Record<AuditOutcome, string> = {
  success: "success",
  denied: "warning",
  invalid: "default",
  error: "error",
};
/** The audited calls (the API's mutating routes, by operationId). */
const AUDITED_ACTIONS = [
  "login",
  "update_preferences",
  "create_token",
  "revoke_token",
  "create_domain",
  "create_project",
  "delete_project",
  "create_user",
  "update_user",
  "delete_user",
  "assign_role",
  "unassign_role",
  "add_grant",
  "remove_grant",
  "set_quota",
  "add_provider",
  "delete_provider",
  "sync_provider",
  "adopt_vm",
  "create_vm",
  "create_vm_dry_run",
  "delete_vm",
  "power_vm",
  "rename_vm",
  "resize_vm",
  "add_nic",
  "remove_nic",
  "add_disk",
  "grow_disk",
  "remove_disk",
  "create_snapshot",
  "revert_snapshot",
  "delete_snapshot",
  "clone_vm",
  "convert_to_template",
  "convert_to_vm",
  "migrate_vm",
  "change_vm_tags",
  "preview_bulk",
  "submit_bulk",
  "placement_dry_run",
  "create_placement_group",
  "delete_placement_group",
  "add_placement_group_member",
  "remove_placement_group_member",
  "cancel_task",
  "retry_task",
];
const FILTER_KEYS = ["user", "project_id", "action", "outcome", "since", "until"] as const;
type Filters = Partial<Record<(typeof FILTER_KEYS)[number], string>>;

export default function Audit() {
  const { t } = useTranslation();
  const f = useFormat();
  const { principal } = useAuth();
  const { open } = useTasks();
  const [params, setParams] = useSearchParams();
  const filters: Filters = useMemo(() => {
    const out: Filters = {};
    for (const key of FILTER_KEYS) {
      const value = params.get(key);
      if (value) out[key] = value;
    }
    return out;
  }, [params]);
  const filterKey = JSON.stringify(filters);
  const [pager, setPager] = useState<CursorState>(() => firstPage(50));
  const [page, setPage] = useState<Page<AuditEntry> | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);
  const [projects, setProjects] = useState<Project[]>([]);

  useEffect(() => {
    api
      .get<Project[]>("/v1/projects")
      .then(setProjects)
      .catch(() => undefined); // names are a nicety: the ids still show
  }, []);
  const projectName = useMemo(() => new Map(projects.map((p) => [p.id, p.name])), [projects]);

  useEffect(() => setPager((p) => firstPage(p.size)), [filterKey]);
  const cursor = currentCursor(pager);
  useEffect(() => {
    const abort = new AbortController();
    setLoading(true);
    api
      .get<Page<AuditEntry>>(
        "/v1/audit",
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
  }, [filterKey, cursor, pager.size, reload]);

  const setFilters = (changes: Filters) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    setParams(next, { replace: true });
  };

  const actionLabel = (action: string) =>
    action ? t(`admin:audit.action.${action}`, { defaultValue: action }) : t("admin:audit.noRoute");

  const columns: TableColumnsType<AuditEntry> = [
    {
      title: t("admin:audit.field.at"),
      dataIndex: "at",
      width: 190,
      render: (iso: string) => f.dateTime(iso),
    },
    {
      title: t("admin:audit.field.user"),
      dataIndex: "user_name",
      render: (name: string) => name || "—",
    },
    {
      title: t("admin:audit.field.project"),
      dataIndex: "project_id",
      render: (id: string | null) => (id ? projectName.get(id) ?? id : "—"),
    },
    {
      title: t("admin:audit.field.action"),
      dataIndex: "action",
      render: (action: string, e) => (
        <Space direction="vertical" size={0}>
          <Typography.Text>{actionLabel(action)}</Typography.Text>
          <Typography.Text type="secondary" code style={{ fontSize: 12 }}>
            {e.method} {e.path}
          </Typography.Text>
        </Space>
      ),
    },
    {
      title: t("admin:audit.field.outcome"),
      dataIndex: "outcome",
      render: (outcome: AuditOutcome, e) => (
        <Tooltip title={t("admin:audit.status", { status: e.status_code })}>
          <Tag color={OUTCOME_COLOR[outcome]} data-outcome={outcome}>
            {t(`admin:audit.outcome.${outcome}`)} · {e.status_code}
          </Tag>
        </Tooltip>
      ),
    },
    { title: t("admin:audit.field.source"), dataIndex: "source_ip" },
    {
      title: t("admin:audit.field.task"),
      dataIndex: "task_id",
      render: (id: string | null) =>
        id ? <Typography.Link onClick={() => open(id)}>{t("admin:audit.openTask")}</Typography.Link> : "—",
    },
  ];

  const range: [Dayjs | null, Dayjs | null] = [
    filters.since ? dayjs(filters.since) : null,
    filters.until ? dayjs(filters.until) : null,
  ];

  return (
    <>
      <PageHeader
        title={t("admin:audit.title")}
        subtitle={principal?.is_admin ? t("admin:audit.subtitle") : t("admin:audit.subtitleProject")}
        extra={
          <Button icon={<ReloadOutlined />} onClick={() => setReload((n) => n + 1)}>
            {t("common:action.refresh")}
          </Button>
        }
      />
      <Flex gap={8} wrap="wrap" style={{ marginBottom: 12 }}>
        <Input.Search
          key={filters.user ?? ""}
          allowClear
          placeholder={t("admin:audit.filter.user")}
          defaultValue={filters.user}
          onSearch={(value) => setFilters({ user: value.trim() })}
          style={{ width: 200 }}
          data-testid="audit-filter-user"
        />
        {principal?.is_admin && (
          <Select
            allowClear
            showSearch
            optionFilterProp="label"
            placeholder={t("admin:audit.filter.project")}
            value={filters.project_id}
            onChange={(value?: string) => setFilters({ project_id: value })}
            options={projects.map((p) => ({ value: p.id, label: p.name }))}
            style={{ width: 180 }}
          />
        )}
        <Select
          allowClear
          showSearch
          optionFilterProp="label"
          placeholder={t("admin:audit.filter.action")}
          value={filters.action}
          onChange={(value?: string) => setFilters({ action: value })}
          options={AUDITED_ACTIONS.map((a) => ({ value: a, label: actionLabel(a) }))}
          style={{ width: 220 }}
          data-testid="audit-filter-action"
        />
        <Select
          allowClear
          placeholder={t("admin:audit.filter.outcome")}
          value={filters.outcome}
          onChange={(value?: string) => setFilters({ outcome: value })}
          options={OUTCOMES.map((o) => ({ value: o, label: t(`admin:audit.outcome.${o}`) }))}
          style={{ width: 150 }}
        />
        <DatePicker.RangePicker
          showTime
          allowEmpty={[true, true]}
          value={range}
          onChange={(dates) =>
            setFilters({ since: dates?.[0]?.toISOString() ?? undefined, until: dates?.[1]?.toISOString() ?? undefined })
          }
          placeholder={[t("admin:audit.filter.since"), t("admin:audit.filter.until")]}
        />
        {Object.keys(filters).length > 0 && (
          <Button type="link" onClick={() => setParams(new URLSearchParams(), { replace: true })}>
            {t("admin:audit.filter.clear")}
          </Button>
        )}
      </Flex>
      <ErrorAlert error={error} style={{ marginBottom: 12 }} />
      <Table<AuditEntry>
        rowKey="id"
        size="middle"
        columns={columns}
        dataSource={page?.items ?? []}
        loading={loading}
        pagination={false}
        scroll={{ x: "max-content" }}
        locale={{ emptyText: loading ? " " : t("admin:audit.empty") }}
        data-testid="audit-table"
      />
      <CursorPager
        state={pager}
        nextCursor={page?.next_cursor ?? null}
        onChange={setPager}
        loading={loading}
        shown={page?.items.length ?? 0}
      />
    </>
  );
}
