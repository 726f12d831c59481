/**
 * Bulk power, tag and delete over the selected VMs, or over every VM the list's filters
 * match: a preview counts them first, the confirmation names them, and the request
 * carries that count so nothing else is touched if the selection changed meanwhile.
 */
import { DownOutlined } from "@ant-design/icons";
import { App, Button, Dropdown, Form, Select, Tooltip, Typography } from "antd";
import type { MenuProps } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";

import { api } from "../../api/client";
import type { BulkPreview, Task } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { useNotifyError } from "../../components/ErrorAlert";
import { useTaskAction } from "../../tasks/useTaskAction";

export interface VmFilters {
  name?: string;
  power_state?: string;
  provider_id?: string;
  host_id?: string;
  tag?: string;
}

type BulkKind = "start" | "stop" | "reboot" | "suspend" | "tag" | "untag" | "delete";

const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:=/+-]{0,127}$/;

function actionBody(kind: BulkKind, tags: string[]): Record<string, unknown> {
  if (kind === "delete") return { kind: "delete" };
  if (kind === "tag") return { kind: "tag", add: tags };
  if (kind === "untag") return { kind: "tag", remove: tags };
  return { kind: "power", action: kind };
}

export function BulkActions({
  filters,
  selected,
  onDone,
}: {
  filters: VmFilters;
  selected: string[];
  onDone: () => void;
}) {
  const { t } = useTranslation();
  const { can } = useAuth();
  const { modal } = App.useApp();
  const notifyError = useNotifyError();
  const { run } = useTaskAction();
  const [busy, setBusy] = useState(false);
  const [tagForm] = Form.useForm<{ tags: string[] }>();

  if (!can("submit_bulk") || !can("preview_bulk")) return null;

  const hasFilter = Object.values(filters).some(Boolean);
  const select = selected.length > 0 ? { vm_ids: selected } : { ...filters };
  const scopeText =
    selected.length > 0
      ? t("vms:bulk.scopeSelected", { count: selected.length })
      : t("vms:bulk.scopeFiltered");

  const confirm = async (kind: BulkKind, tags: string[] = []) => {
    setBusy(true);
    let preview: BulkPreview;
    try {
      preview = await api.post<BulkPreview>("/v1/vms/bulk/preview", { select });
    } catch (err) {
      notifyError(err);
      return;
    } finally {
      setBusy(false);
    }
    if (preview.count === 0) {
      modal.info({ title: t("vms:bulk.nothing"), okText: t("common:action.ok") });
      return;
    }
    const names = preview.vms.slice(0, 10).map((vm) => vm.name);
    run({
      title: t(`vms:bulk.confirm.${kind}`, { count: preview.count }),
      danger: kind === "delete" || kind === "stop",
      content: (
        <>
          <Typography.Paragraph>{names.join(", ")}</Typography.Paragraph>
          {preview.count > names.length && (
            <Typography.Text type="secondary">
              {t("vms:bulk.andMore", { count: preview.count - names.length })}
            </Typography.Text>
          )}
        </>
      ),
      submit: () =>
        api.post<Task>("/v1/vms/bulk", {
          select,
          action: actionBody(kind, tags),
          expected_count: preview.count,
        }),
      then: onDone,
    });
  };

  const askTags = (kind: "tag" | "untag") => {
    tagForm.resetFields();
    modal.confirm({
      title: t(`vms:bulk.tagTitle.${kind}`),
      okText: t("common:action.next"),
      cancelText: t("common:action.cancel"),
      content: (
        <Form form={tagForm} layout="vertical">
          <Form.Item
            name="tags"
            label={t("vms:field.tags")}
            rules={[
              { required: true, message: t("vms:bulk.tagsRequired") },
              {
                validator: (_r, value: string[] = []) =>
                  value.every((tag) => TAG_PATTERN.test(tag))
                    ? Promise.resolve()
                    : Promise.reject(new Error(t("vms:bulk.tagInvalid"))),
              },
            ]}
          >
            <Select mode="tags" open={false} tokenSeparators={[",", " "]} />
          </Form.Item>
        </Form>
      ),
      onOk: async () => {
        const { tags } = await tagForm.validateFields();
        void confirm(kind, tags);
      },
    });
  };

  const items: MenuProps["items"] = [
    { key: "start", label: t("vms:power.start") },
    { key: "stop", label: t("vms:power.stop") },
    { key: "reboot", label: t("vms:power.reboot") },
    { key: "suspend", label: t("vms:power.suspend") },
    { type: "divider" },
    { key: "tag", label: t("vms:bulk.addTags") },
    { key: "untag", label: t("vms:bulk.removeTags") },
    { type: "divider" },
    { key: "delete", label: t("vms:action.delete"), danger: true },
  ];
  const disabled = selected.length === 0 && !hasFilter;
  const button = (
    <Dropdown
      disabled={disabled}
      menu={{
        items,
        onClick: ({ key }) =>
          key === "tag" || key === "untag" ? askTags(key) : void confirm(key as BulkKind),
      }}
    >
      <Button loading={busy} data-testid="bulk-actions">
        {t("vms:bulk.button")} <DownOutlined />
      </Button>
    </Dropdown>
  );
  return (
    <Tooltip title={disabled ? t("vms:bulk.needSelection") : scopeText}>{button}</Tooltip>
  );
}
