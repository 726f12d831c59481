/**
 * Tessera's own L2 networks (segments): flat, VLAN or VXLAN, realised by a task on the
 * pools chosen (a portgroup with the VLAN on a vCenter). Created and deleted here; the
 * detail page holds the subnets and ports.
 */
import { DeleteOutlined, PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { App, Button, Form, Input, InputNumber, Modal, Radio, Select, Space, Switch, Table, Tag, Tooltip, Typography } from "antd";
import type { TableProps } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import { api, path } from "../../api/client";
import { useProjects, useProviders } from "../../api/lookups";
import type { NetworkType, Segment, SegmentAccepted, Task } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { useTasks, useTaskUpdates } from "../../tasks/TaskContext";
import { NAME, RealisationTag, SegmentStatusTag, useList, useProjectLabel, useSegmentation } from "./shared";
import { useSubmit } from "../../api/useSubmit";

interface CreateForm {
  name: string;
  description?: string;
  network_type: NetworkType;
  segmentation_id?: number | null;
  physical_network?: string;
  provider_ids: string[];
  shared: boolean;
  external: boolean;
  project_id?: string;
}

const MAX_ID: Record<NetworkType, number> = { flat: 0, vlan: 4094, vxlan: 16777215 };

function CreateSegment({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: () => void }) {
  const { t } = useTranslation();
  const { can, principal } = useAuth();
  const tasks = useTasks();
  const [form] = Form.useForm<CreateForm>();
  const type = Form.useWatch("network_type", form) ?? "vlan";
  const providers = useProviders(open && can("list_providers"));
  const projects = useProjects(open && !!principal?.is_admin);
  const { busy, error, setError, submit } = useSubmit();

  const onOk = async () => {
    const values = await form.validateFields();
    await submit(async () => {
      const made = await api.post<SegmentAccepted>("/v1/segments", {
        name: values.name,
        description: values.description ?? "",
        network_type: values.network_type,
        segmentation_id: values.network_type === "flat" ? undefined : values.segmentation_id,
        physical_network: values.network_type === "vxlan" ? undefined : values.physical_network || undefined,
        provider_ids: values.provider_ids ?? [],
        ...(principal?.is_admin
          ? { shared: values.shared, external: values.external, project_id: values.project_id || undefined }
          : {}),
      });
      if (made.task) tasks.open(made.task.id, made.task);
      onCreated();
    });
  };

  return (
    <Modal
      open={open}
      title={t("network:segments.create.title")}
      onCancel={onClose}
      afterClose={() => {
        form.resetFields();
        setError(null);
      }}
      onOk={() => void onOk()}
      okText={t("common:action.create")}
      cancelText={t("common:action.cancel")}
      confirmLoading={busy}
      okButtonProps={{ id: "segment-ok" }}
      width={600}
    >
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Form<CreateForm>
        form={form}
        layout="vertical"
        initialValues={{ network_type: "vlan", physical_network: "default", provider_ids: [], shared: false, external: false }}
      >
        <Form.Item
          name="name"
          label={t("network:field.name")}
          rules={[{ required: true, pattern: NAME, message: t("network:validation.name") }]}
        >
          <Input data-testid="segment-name" />
        </Form.Item>
        <Form.Item name="description" label={t("network:field.description")}>
          <Input />
        </Form.Item>
        <Form.Item name="network_type" label={t("network:field.type")}>
          <Radio.Group
            optionType="button"
            data-testid="segment-type"
            options={(["flat", "vlan", "vxlan"] as const).map((v) => ({ value: v, label: t(`network:networkType.${v}`) }))}
          />
        </Form.Item>
        <Space.Compact block>
          {type !== "flat" && (
            <Form.Item
              name="segmentation_id"
              label={type === "vlan" ? t("network:field.vlanId") : t("network:field.vni")}
              extra={t("network:segments.create.idHelp", { max: MAX_ID[type] })}
              rules={[{ required: true, message: t("network:validation.segmentationId", { max: MAX_ID[type] }) }]}
              style={{ flex: 1, marginRight: 8 }}
            >
              <InputNumber min={1} max={MAX_ID[type]} style={{ width: "100%" }} data-testid="segment-id" />
            </Form.Item>
          )}
          {type !== "vxlan" && (
            <Form.Item
              name="physical_network"
              label={t("network:field.physicalNetwork")}
              extra={t("network:segments.create.physnetHelp")}
              style={{ flex: 1 }}
            >
              <Input data-testid="segment-physnet" />
            </Form.Item>
          )}
        </Space.Compact>
        {can("list_providers") && (
          <Form.Item name="provider_ids" label={t("network:field.pools")} extra={t("network:segments.create.poolsHelp")}>
            <Select
              mode="multiple"
              allowClear
              optionFilterProp="label"
              options={providers.items.map((p) => ({ value: p.id, label: p.name }))}
              data-testid="segment-pools"
            />
          </Form.Item>
        )}
        {principal?.is_admin && (
          <>
            <Form.Item name="project_id" label={t("network:field.project")} extra={t("network:segments.create.projectHelp")}>
              <Select
                allowClear
                optionFilterProp="label"
                placeholder={t("network:platform")}
                options={projects.items.map((p) => ({ value: p.id, label: p.name }))}
                data-testid="segment-project"
              />
            </Form.Item>
            <Space size="large">
              <Form.Item name="shared" label={t("network:field.shared")} valuePropName="checked" tooltip={t("network:segments.create.sharedHelp")}>
                <Switch data-testid="segment-shared" />
              </Form.Item>
              <Form.Item name="external" label={t("network:field.external")} valuePropName="checked" tooltip={t("network:segments.create.externalHelp")}>
                <Switch data-testid="segment-external" />
              </Form.Item>
            </Space>
          </>
        )}
      </Form>
    </Modal>
  );
}

export default function Segments() {
  const { t } = useTranslation();
  const { can, principal } = useAuth();
  const { modal, message } = App.useApp();
  const tasks = useTasks();
  const notifyError = useNotifyError();
  const segmentation = useSegmentation();
  const projectLabel = useProjectLabel();
  const providers = useProviders(can("list_providers"));
  const segments = useList<Segment>("/v1/segments");
  const [creating, setCreating] = useState(false);

  useTaskUpdates((task: Task) => {
    if (task.kind.startsWith("segment.") && task.state !== "queued") segments.reload();
  });

  const remove = (s: Segment) =>
    modal.confirm({
      title: t("network:segments.delete.confirm", { name: s.name }),
      content: t("network:segments.delete.detail"),
      okText: t("common:action.delete"),
      okButtonProps: { danger: true, id: "confirm-ok" },
      cancelText: t("common:action.cancel"),
      onOk: async () => {
        try {
          const gone = await api.delete<SegmentAccepted>(path`/v1/segments/${s.id}`);
          if (gone.task) tasks.open(gone.task.id, gone.task);
          else message.success(t("network:segments.delete.done", { name: s.name }));
          segments.reload();
        } catch (err) {
          notifyError(err);
        }
      },
    });

  const columns: TableProps<Segment>["columns"] = [
    {
      title: t("network:field.name"),
      dataIndex: "name",
      render: (name: string, s) => (
        <Space direction="vertical" size={0}>
          <Link to={`/network/segments/${encodeURIComponent(s.id)}`} data-testid={`segment-link-${name}`}>
            {name}
          </Link>
          {s.description && <Typography.Text type="secondary" style={{ fontSize: 12 }}>{s.description}</Typography.Text>}
        </Space>
      ),
    },
    { title: t("network:field.type"), key: "type", render: (_: unknown, s) => segmentation(s) },
    {
      title: t("network:field.status"),
      dataIndex: "status",
      render: (_: unknown, s) => (
        <span data-testid={`segment-status-${s.name}`}>
          <SegmentStatusTag status={s.status} />
        </span>
      ),
    },
    {
      title: t("network:field.pools"),
      key: "pools",
      render: (_: unknown, s) =>
        s.realisations.length === 0 ? (
          <Typography.Text type="secondary">{t("network:segments.noPools")}</Typography.Text>
        ) : (
          <Space wrap size={4}>
            {s.realisations.map((r) => (
              <Tooltip key={r.provider_id} title={r.native_name ? `${r.native_name} · ${r.location}` : undefined}>
                <span>
                  {providers.byId.get(r.provider_id)?.name ?? r.provider_id} <RealisationTag state={r.state} />
                </span>
              </Tooltip>
            ))}
          </Space>
        ),
    },
    { title: t("network:field.subnets"), key: "subnets", align: "right", render: (_: unknown, s) => s.subnet_ids.length },
    {
      title: t("network:field.flags"),
      key: "flags",
      render: (_: unknown, s) => (
        <>
          {s.shared && <Tag color="blue">{t("network:field.shared")}</Tag>}
          {s.external && <Tag color="purple">{t("network:field.external")}</Tag>}
        </>
      ),
    },
    ...(principal?.is_admin
      ? [{ title: t("network:field.project"), key: "project", render: (_: unknown, s: Segment) => projectLabel(s.project_id) }]
      : []),
    {
      title: "",
      key: "actions",
      render: (_: unknown, s) =>
        can("delete_segment") && (principal?.is_admin || (s.project_id !== null && s.project_id === principal?.project_id)) ? (
          <Button
            size="small"
            danger
            icon={<DeleteOutlined />}
            onClick={() => remove(s)}
            disabled={s.status === "deleting"}
            data-testid={`segment-delete-${s.name}`}
          >
            {t("common:action.delete")}
          </Button>
        ) : null,
    },
  ];

  return (
    <>
      <PageHeader
        title={t("network:segments.title")}
        subtitle={t("network:segments.subtitle")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={segments.reload}>
              {t("common:action.refresh")}
            </Button>
            <Can op="create_segment">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)} data-testid="create-segment">
                {t("network:segments.create.button")}
              </Button>
            </Can>
          </>
        }
      />
      <ErrorAlert error={segments.error} style={{ marginBottom: 12 }} />
      <Table<Segment>
        rowKey="id"
        columns={columns}
        dataSource={segments.items ?? []}
        loading={segments.loading}
        pagination={false}
        scroll={{ x: "max-content" }}
        locale={{ emptyText: t("network:segments.empty") }}
        data-testid="segment-table"
      />
      <CreateSegment
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={() => {
          setCreating(false);
          segments.reload();
        }}
      />
    </>
  );
}
