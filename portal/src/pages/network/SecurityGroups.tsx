/**
 * Security groups and their rules: ingress or egress, IPv4 or IPv6, a protocol with a
 * port range (type and code for ICMP), from a prefix or from another group's members.
 */
import { DeleteOutlined, PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { App, Button, Form, Input, InputNumber, Modal, Select, Space, Table, Tag, Typography } from "antd";
import type { TableProps } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";

import { api, path } from "../../api/client";
import type { SecurityGroup, SecurityRule } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { NAME, byId, useList, useProjectLabel } from "./shared";
import { useSubmit } from "../../api/useSubmit";

interface RuleForm {
  direction: SecurityRule["direction"];
  ethertype: SecurityRule["ethertype"];
  protocol: SecurityRule["protocol"] | "any";
  port_range_min?: number | null;
  port_range_max?: number | null;
  remote_ip_prefix?: string;
  remote_group_id?: string;
}

function RuleEditor({ group, groups, onChange }: { group: SecurityGroup; groups: SecurityGroup[]; onChange: () => void }) {
  const { t } = useTranslation();
  const { can } = useAuth();
  const notifyError = useNotifyError();
  const [form] = Form.useForm<RuleForm>();
  const protocol = Form.useWatch("protocol", form) ?? "any";
  const { busy, error, submit } = useSubmit();
  const names = byId(groups);
  const icmp = protocol === "icmp" || protocol === "icmpv6";

  const add = async () => {
    const v = await form.validateFields();
    await submit(async () => {
      await api.post<SecurityRule>(path`/v1/security-groups/${group.id}/rules`, {
        direction: v.direction,
        ethertype: v.ethertype,
        protocol: v.protocol === "any" ? null : v.protocol,
        port_range_min: v.protocol === "any" ? null : (v.port_range_min ?? null),
        port_range_max: v.protocol === "any" ? null : (v.port_range_max ?? null),
        remote_ip_prefix: v.remote_ip_prefix?.trim() || null,
        remote_group_id: v.remote_group_id || null,
      });
      form.resetFields(["port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id"]);
      onChange();
    });
  };

  const remove = async (rule: SecurityRule) => {
    try {
      await api.delete(path`/v1/security-groups/${group.id}/rules/${rule.id}`);
      onChange();
    } catch (err) {
      notifyError(err);
    }
  };

  const ports = (r: SecurityRule) => {
    if (r.port_range_min === null && r.port_range_max === null) return t("network:rules.anyPort");
    if (r.protocol === "icmp" || r.protocol === "icmpv6") return t("network:rules.icmpTypeCode", { type: r.port_range_min ?? "*", code: r.port_range_max ?? "*" });
    if (r.port_range_max === null || r.port_range_min === r.port_range_max) return String(r.port_range_min);
    return `${r.port_range_min ?? 0}–${r.port_range_max}`;
  };

  const columns: TableProps<SecurityRule>["columns"] = [
    { title: t("network:field.direction"), dataIndex: "direction", render: (d: SecurityRule["direction"]) => <Tag>{t(`network:direction.${d}`)}</Tag> },
    { title: t("network:field.ethertype"), dataIndex: "ethertype" },
    { title: t("network:field.protocol"), dataIndex: "protocol", render: (p: SecurityRule["protocol"]) => (p ? p.toUpperCase() : t("network:rules.anyProtocol")) },
    { title: t("network:field.ports"), key: "ports", render: (_: unknown, r) => ports(r) },
    {
      title: t("network:field.remote"),
      key: "remote",
      render: (_: unknown, r) =>
        r.remote_group_id
          ? t("network:rules.fromGroup", { name: names.get(r.remote_group_id)?.name ?? r.remote_group_id })
          : (r.remote_ip_prefix ?? t("network:rules.anywhere")),
    },
    {
      title: "",
      key: "actions",
      render: (_: unknown, r) =>
        can("delete_security_group_rule") ? (
          <Button size="small" danger icon={<DeleteOutlined />} onClick={() => void remove(r)} aria-label={t("common:action.delete")} />
        ) : null,
    },
  ];

  return (
    <Space direction="vertical" style={{ width: "100%" }} data-testid={`rules-${group.name}`}>
      <Table<SecurityRule>
        rowKey="id"
        size="small"
        columns={columns}
        dataSource={group.rules}
        pagination={false}
        locale={{ emptyText: t("network:rules.empty") }}
      />
      {can("create_security_group_rule") && (
        <>
          <ErrorAlert error={error} />
          <Form<RuleForm>
            form={form}
            layout="inline"
            initialValues={{ direction: "ingress", ethertype: "IPv4", protocol: "tcp" }}
            style={{ rowGap: 8 }}
          >
            <Form.Item name="direction">
              <Select style={{ width: 110 }} options={(["ingress", "egress"] as const).map((d) => ({ value: d, label: t(`network:direction.${d}`) }))} />
            </Form.Item>
            <Form.Item name="ethertype">
              <Select style={{ width: 90 }} options={[{ value: "IPv4", label: "IPv4" }, { value: "IPv6", label: "IPv6" }]} />
            </Form.Item>
            <Form.Item name="protocol">
              <Select
                style={{ width: 130 }}
                options={[
                  { value: "any", label: t("network:rules.anyProtocol") },
                  ...(["tcp", "udp", "icmp", "icmpv6"] as const).map((p) => ({ value: p, label: p.toUpperCase() })),
                ]}
                data-testid={`rule-protocol-${group.name}`}
              />
            </Form.Item>
            {protocol !== "any" && (
              <>
                <Form.Item name="port_range_min">
                  <InputNumber
                    min={0}
                    max={icmp ? 255 : 65535}
                    placeholder={icmp ? t("network:rules.icmpType") : t("network:rules.portMin")}
                    data-testid={`rule-port-min-${group.name}`}
                  />
                </Form.Item>
                <Form.Item name="port_range_max">
                  <InputNumber min={0} max={icmp ? 255 : 65535} placeholder={icmp ? t("network:rules.icmpCode") : t("network:rules.portMax")} />
                </Form.Item>
              </>
            )}
            <Form.Item name="remote_ip_prefix">
              <Input placeholder={t("network:rules.prefix")} style={{ width: 160 }} data-testid={`rule-prefix-${group.name}`} />
            </Form.Item>
            <Form.Item name="remote_group_id">
              <Select
                allowClear
                placeholder={t("network:rules.remoteGroup")}
                style={{ width: 160 }}
                options={groups.map((g) => ({ value: g.id, label: g.name }))}
              />
            </Form.Item>
            <Button icon={<PlusOutlined />} loading={busy} onClick={() => void add()} data-testid={`rule-add-${group.name}`}>
              {t("network:rules.add")}
            </Button>
          </Form>
        </>
      )}
    </Space>
  );
}

export default function SecurityGroups() {
  const { t } = useTranslation();
  const { can, principal } = useAuth();
  const { modal } = App.useApp();
  const notifyError = useNotifyError();
  const projectLabel = useProjectLabel();
  const groups = useList<SecurityGroup>("/v1/security-groups");
  const [creating, setCreating] = useState(false);
  const [form] = Form.useForm<{ name: string; description?: string }>();
  const [error, setError] = useState<unknown>(null);

  const create = async () => {
    const v = await form.validateFields();
    setError(null);
    try {
      await api.post<SecurityGroup>("/v1/security-groups", { name: v.name, description: v.description ?? "" });
      setCreating(false);
      groups.reload();
    } catch (err) {
      setError(err);
    }
  };

  const remove = (g: SecurityGroup) =>
    modal.confirm({
      title: t("network:groups.delete.confirm", { name: g.name }),
      okText: t("common:action.delete"),
      okButtonProps: { danger: true, id: "confirm-ok" },
      cancelText: t("common:action.cancel"),
      onOk: async () => {
        try {
          await api.delete(path`/v1/security-groups/${g.id}`);
          groups.reload();
        } catch (err) {
          notifyError(err);
        }
      },
    });

  const columns: TableProps<SecurityGroup>["columns"] = [
    { title: t("network:field.name"), dataIndex: "name", render: (v: string) => <Typography.Text strong>{v}</Typography.Text> },
    { title: t("network:field.description"), dataIndex: "description", render: (v: string) => v || "—" },
    { title: t("network:field.rules"), key: "rules", align: "right", render: (_: unknown, g) => g.rules.length },
    ...(principal?.is_admin
      ? [{ title: t("network:field.project"), key: "project", render: (_: unknown, g: SecurityGroup) => projectLabel(g.project_id) }]
      : []),
    {
      title: "",
      key: "actions",
      render: (_: unknown, g) =>
        can("delete_security_group") ? (
          <Button size="small" danger icon={<DeleteOutlined />} onClick={() => remove(g)}>
            {t("common:action.delete")}
          </Button>
        ) : null,
    },
  ];

  return (
    <>
      <PageHeader
        title={t("network:groups.title")}
        subtitle={t("network:groups.subtitle")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={groups.reload}>
              {t("common:action.refresh")}
            </Button>
            <Can op="create_security_group">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)} data-testid="create-group">
                {t("network:groups.create.button")}
              </Button>
            </Can>
          </>
        }
      />
      <ErrorAlert error={groups.error} style={{ marginBottom: 12 }} />
      <Table<SecurityGroup>
        rowKey="id"
        columns={columns}
        dataSource={groups.items ?? []}
        loading={groups.loading}
        pagination={false}
        locale={{ emptyText: t("network:groups.empty") }}
        data-testid="group-table"
        expandable={{
          expandedRowRender: (g) => <RuleEditor group={g} groups={groups.items ?? []} onChange={groups.reload} />,
        }}
      />
      <Modal
        open={creating}
        title={t("network:groups.create.title")}
        onCancel={() => setCreating(false)}
        afterClose={() => {
          form.resetFields();
          setError(null);
        }}
        onOk={() => void create()}
        okText={t("common:action.create")}
        cancelText={t("common:action.cancel")}
        okButtonProps={{ id: "group-ok" }}
      >
        <ErrorAlert error={error} style={{ marginBottom: 16 }} />
        <Form form={form} layout="vertical">
          <Form.Item name="name" label={t("network:field.name")} rules={[{ required: true, pattern: NAME, message: t("network:validation.name") }]}>
            <Input data-testid="group-name" />
          </Form.Item>
          <Form.Item name="description" label={t("network:field.description")}>
            <Input />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
