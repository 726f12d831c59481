/**
 * The address space (administrators): the ranges recorded besides subnets — regions'
 * spaces, VPN peers, routed announcements, migration targets — and the overlap report,
 * every pair of ranges that collide now, with both owners named.
 */
import { DeleteOutlined, PlusOutlined, ReloadOutlined, WarningOutlined } from "@ant-design/icons";
import { Alert, App, AutoComplete, Button, Card, Form, Input, Modal, Select, Space, Table, Tag, Typography } from "antd";
import type { TableProps } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";

import { api, path } from "../../api/client";
import { useProviders } from "../../api/lookups";
import type { AddressOverlap, AddressRange, RangeKind, RangeOwner } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { useList } from "./shared";
import { useSubmit } from "../../api/useSubmit";

const RECORDED: RangeKind[] = ["region", "vpn-peer", "announcement", "migration-target"];
const LABEL = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$/;

interface RangeForm {
  name: string;
  kind: RangeKind;
  cidr: string;
  region?: string;
  description?: string;
}

function KindTag({ kind }: { kind: RangeKind }) {
  const { t } = useTranslation();
  return <Tag>{t(`network:rangeKind.${kind}`)}</Tag>;
}

function Owner({ owner }: { owner: RangeOwner }) {
  return (
    <Space direction="vertical" size={0}>
      <Space size={4}>
        <Typography.Text code>{owner.cidr}</Typography.Text>
        <KindTag kind={owner.kind} />
      </Space>
      <Typography.Text type="secondary">{owner.owner}</Typography.Text>
    </Space>
  );
}

