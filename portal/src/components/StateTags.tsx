/** Coloured tags for power, task and pool states, labelled in the UI's language. */
import {
  CheckCircleOutlined,
  CloseCircleOutlined,
  ClockCircleOutlined,
  ExclamationCircleOutlined,
  MinusCircleOutlined,
  PauseCircleOutlined,
  PlayCircleOutlined,
  PoweroffOutlined,
  QuestionCircleOutlined,
  SyncOutlined,
} from "@ant-design/icons";
import { Tag } from "antd";
import { useTranslation } from "react-i18next";

import type { PowerState, Provider, TaskState } from "../api/types";

const POWER: Record<PowerState, { color: string; icon: React.ReactNode }> = {
  running: { color: "success", icon: <PlayCircleOutlined /> },
  stopped: { color: "default", icon: <PoweroffOutlined /> },
  suspended: { color: "warning", icon: <PauseCircleOutlined /> },
  paused: { color: "warning", icon: <PauseCircleOutlined /> },
  unknown: { color: "default", icon: <QuestionCircleOutlined /> },
};

export function PowerStateTag({ state }: { state: PowerState }) {
  const { t } = useTranslation();
  const look = POWER[state] ?? POWER.unknown;
  return (
    <Tag color={look.color} icon={look.icon} data-power-state={state}>
      {t(`common:powerState.${state}`)}
    </Tag>
  );
}

/** Tasks, and the VMs of a bulk task (whose items start `pending`). */
const TASK: Record<TaskState | "pending", { color: string; icon: React.ReactNode }> = {
  pending: { color: "default", icon: <ClockCircleOutlined /> },
  queued: { color: "default", icon: <ClockCircleOutlined /> },
  running: { color: "processing", icon: <SyncOutlined spin /> },
  succeeded: { color: "success", icon: <CheckCircleOutlined /> },
  failed: { color: "error", icon: <CloseCircleOutlined /> },
  cancelled: { color: "warning", icon: <MinusCircleOutlined /> },
};

export function TaskStateTag({ state }: { state: TaskState | "pending" }) {
  const { t } = useTranslation();
  const look = TASK[state] ?? TASK.queued;
  return (
    <Tag color={look.color} icon={look.icon} data-task-state={state}>
      {t(`common:taskState.${state}`)}
    </Tag>
  );
}

const POOL: Record<Provider["status"], { color: string; icon: React.ReactNode }> = {
  ok: { color: "success", icon: <CheckCircleOutlined /> },
  unreachable: { color: "error", icon: <ExclamationCircleOutlined /> },
  error: { color: "error", icon: <CloseCircleOutlined /> },
  unknown: { color: "default", icon: <QuestionCircleOutlined /> },
};

export function PoolStatusTag({ status }: { status: Provider["status"] }) {
  const { t } = useTranslation();
  const look = POOL[status] ?? POOL.unknown;
  return (
    <Tag color={look.color} icon={look.icon} data-pool-status={status}>
      {t(`common:poolStatus.${status}`)}
    </Tag>
  );
}

export function isFinished(state: TaskState): boolean {
  return state === "succeeded" || state === "failed" || state === "cancelled";
}
