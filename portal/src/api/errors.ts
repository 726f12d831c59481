/**
 * API errors as messages in the UI's language. The title comes from the body's stable
 * `code` (locales/<lng>/errors.json, `errors:code.<code>`), filled with the fields some
 * codes carry (a quota's limit, the task holding a VM); the server's own message, which
 * names the object or the field at fault, follows as the detail.
 */
import type { TFunction } from "i18next";

import { ApiError } from "./client";

export interface Described {
  title: string;
  detail?: string;
}

/** Codes whose translated title says it all: the English server message adds nothing. */
const SELF_EXPLAINED = new Set(["network", "unauthorized", "quota_exceeded", "too_many_requests"]);

/** A provider fault inside a server message: "connection test failed (auth_failed): ...". */
const PROVIDER_CODE = /\((unreachable|auth_failed|not_found|conflict|timeout|unsupported|invalid_request)\)/;

export function describeError(error: unknown, t: TFunction): Described {
  if (!(error instanceof ApiError)) {
    return { title: t("errors:code.internal_error"), detail: String(error) };
  }
  const { code, message } = error.body;
  const fields = { ...error.body, status: error.status } as Record<string, unknown>;
  if (code === "quota_exceeded" && typeof fields.quota === "string") {
    fields.quota = t(`common:quota.${fields.quota}`, { defaultValue: fields.quota });
  }
  let title = t(`errors:code.${code}`, { ...fields, defaultValue: "" });
  if (!title) title = t("errors:status", { status: error.status });
  const provider = code === "provider_failed" ? String(fields.provider_code ?? "") : "";
  const fault = provider || PROVIDER_CODE.exec(message)?.[1] || "";
  if (fault) {
    const why = t(`errors:provider.${fault}`, { defaultValue: "" });
    if (why) title = `${title} ${why}`;
  }
  if (SELF_EXPLAINED.has(code) || !message) return { title };
  return { title, detail: message };
}

/** One line: the title and the server's detail, for notifications and form errors. */
export function errorText(error: unknown, t: TFunction): string {
  const { title, detail } = describeError(error, t);
  return detail ? `${title} (${detail})` : title;
}