export default function AddressSpace() {
  const { t } = useTranslation();
  const { can } = useAuth();
  const { modal } = App.useApp();
  const notifyError = useNotifyError();
  const providers = useProviders(can("list_providers"));
  const ranges = useList<AddressRange>("/v1/address-ranges");
  const overlaps = useList<AddressOverlap>(can("list_address_overlaps") ? "/v1/address-overlaps" : null);
  const [form] = Form.useForm<RangeForm>();
  const kind = Form.useWatch("kind", form) ?? "region";
  const [creating, setCreating] = useState(false);
  const { busy, error, setError, submit } = useSubmit();
  const regions = [...new Set(providers.items.map((p) => p.region))];

  const reload = () => {
    ranges.reload();
    overlaps.reload();
  };

  const create = async () => {
    const v = await form.validateFields();
    await submit(async () => {
      await api.post<AddressRange>("/v1/address-ranges", {
        name: v.name,
        kind: v.kind,
        cidr: v.cidr.trim(),
        region: v.region?.trim() || undefined,
        description: v.description ?? "",
      });
      setCreating(false);
      reload();
    });
  };

  const remove = (r: AddressRange) =>
    modal.confirm({
      title: t("network:ranges.delete.confirm", { name: r.name, cidr: r.cidr }),
      okText: t("common:action.delete"),
      okButtonProps: { danger: true, id: "confirm-ok" },
      cancelText: t("common:action.cancel"),
      onOk: async () => {
        try {
          await api.delete(path`/v1/address-ranges/${r.id}`);
          reload();
        } catch (err) {
          notifyError(err);
        }
      },
    });

  const rangeColumns: TableProps<AddressRange>["columns"] = [
    { title: t("network:field.name"), dataIndex: "name" },
    { title: t("network:field.kind"), dataIndex: "kind", render: (k: RangeKind) => <KindTag kind={k} /> },
    { title: t("network:field.cidr"), dataIndex: "cidr", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
    { title: t("network:field.region"), dataIndex: "region_id", render: (v: string | null) => v ?? "—" },
    { title: t("network:field.description"), dataIndex: "description", render: (v: string) => v || "—" },
    {
      title: "",
      key: "actions",
      render: (_: unknown, r) =>
        can("delete_address_range") ? (
          <Button size="small" danger icon={<DeleteOutlined />} onClick={() => remove(r)}>
            {t("common:action.delete")}
          </Button>
        ) : null,
    },
  ];

  const overlapColumns: TableProps<AddressOverlap>["columns"] = [
    { title: t("network:overlaps.first"), key: "first", render: (_: unknown, o) => <Owner owner={o.first} /> },
    { title: t("network:overlaps.second"), key: "second", render: (_: unknown, o) => <Owner owner={o.second} /> },
  ];

  const found = overlaps.items?.length ?? 0;
  return (
    <>
      <PageHeader
        title={t("network:ranges.title")}
        subtitle={t("network:ranges.subtitle")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={reload}>
              {t("common:action.refresh")}
            </Button>
            <Can op="create_address_range">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)} data-testid="create-range">
                {t("network:ranges.create.button")}
              </Button>
            </Can>
          </>
        }
      />
      <Space direction="vertical" size={16} style={{ width: "100%" }}>
        {can("list_address_overlaps") && (
          <Card title={t("network:overlaps.title")} size="small">
            <ErrorAlert error={overlaps.error} style={{ marginBottom: 12 }} />
            {overlaps.items && (
              <Alert
                type={found ? "warning" : "success"}
                icon={found ? <WarningOutlined /> : undefined}
                showIcon
                message={found ? t("network:overlaps.found", { count: found }) : t("network:overlaps.none")}
                style={{ marginBottom: 12 }}
                data-testid="overlap-summary"
              />
            )}
            <Table<AddressOverlap>
              rowKey={(o) => `${o.first.object_id}|${o.second.object_id}`}
              size="small"
              columns={overlapColumns}
              dataSource={overlaps.items ?? []}
              loading={overlaps.loading}
              pagination={false}
              locale={{ emptyText: t("network:overlaps.none") }}
              data-testid="overlap-table"
            />
          </Card>
        )}
        <Card title={t("network:ranges.recorded")} size="small">
          <ErrorAlert error={ranges.error} style={{ marginBottom: 12 }} />
          <Table<AddressRange>
            rowKey="id"
            size="small"
            columns={rangeColumns}
            dataSource={ranges.items ?? []}
            loading={ranges.loading}
            pagination={false}
            locale={{ emptyText: t("network:ranges.empty") }}
            data-testid="range-table"
          />
        </Card>
      </Space>
      <Modal
        open={creating}
        title={t("network:ranges.create.title")}
        onCancel={() => setCreating(false)}
        afterClose={() => {
          form.resetFields();
          setError(null);
        }}
        onOk={() => void create()}
        okText={t("common:action.create")}
        cancelText={t("common:action.cancel")}
        confirmLoading={busy}
        okButtonProps={{ id: "range-ok" }}
      >
        <ErrorAlert error={error} style={{ marginBottom: 16 }} />
        <Form<RangeForm> form={form} layout="vertical" initialValues={{ kind: "region" }}>
          <Form.Item name="name" label={t("network:field.name")} rules={[{ required: true, pattern: LABEL, message: t("network:validation.label") }]}>
            <Input data-testid="range-name" />
          </Form.Item>
          <Form.Item name="kind" label={t("network:field.kind")} extra={t(`network:rangeHelp.${kind}`)}>
            <Select options={RECORDED.map((k) => ({ value: k, label: t(`network:rangeKind.${k}`) }))} data-testid="range-kind" />
          </Form.Item>
          <Form.Item name="cidr" label={t("network:field.cidr")} rules={[{ required: true, message: t("network:validation.cidr") }]}>
            <Input placeholder="10.20.0.0/16" data-testid="range-cidr" />
          </Form.Item>
          <Form.Item
            name="region"
            label={t("network:field.region")}
            rules={kind === "region" || kind === "announcement" ? [{ required: true, message: t("network:validation.region") }] : []}
          >
            <AutoComplete options={regions.map((r) => ({ value: r }))} data-testid="range-region" />
          </Form.Item>
          <Form.Item name="description" label={t("network:field.description")}>
            <Input />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
