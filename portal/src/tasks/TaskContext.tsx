/**
 * One live task stream per logged-in tab, shared by every page (useTaskUpdates), and the
 * task drawer any page can open (useTasks().open) to watch a task run to its end.
 */
import { createContext, useContext, useEffect, useMemo, useRef, useState } from "react";
import type { ReactNode } from "react";

import type { Task } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { TaskDrawer } from "./TaskDrawer";
import { TaskStream } from "./stream";
import type { TaskListener } from "./stream";

interface TaskState {
  stream: TaskStream;
  connected: boolean;
  /** Show a task in the drawer; `task` (a 202's body) shows at once, before any fetch. */
  open: (id: string, task?: Task) => void;
}

const TaskContext = createContext<TaskState | null>(null);

export function TaskProvider({ children }: { children: ReactNode }) {
  const { principal } = useAuth();
  const stream = useRef(new TaskStream()).current;
  const [connected, setConnected] = useState(false);
  const [shown, setShown] = useState<{ id: string; task?: Task } | null>(null);

  useEffect(() => stream.onStatus(setConnected), [stream]);
  useEffect(() => {
    if (!principal) return undefined;
    stream.start();
    return () => stream.stop();
  }, [principal, stream]);

  const value = useMemo(
    () => ({ stream, connected, open: (id: string, task?: Task) => setShown({ id, task }) }),
    [stream, connected],
  );
  return (
    <TaskContext.Provider value={value}>
      {children}
      {shown && principal && (
        <TaskDrawer
          key={shown.id}
          taskId={shown.id}
          initial={shown.task}
          onClose={() => setShown(null)}
          onOpen={(id) => setShown({ id })}
        />
      )}
    </TaskContext.Provider>
  );
}

export function useTasks(): TaskState {
  const state = useContext(TaskContext);
  if (!state) throw new Error("useTasks outside TaskProvider");
  return state;
}

/** Calls `listener` with every task change the stream brings while the component lives. */
export function useTaskUpdates(listener: TaskListener): void {
  const { stream } = useTasks();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => stream.subscribe((task) => latest.current(task)), [stream]);
}
