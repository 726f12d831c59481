/**
 * A change that answers 202 with a task, behind a confirmation: `run({title, content,
 * submit})` asks, calls `submit`, then shows the task live in the drawer. Errors come
 * back as notifications in the UI's language.
 */
import { App } from "antd";
import type { ReactNode } from "react";
import { useCallback } from "react";
import { useTranslation } from "react-i18next";

import type { Task } from "../api/types";
import { useNotifyError } from "../components/ErrorAlert";
import { useTasks } from "./TaskContext";

export interface TaskAction {
  title: ReactNode;
  content?: ReactNode;
  okText?: string;
  danger?: boolean;
  submit: () => Promise<Task>;
  /** Called with the accepted task (after the drawer opens). */
  then?: (task: Task) => void;
}

export function useTaskAction() {
  const { t } = useTranslation();
  const { modal } = App.useApp();
  const { open } = useTasks();
  const notifyError = useNotifyError();

  /** Submit now, without asking (for forms that were the confirmation). */
  const submit = useCallback(
    async (action: Pick<TaskAction, "submit" | "then">): Promise<Task | null> => {
      try {
        const task = await action.submit();
        open(task.id, task);
        action.then?.(task);
        return task;
      } catch (err) {
        notifyError(err);
        return null;
      }
    },
    [open, notifyError],
  );

  const run = useCallback(
    (action: TaskAction) => {
      modal.confirm({
        title: action.title,
        content: action.content,
        okText: action.okText ?? t("common:action.confirm"),
        cancelText: t("common:action.cancel"),
        okButtonProps: { danger: action.danger, id: "confirm-ok" },
        onOk: () => submit(action),
      });
    },
    [modal, t, submit],
  );

  return { run, submit };
}
