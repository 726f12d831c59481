/**
 * Live task changes from GET /v1/tasks/stream (server-sent events). EventSource cannot
 * send an Authorization header and a token never goes in a URL, so the stream is read
 * with fetch() and parsed here; it reconnects with a growing pause when it drops.
 */
import { authHeaders } from "../api/client";
import type { Task } from "../api/types";

export type TaskListener = (task: Task) => void;

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/** Splits an SSE byte stream's text into messages; returns what is left unterminated. */
export function parseSse(buffer: string, emit: (message: SseMessage) => void): string {
  const blocks = buffer.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (data.length) emit({ event, data: data.join("\n"), id });
  }
  return rest;
}

function asTask(value: unknown): Task | null {
  if (typeof value !== "object" || value === null) return null;
  const candidate = (value as { task?: unknown }).task ?? value;
  const task = candidate as Partial<Task>;
  return typeof task.id === "string" && typeof task.state === "string" ? (task as Task) : null;
}

export class TaskStream {
  private listeners = new Set<TaskListener>();
  private statusListeners = new Set<(connected: boolean) => void>();
  private abort: AbortController | null = null;
  private retryMs = 1000;
  private timer: number | undefined;
  connected = false;

  subscribe(listener: TaskListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStatus(listener: (connected: boolean) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  start(): void {
    if (this.abort) return;
    this.abort = new AbortController();
    void this.run(this.abort.signal);
  }

  stop(): void {
    window.clearTimeout(this.timer);
    this.abort?.abort();
    this.abort = null;
    this.setConnected(false);
  }

  private setConnected(connected: boolean): void {
    if (this.connected === connected) return;
    this.connected = connected;
    this.statusListeners.forEach((listener) => listener(connected));
  }

  private async run(signal: AbortSignal): Promise<void> {
    try {
      const response = await fetch("/v1/tasks/stream?max_seconds=3600", {
        headers: { Accept: "text/event-stream", ...authHeaders() },
        signal,
        cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) {
        this.stop();
        return;
      }
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      this.setConnected(true);
      this.retryMs = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer = parseSse(buffer + value, (message) => this.dispatch(message));
      }
    } catch {
      if (signal.aborted) return;
    }
    this.setConnected(false);
    if (signal.aborted) return;
    this.timer = window.setTimeout(() => {
      if (this.abort?.signal === signal) void this.run(signal);
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 30000);
  }

  private dispatch(message: SseMessage): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message.data);
    } catch {
      return; // a keep-alive or a message that is not a task
    }
    const task = asTask(parsed);
    if (task) this.listeners.forEach((listener) => listener(task));
  }
}
