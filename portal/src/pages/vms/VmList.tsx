/**
 * Virtual machines: server-side filters, sort and keyset paging (fast over 50,000 rows),
 * bulk actions over the selected rows or everything the filters match. The filters live
 * in the URL, so a view can be bookmarked and shared.
 */
import { PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { Button, Flex, Input, Select, Space, Table, Tag, Typography } from "antd";
import type { TableProps } from "antd";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useSearchParams } from "react-router-dom";

import { api } from "../../api/client";
import { useHosts, useProviders } from "../../api/lookups";
import type { Page, PowerState, Task, VM } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { CursorPager, currentCursor, firstPage } from "../../components/CursorPager";
import type { CursorState } from "../../components/CursorPager";
import { ErrorAlert } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { PowerStateTag } from "../../components/StateTags";
import { useFormat } from "../../i18n/format";
import { useTaskUpdates } from "../../tasks/TaskContext";
import { BulkActions } from "./BulkActions";
import type { VmFilters } from "./BulkActions";

const FIELDS = "name,power_state,cpu_count,memory_mib,guest_os,provider_id,host_id,is_template,tags,updated_at";
const POWER_STATES: PowerState[] = ["running", "stopped", "suspended", "paused", "unknown"];
const SORTABLE = new Set(["name", "power_state", "cpu_count", "memory_mib", "updated_at"]);
const FILTER_KEYS = ["name", "power_state", "provider_id", "host_id", "tag"] as const;

/** Marks the moment the first rows are on screen (read by bench/portal_vm_list.py). */
let firstRowsMarked = false;

