/**
 * The hosts, datastores and networks pages share one shape: a table paged on the server
 * (keyset cursor), filtered by pool and name, sorted by a column the API can sort on.
 * The filters and sort live in the URL, so a filtered view can be bookmarked and shared.
 */
import { ReloadOutlined } from "@ant-design/icons";
import { Button, Flex, Input, Select, Table } from "antd";
import type { TableColumnsType, TableProps } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { useSearchParams } from "react-router-dom";

import { api } from "../api/client";
import { useProviders } from "../api/lookups";
import type { Page } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { CursorPager, currentCursor, firstPage } from "./CursorPager";
import type { CursorState } from "./CursorPager";
import { ErrorAlert } from "./ErrorAlert";

export type SortOrder = (field: string) => "ascend" | "descend" | null;

export function InventoryTable<T extends { id: string }>({
  path,
  columns,
  sortable,
  emptyText,
  testId,
}: {
  /** The list route, `/v1/hosts`. */
  path: string;
  /** The columns, told which way each sortable field is sorted now. */
  columns: (sortOrder: SortOrder) => TableColumnsType<T>;
  /** Fields the API sorts on (the others' headers are not clickable). */
  sortable: string[];
  emptyText: string;
  testId: string;
}) {
  const { t } = useTranslation();
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const providerId = params.get("provider_id") ?? undefined;
  const name = params.get("name") ?? undefined;
  const sort = params.get("sort") ?? "name";
  const providers = useProviders(can("list_providers"));
  const [pager, setPager] = useState<CursorState>(() => firstPage(50));
  const [page, setPage] = useState<Page<T> | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => setPager((p) => firstPage(p.size)), [providerId, name, sort]);
  const cursor = currentCursor(pager);
  useEffect(() => {
    const abort = new AbortController();
    setLoading(true);
    api
      .get<Page<T>>(path, { provider_id: providerId, name, sort, cursor, limit: pager.size }, abort.signal)
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
  }, [path, providerId, name, sort, cursor, pager.size, reload]);

  const setParam = (key: string, value: string | undefined | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };

  const sortOrder: SortOrder = (field) =>
    sort === field ? "ascend" : sort === `-${field}` ? "descend" : null;

  const onChange: TableProps<T>["onChange"] = (_p, _f, sorter) => {
    const one = Array.isArray(sorter) ? sorter[0] : sorter;
    const field = typeof one?.field === "string" && sortable.includes(one.field) ? one.field : null;
    if (!field || !one.order) setParam("sort", null);
    else setParam("sort", one.order === "descend" ? `-${field}` : field);
  };

  return (
    <>
      <Flex gap={8} wrap="wrap" style={{ marginBottom: 12 }}>
        <Input.Search
          allowClear
          placeholder={t("inventory:filter.name")}
          defaultValue={name}
          onSearch={(value) => setParam("name", value.trim())}
          style={{ width: 240 }}
          data-testid="filter-name"
        />
        {can("list_providers") && (
          <Select
            allowClear
            showSearch
            optionFilterProp="label"
            placeholder={t("inventory:filter.pool")}
            value={providerId}
            onChange={(value?: string) => setParam("provider_id", value)}
            options={providers.items.map((p) => ({ value: p.id, label: p.name }))}
            style={{ width: 200 }}
            data-testid="filter-pool"
          />
        )}
        <Button icon={<ReloadOutlined />} onClick={() => setReload((n) => n + 1)}>
          {t("common:action.refresh")}
        </Button>
      </Flex>
      <ErrorAlert error={error} style={{ marginBottom: 12 }} />
      <Table<T>
        rowKey="id"
        size="middle"
        columns={columns(sortOrder)}
        dataSource={page?.items ?? []}
        loading={loading}
        pagination={false}
        onChange={onChange}
        scroll={{ x: "max-content" }}
        locale={{ emptyText: loading ? " " : emptyText }}
        data-testid={testId}
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
