/**
 * Tasks, newest first, moving live: the stream updates rows in place and puts new tasks
 * on top of the first page (no reloads). A row opens the task in the drawer.
 */
import { ReloadOutlined } from "@ant-design/icons";
import { Button, Flex, Progress, Select, Table, Typography } from "antd";
import type { TableProps } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import { api } from "../api/client";
import type { Page, Task, TaskState } from "../api/types";
import { CursorPager, currentCursor, firstPage } from "../components/CursorPager";
import type { CursorState } from "../components/CursorPager";
import { ErrorAlert } from "../components/ErrorAlert";
import { PageHeader } from "../components/PageHeader";
import { TaskStateTag, isFinished } from "../components/StateTags";
import { useFormat } from "../i18n/format";
import { TASK_KINDS, taskKindLabel } from "../tasks/labels";
import { useTaskUpdates, useTasks } from "../tasks/TaskContext";

const STATES: TaskState[] = ["queued", "running", "succeeded", "failed", "cancelled"];

export default function Tasks() {
  const { t } = useTranslation();
  const f = useFormat();
  const { open } = useTasks();
  const [state, setState] = useState<TaskState | undefined>();
  const [kind, setKind] = useState<string | undefined>();
  const [pager, setPager] = useState<CursorState>(() => firstPage(50));
  const [page, setPage] = useState<Page<Task> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [reload, setReload] = useState(0);

  useEffect(() => setPager((p) => firstPage(p.size)), [state, kind]);
  const cursor = currentCursor(pager);
  useEffect(() => {
    const abort = new AbortController();
    setLoading(true);
    api
      .get<Page<Task>>("/v1/tasks", { state, kind, cursor, limit: pager.size }, abort.signal)
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
  }, [state, kind, cursor, pager.size, reload]);

  useTaskUpdates((task) => {
    setPage((current) => {
      if (!current) return current;
      const at = current.items.findIndex((row) => row.id === task.id);
      const matches = (!state || task.state === state) && (!kind || task.kind === kind);
      if (at >= 0) {
        const items = [...current.items];
        items[at] = task;
        return { ...current, items };
      }
      if (!matches || pager.stack.length > 1 || task.parent_id) return current;
      const newest = current.items[0];
      if (newest && task.created_at < newest.created_at) return current; // an old one
      return { ...current, items: [task, ...current.items].slice(0, pager.size) };
    });
  });

  const columns: TableProps<Task>["columns"] = [
    {
      title: t("tasks:field.kind"),
      dataIndex: "kind",
      render: (k: string, task) => (
        <Typography.Link onClick={() => open(task.id, task)}>{taskKindLabel(t, k)}</Typography.Link>
      ),
    },
    { title: t("tasks:field.state"), dataIndex: "state", render: (s: TaskState) => <TaskStateTag state={s} /> },
    {
      title: t("tasks:field.progress"),
      dataIndex: "progress",
      width: 180,
      render: (p: number, task) => (
        <Progress
          percent={p}
          size="small"
          status={task.state === "failed" ? "exception" : isFinished(task.state) ? undefined : "active"}
        />
      ),
    },
    {
      title: t("tasks:field.vm"),
      dataIndex: "vm_id",
      render: (id: string | null) => (id ? <Link to={`/vms/${id}`}>{t("tasks:openVm")}</Link> : "—"),
    },
    { title: t("tasks:field.requester"), dataIndex: "requester" },
    { title: t("tasks:field.created"), dataIndex: "created_at", render: (iso: string) => f.dateTime(iso) },
    {
      title: t("tasks:field.error"),
      dataIndex: "error",
      ellipsis: true,
      render: (e: Task["error"]) => (e ? t(`errors:code.${e.code}`, { defaultValue: e.code }) : ""),
    },
  ];

  return (
    <>
      <PageHeader
        title={t("tasks:title")}
        extra={
          <Button icon={<ReloadOutlined />} onClick={() => setReload((n) => n + 1)}>
            {t("common:action.refresh")}
          </Button>
        }
      />
      <Flex gap={8} style={{ marginBottom: 12 }}>
        <Select
          allowClear
          placeholder={t("tasks:filter.state")}
          value={state}
          onChange={setState}
          style={{ width: 160 }}
          options={STATES.map((s) => ({ value: s, label: t(`common:taskState.${s}`) }))}
        />
        <Select
          allowClear
          showSearch
          optionFilterProp="label"
          placeholder={t("tasks:filter.kind")}
          value={kind}
          onChange={setKind}
          style={{ width: 220 }}
          options={TASK_KINDS.map((k) => ({ value: k, label: taskKindLabel(t, k) }))}
        />
      </Flex>
      <ErrorAlert error={error} style={{ marginBottom: 12 }} />
      <Table<Task>
        rowKey="id"
        columns={columns}
        dataSource={page?.items ?? []}
        loading={loading}
        pagination={false}
        locale={{ emptyText: t("tasks:empty") }}
        data-testid="task-table"
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