export default function VmList() {
  const { t } = useTranslation();
  const f = useFormat();
  const navigate = useNavigate();
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const filters: VmFilters = useMemo(() => {
    const out: VmFilters = {};
    for (const key of FILTER_KEYS) {
      const value = params.get(key);
      if (value) out[key] = value;
    }
    return out;
  }, [params]);
  const sort = params.get("sort") ?? "name";
  const [pager, setPager] = useState<CursorState>(() => firstPage(50));
  const [page, setPage] = useState<Page<VM> | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [selected, setSelected] = useState<string[]>([]);
  const [reload, setReload] = useState(0);
  const [nameInput, setNameInput] = useState(filters.name ?? "");
  const providers = useProviders(can("list_providers"));
  const hosts = useHosts(filters.provider_id, can("list_hosts"));

  const filterKey = JSON.stringify(filters);
  useEffect(() => setPager((p) => firstPage(p.size)), [filterKey, sort]);

  const cursor = currentCursor(pager);
  useEffect(() => {
    const abort = new AbortController();
    setLoading(true);
    api
      .get<Page<VM>>(
        "/v1/vms",
        { ...(JSON.parse(filterKey) as VmFilters), sort, cursor, limit: pager.size, fields: FIELDS },
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
  }, [filterKey, sort, cursor, pager.size, reload]);

  useEffect(() => {
    if (!firstRowsMarked && page && page.items.length > 0) {
      firstRowsMarked = true;
      requestAnimationFrame(() => performance.mark("tessera:vm-list:first-rows"));
    }
  }, [page]);

  // A finished VM task may have changed a row on this page: look again, at most every 2 s.
  const pending = useRef<number | undefined>(undefined);
  useTaskUpdates((task: Task) => {
    const finished = task.state === "succeeded" || task.state === "failed";
    if (!finished || !(task.kind.startsWith("vm.") || task.kind === "provider.sync")) return;
    if (pending.current === undefined) {
      pending.current = window.setTimeout(() => {
        pending.current = undefined;
        setReload((n) => n + 1);
      }, 2000);
    }
  });
  useEffect(() => () => window.clearTimeout(pending.current), []);

  const setFilter = useCallback(
    (key: (typeof FILTER_KEYS)[number] | "sort", value: string | undefined | null) => {
      const next = new URLSearchParams(params);
      if (value) next.set(key, value);
      else next.delete(key);
      if (key === "provider_id") next.delete("host_id");
      setParams(next, { replace: true });
    },
    [params, setParams],
  );

  const onTableChange: TableProps<VM>["onChange"] = (_p, _f, sorter) => {
    const one = Array.isArray(sorter) ? sorter[0] : sorter;
    const field = typeof one?.field === "string" && SORTABLE.has(one.field) ? one.field : null;
    if (!field || !one.order) setFilter("sort", null);
    else setFilter("sort", one.order === "descend" ? `-${field}` : field);
  };

  const sortOrder = (field: string) =>
    sort === field ? ("ascend" as const) : sort === `-${field}` ? ("descend" as const) : null;

  const columns: TableProps<VM>["columns"] = [
    {
      title: t("vms:field.name"),
      dataIndex: "name",
      sorter: true,
      sortOrder: sortOrder("name"),
      render: (name: string, vm) => (
        <Space size={4} wrap>
          <Link to={`/vms/${vm.id}`}>{name}</Link>
          {vm.is_template && <Tag color="purple">{t("vms:template")}</Tag>}
        </Space>
      ),
    },
    {
      title: t("vms:field.powerState"),
      dataIndex: "power_state",
      sorter: true,
      sortOrder: sortOrder("power_state"),
      render: (state: PowerState) => <PowerStateTag state={state} />,
    },
    {
      title: t("vms:field.cpus"),
      dataIndex: "cpu_count",
      sorter: true,
      sortOrder: sortOrder("cpu_count"),
      align: "right",
      render: (n: number) => f.number(n),
    },
    {
      title: t("vms:field.memory"),
      dataIndex: "memory_mib",
      sorter: true,
      sortOrder: sortOrder("memory_mib"),
      align: "right",
      render: (mib: number) => f.mib(mib),
    },
    { title: t("vms:field.guestOs"), dataIndex: "guest_os", ellipsis: true },
    {
      title: t("vms:field.pool"),
      dataIndex: "provider_id",
      render: (id: string) => providers.byId.get(id)?.name ?? "…",
    },
    {
      title: t("vms:field.host"),
      dataIndex: "host_id",
      render: (id: string | null) => (id ? (hosts.byId.get(id)?.name ?? "…") : "—"),
    },
    {
      title: t("vms:field.tags"),
      dataIndex: "tags",
      render: (tags: string[]) => tags?.map((tag) => <Tag key={tag}>{tag}</Tag>),
    },
    {
      title: t("vms:field.updated"),
      dataIndex: "updated_at",
      sorter: true,
      sortOrder: sortOrder("updated_at"),
      render: (iso: string) => f.since(iso),
    },
  ];

  const rows = page?.items ?? [];
  return (
    <>
      <PageHeader
        title={t("vms:title")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={() => setReload((n) => n + 1)}>
              {t("common:action.refresh")}
            </Button>
            <BulkActions filters={filters} selected={selected} onDone={() => setSelected([])} />
            <Can op="create_vm">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => navigate("/vms/new")}>
                {t("vms:create.button")}
              </Button>
            </Can>
          </>
        }
      />
      <Flex gap={8} wrap="wrap" style={{ marginBottom: 12 }}>
        <Input.Search
          allowClear
          placeholder={t("vms:filter.name")}
          value={nameInput}
          onChange={(e) => setNameInput(e.target.value)}
          onSearch={(value) => setFilter("name", value.trim())}
          style={{ width: 240 }}
          data-testid="vm-filter-name"
        />
        <Select
          allowClear
          placeholder={t("vms:filter.powerState")}
          value={filters.power_state}
          onChange={(value?: string) => setFilter("power_state", value)}
          options={POWER_STATES.map((s) => ({ value: s, label: t(`common:powerState.${s}`) }))}
          style={{ width: 160 }}
          data-testid="vm-filter-power"
        />
        {can("list_providers") && (
          <Select
            allowClear
            showSearch
            optionFilterProp="label"
            placeholder={t("vms:filter.pool")}
            value={filters.provider_id}
            onChange={(value?: string) => setFilter("provider_id", value)}
            options={providers.items.map((p) => ({ value: p.id, label: p.name }))}
            style={{ width: 180 }}
          />
        )}
        {can("list_hosts") && (
          <Select
            allowClear
            showSearch
            optionFilterProp="label"
            placeholder={t("vms:filter.host")}
            value={filters.host_id}
            onChange={(value?: string) => setFilter("host_id", value)}
            options={hosts.items.map((h) => ({ value: h.id, label: h.name }))}
            style={{ width: 180 }}
          />
        )}
        <Input.Search
          allowClear
          placeholder={t("vms:filter.tag")}
          defaultValue={filters.tag}
          onSearch={(value) => setFilter("tag", value.trim())}
          style={{ width: 180 }}
        />
        {Object.keys(filters).length > 0 && (
          <Button
            type="link"
            onClick={() => {
              setNameInput("");
              setParams(new URLSearchParams(), { replace: true });
            }}
          >
            {t("vms:filter.clear")}
          </Button>
        )}
      </Flex>
      <ErrorAlert error={error} style={{ marginBottom: 12 }} />
      <Table<VM>
        rowKey="id"
        size="middle"
        columns={columns}
        dataSource={rows}
        loading={loading}
        pagination={false}
        onChange={onTableChange}
        data-testid="vm-table"
        rowSelection={
          can("submit_bulk")
            ? {
                selectedRowKeys: selected,
                preserveSelectedRowKeys: true,
                onChange: (keys) => setSelected(keys as string[]),
              }
            : undefined
        }
        locale={{ emptyText: loading ? " " : t("vms:empty") }}
        footer={
          selected.length > 0
            ? () => (
                <Typography.Text>
                  {t("vms:bulk.selected", { count: selected.length })}{" "}
                  <Typography.Link onClick={() => setSelected([])}>
                    {t("vms:bulk.clearSelection")}
                  </Typography.Link>
                </Typography.Text>
              )
            : undefined
        }
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
