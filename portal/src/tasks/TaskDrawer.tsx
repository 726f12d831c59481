/** One task, live: state, progress, steps, error and result; cancel and retry; a bulk
 * task's VMs with their own outcome. */
import { Button, Descriptions, Drawer, Flex, Progress, Steps, Table, Typography } from "antd";
import { useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import { api, path } from "../api/client";
import type { Task, TaskItem } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../components/ErrorAlert";
import { TaskStateTag, isFinished } from "../components/StateTags";
import { useFormat } from "../i18n/format";
import { stepLabel, taskKindLabel } from "./labels";
import { useTaskUpdates } from "./TaskContext";

const STEP_STATUS = {
  pending: "wait",
  running: "process",
  succeeded: "finish",
  failed: "error",
  skipped: "wait",
} as const;

function taskVmId(task: Task): string | null {
  const cloned = task.result?.clone_vm_id;
  if (typeof cloned === "string") return cloned;
  const made = task.result?.vm_id;
  if (typeof made === "string") return made;
  return task.kind === "vm.delete" ? null : task.vm_id;
}

function BulkItems({ task }: { task: Task }) {
  const { t } = useTranslation();
  const [items, setItems] = useState<TaskItem[]>([]);
  const [total, setTotal] = useState(0);
  const load = useCallback(() => {
    api
      .get<{ items: TaskItem[]; total: number }>(path`/v1/tasks/${task.id}/items`, { limit: 200 })
      .then((page) => {
        setItems(page.items);
        setTotal(page.total);
      })
      .catch(() => undefined);
  }, [task.id]);
  useEffect(load, [load, task.state, task.progress]);
  return (
    <Table<TaskItem>
      size="small"
      rowKey="vm_id"
      dataSource={items}
      pagination={false}
      title={() => t("tasks:items.title", { count: total })}
      columns={[
        { title: t("tasks:items.vm"), dataIndex: "vm_name" },
        {
          title: t("tasks:field.state"),
          dataIndex: "state",
          render: (state: TaskItem["state"]) => <TaskStateTag state={state} />,
        },
        {
          title: t("tasks:field.error"),
          dataIndex: "error",
          render: (error: TaskItem["error"]) => error?.message ?? "",
        },
      ]}
    />
  );
}

export function TaskDrawer({
  taskId,
  initial,
  onClose,
  onOpen,
}: {
  taskId: string;
  initial?: Task;
  onClose: () => void;
  onOpen: (id: string) => void;
}) {
  const { t } = useTranslation();
  const f = useFormat();
  const { can } = useAuth();
  const notifyError = useNotifyError();
  const [task, setTask] = useState<Task | null>(initial ?? null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api
      .get<Task>(path`/v1/tasks/${taskId}`)
      .then(setTask)
      .catch(setError);
  }, [taskId]);

  useTaskUpdates((update) => {
    if (update.id === taskId) setTask(update);
  });

  const act = async (verb: "cancel" | "retry") => {
    setBusy(true);
    try {
      const next = await api.post<Task>(`/v1/tasks/${encodeURIComponent(taskId)}/${verb}`);
      setTask(next);
    } catch (err) {
      notifyError(err);
    } finally {
      setBusy(false);
    }
  };

  const vmId = task ? taskVmId(task) : null;
  const finished = task ? isFinished(task.state) : false;
  return (
    <Drawer
      open
      width={560}
      onClose={onClose}
      title={task ? taskKindLabel(t, task.kind) : t("tasks:drawer.title")}
      data-testid="task-drawer"
      extra={
        task && (
          <Flex gap={8}>
            {!finished && can("cancel_task") && (
              <Button danger loading={busy} disabled={task.cancel_requested} onClick={() => act("cancel")}>
                {t("tasks:action.cancel")}
              </Button>
            )}
            {(task.state === "failed" || task.state === "cancelled") && can("retry_task") && (
              <Button loading={busy} onClick={() => act("retry")}>
                {t("tasks:action.retry")}
              </Button>
            )}
          </Flex>
        )
      }
    >
      <ErrorAlert error={error} />
      {task && (
        <Flex vertical gap={16}>
          <Flex align="center" gap={12}>
            <span data-testid="task-state">
              <TaskStateTag state={task.state} />
            </span>
            <Progress
              percent={task.progress}
              status={
                task.state === "failed"
                  ? "exception"
                  : task.state === "succeeded"
                    ? "success"
                    : finished
                      ? "normal"
                      : "active"
              }
              style={{ flex: 1, margin: 0 }}
              data-testid="task-progress"
            />
          </Flex>
          {task.error && (
            <Typography.Paragraph type="danger" data-testid="task-error">
              {t(`errors:code.${task.error.code}`, { defaultValue: task.error.code })}
              {" — "}
              {task.error.message}
            </Typography.Paragraph>
          )}
          {task.steps.length > 0 && (
            <Steps
              direction="vertical"
              size="small"
              items={task.steps.map((step) => ({
                title: stepLabel(t, step.name),
                status: STEP_STATUS[step.state],
                description:
                  step.state === "skipped"
                    ? t("tasks:stepState.skipped")
                    : step.finished_at
                      ? f.dateTime(step.finished_at)
                      : step.started_at
                        ? t("tasks:stepState.running")
                        : undefined,
              }))}
            />
          )}
          <Descriptions column={1} size="small" bordered>
            <Descriptions.Item label={t("tasks:field.id")}>
              <Typography.Text copyable>{task.id}</Typography.Text>
            </Descriptions.Item>
            <Descriptions.Item label={t("tasks:field.requester")}>{task.requester}</Descriptions.Item>
            <Descriptions.Item label={t("tasks:field.created")}>{f.dateTime(task.created_at)}</Descriptions.Item>
            <Descriptions.Item label={t("tasks:field.finished")}>{f.dateTime(task.finished_at)}</Descriptions.Item>
            <Descriptions.Item label={t("tasks:field.attempt")}>{f.number(task.attempt)}</Descriptions.Item>
            {vmId && (
              <Descriptions.Item label={t("tasks:field.vm")}>
                <Link to={`/vms/${vmId}`} onClick={onClose}>
                  {t("tasks:drawer.openVm")}
                </Link>
              </Descriptions.Item>
            )}
            {task.parent_id && (
              <Descriptions.Item label={t("tasks:field.parent")}>
                <Typography.Link onClick={() => onOpen(task.parent_id as string)}>
                  {task.parent_id}
                </Typography.Link>
              </Descriptions.Item>
            )}
          </Descriptions>
          {task.result && Object.keys(task.result).length > 0 && (
            <>
              <Typography.Text strong>{t("tasks:field.result")}</Typography.Text>
              <pre style={{ fontSize: 12, background: "#fafafa", padding: 8, overflowX: "auto" }}>
                {JSON.stringify(task.result, null, 2)}
              </pre>
            </>
          )}
          {["vm.bulk.power", "vm.bulk.delete", "vm.bulk.tag", "vm.adopt", "vm.release"].includes(task.kind) && (
            <BulkItems task={task} />
          )}
        </Flex>
      )}
    </Drawer>
  );
}
