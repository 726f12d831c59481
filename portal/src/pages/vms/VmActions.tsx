/**
 * The changes one can make to a VM, each behind a confirmation or a form that is one:
 * power, rename, resize, clone, migrate, template, delete; NIC, disk and snapshot edits
 * are in VmDetail's tabs. Each answers with a task shown live in the drawer. An action is
 * offered only when the caller's role allows it and the VM's pool can do it.
 */
import { DownOutlined, PoweroffOutlined } from "@ant-design/icons";
import { Button, Dropdown, Form, Input, InputNumber, Modal, Select } from "antd";
import type { MenuProps } from "antd";
import { useState } from "react";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";

import { api, path } from "../../api/client";
import { useDatastores, useHosts } from "../../api/lookups";
import type { Provider, Task, VMDetail } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { useTaskAction } from "../../tasks/useTaskAction";

export const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

/** Whether the VM's pool has a capability; unknown (pool not visible) counts as yes. */
export function capable(provider: Provider | undefined, capability: string): boolean {
  return provider?.capabilities[capability] !== false;
}

/** A modal form whose OK submits a task; the form is the confirmation. */
export function TaskForm<T extends object>({
  title,
  open,
  onClose,
  submit,
  initialValues,
  children,
  okText,
}: {
  title: ReactNode;
  open: boolean;
  onClose: () => void;
  submit: (values: T) => Promise<Task>;
  initialValues?: Partial<T>;
  children: ReactNode;
  okText?: string;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<T>();
  const [busy, setBusy] = useState(false);
  const { submit: send } = useTaskAction();
  const onOk = async () => {
    const values = await form.validateFields();
    setBusy(true);
    const task = await send({ submit: () => submit(values) });
    setBusy(false);
    if (task) onClose();
  };
  return (
    <Modal
      open={open}
      title={title}
      onCancel={onClose}
      onOk={onOk}
      okText={okText ?? t("common:action.confirm")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      destroyOnClose
      okButtonProps={{ id: "form-ok" }}
    >
      <Form form={form} layout="vertical" initialValues={initialValues} preserve={false}>
        {children}
      </Form>
    </Modal>
  );
}

type Dialog = "rename" | "resize" | "clone" | "migrate" | null;

export function VmActions({ vm, provider }: { vm: VMDetail; provider?: Provider }) {
  const { t } = useTranslation();
  const { can } = useAuth();
  const { run } = useTaskAction();
  const [dialog, setDialog] = useState<Dialog>(null);
  const hosts = useHosts(vm.provider_id, dialog === "migrate" || dialog === "clone");
  const datastores = useDatastores(vm.provider_id, dialog === "clone");
  const vmPath = path`/v1/vms/${vm.id}`;

  const power = (action: "start" | "stop" | "reboot" | "suspend") =>
    run({
      title: t(`vms:power.confirm.${action}`, { name: vm.name }),
      danger: action === "stop",
      okText: t(`vms:power.${action}`),
      submit: () => api.post<Task>(`${vmPath}/power`, { action }),
    });

  const running = vm.power_state === "running";
  const powerItems: MenuProps["items"] = [
    { key: "start", label: t("vms:power.start"), disabled: running },
    { key: "stop", label: t("vms:power.stop"), disabled: !running && vm.power_state !== "suspended" },
    { key: "reboot", label: t("vms:power.reboot"), disabled: !running },
    ...(capable(provider, "supports_suspend")
      ? [{ key: "suspend", label: t("vms:power.suspend"), disabled: !running }]
      : []),
  ];

  const more: MenuProps["items"] = [
    ...(can("rename_vm") && capable(provider, "supports_rename")
      ? [{ key: "rename", label: t("vms:action.rename") }]
      : []),
    ...(can("resize_vm") && capable(provider, "supports_resize")
      ? [{ key: "resize", label: t("vms:action.resize") }]
      : []),
    ...(can("clone_vm") && capable(provider, "supports_clone")
      ? [{ key: "clone", label: t("vms:action.clone") }]
      : []),
    ...(can("migrate_vm") && capable(provider, "supports_cold_migration")
      ? [{ key: "migrate", label: t("vms:action.migrate") }]
      : []),
    ...(capable(provider, "supports_templates") &&
    (vm.is_template ? can("convert_to_vm") : can("convert_to_template"))
      ? [{ key: "template", label: vm.is_template ? t("vms:action.toVm") : t("vms:action.toTemplate") }]
      : []),
    ...(can("delete_vm")
      ? [{ type: "divider" as const }, { key: "delete", label: t("vms:action.delete"), danger: true }]
      : []),
  ];

  const onMore: MenuProps["onClick"] = ({ key }) => {
    if (key === "delete") {
      run({
        title: t("vms:confirm.delete", { name: vm.name }),
        content: t("vms:confirm.deleteDetail"),
        danger: true,
        okText: t("vms:action.delete"),
        submit: () => api.delete<Task>(vmPath),
      });
    } else if (key === "template") {
      run({
        title: vm.is_template
          ? t("vms:confirm.toVm", { name: vm.name })
          : t("vms:confirm.toTemplate", { name: vm.name }),
        submit: () =>
          vm.is_template
            ? api.delete<Task>(`${vmPath}/template`)
            : api.post<Task>(`${vmPath}/template`),
      });
    } else {
      setDialog(key as Dialog);
    }
  };

  return (
    <>
      {can("power_vm") && capable(provider, "supports_power_ops") && !vm.is_template && (
        <Dropdown
          menu={{ items: powerItems, onClick: ({ key }) => power(key as "start") }}
          trigger={["click"]}
        >
          <Button icon={<PoweroffOutlined />} data-testid="vm-power">
            {t("vms:power.button")} <DownOutlined />
          </Button>
        </Dropdown>
      )}
      {more.length > 0 && (
        <Dropdown menu={{ items: more, onClick: onMore }} trigger={["click"]}>
          <Button data-testid="vm-actions">
            {t("vms:action.button")} <DownOutlined />
          </Button>
        </Dropdown>
      )}
      <TaskForm<{ name: string; stop_if_running: boolean }>
        open={dialog === "rename"}
        title={t("vms:action.rename")}
        onClose={() => setDialog(null)}
        initialValues={{ name: vm.name }}
        submit={(values) => api.post<Task>(`${vmPath}/rename`, values)}
      >
        <Form.Item
          name="name"
          label={t("vms:field.newName")}
          rules={[{ required: true, pattern: VM_NAME, message: t("vms:validation.name") }]}
        >
          <Input />
        </Form.Item>
      </TaskForm>
      <TaskForm<{ cpu_count: number; memory_mib: number }>
        open={dialog === "resize"}
        title={t("vms:action.resize")}
        onClose={() => setDialog(null)}
        initialValues={{ cpu_count: vm.cpu_count, memory_mib: vm.memory_mib }}
        submit={(values) => api.post<Task>(`${vmPath}/resize`, values)}
      >
        <Form.Item name="cpu_count" label={t("vms:field.cpus")} rules={[{ required: true }]}>
          <InputNumber min={1} max={256} style={{ width: "100%" }} />
        </Form.Item>
        <Form.Item name="memory_mib" label={t("vms:field.memoryMib")} rules={[{ required: true }]}>
          <InputNumber min={16} step={128} style={{ width: "100%" }} />
        </Form.Item>
      </TaskForm>
      <TaskForm<{ name: string; host_id?: string; datastore_id?: string }>
        open={dialog === "clone"}
        title={t("vms:action.clone")}
        onClose={() => setDialog(null)}
        initialValues={{ name: `${vm.name}-clone` }}
        submit={(values) => api.post<Task>(`${vmPath}/clone`, values)}
      >
        <Form.Item
          name="name"
          label={t("vms:field.cloneName")}
          extra={t("vms:clone.help")}
          rules={[{ required: true, pattern: VM_NAME, message: t("vms:validation.name") }]}
        >
          <Input />
        </Form.Item>
        <Form.Item name="host_id" label={t("vms:field.host")} extra={t("vms:clone.sameHost")}>
          <Select allowClear options={hosts.items.map((h) => ({ value: h.id, label: h.name }))} />
        </Form.Item>
        <Form.Item name="datastore_id" label={t("vms:field.datastore")}>
          <Select allowClear options={datastores.items.map((d) => ({ value: d.id, label: d.name }))} />
        </Form.Item>
      </TaskForm>
      <TaskForm<{ host_id: string }>
        open={dialog === "migrate"}
        title={t("vms:action.migrate")}
        onClose={() => setDialog(null)}
        okText={t("vms:action.migrate")}
        submit={(values) => api.post<Task>(`${vmPath}/migrate`, values)}
      >
        <Form.Item
          name="host_id"
          label={t("vms:field.targetHost")}
          extra={t("vms:migrate.help")}
          rules={[{ required: true, message: t("vms:validation.host") }]}
        >
          <Select
            options={hosts.items
              .filter((h) => h.id !== vm.host_id)
              .map((h) => ({ value: h.id, label: h.name }))}
          />
        </Form.Item>
      </TaskForm>
    </>
  );
}
