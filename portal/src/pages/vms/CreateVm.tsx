/**
 * The create wizard: what the VM is, where it may go and what it is attached to, then a
 * review with the scheduler's dry run (where it would go now, the other candidates and
 * why any was refused) before anything is created. The create then runs as a task,
 * followed live here until the VM exists.
 */
import { MinusCircleOutlined, PlusOutlined } from "@ant-design/icons";
import {
  Alert,
  Button,
  Card,
  Checkbox,
  Descriptions,
  Flex,
  Form,
  Input,
  InputNumber,
  Progress,
  Result,
  Select,
  Space,
  Steps,
  Table,
  Tag,
  Typography,
} from "antd";
import { useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate } from "react-router-dom";

import { api } from "../../api/client";
import { useDatastores, useNetworks, useProviders } from "../../api/lookups";
import type { PlacementCandidate, PlacementDecision, Project, Task } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { ErrorAlert } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { TaskStateTag } from "../../components/StateTags";
import { useFormat } from "../../i18n/format";
import { useTaskUpdates, useTasks } from "../../tasks/TaskContext";
import { VM_NAME } from "./VmActions";

interface WizardValues {
  name: string;
  cpus: number;
  memory_mib: number;
  power_on: boolean;
  project_id?: string;
  provider_id?: string;
  zone?: string;
  group?: string;
  strategy: "spread" | "pack";
  disks: { size_gib: number; datastore_id?: string }[];
  nics: { network_id: string; mac?: string }[];
}

const STEP_FIELDS: (keyof WizardValues)[][] = [
  ["name", "cpus", "memory_mib", "power_on", "project_id"],
  ["provider_id", "zone", "group", "strategy", "disks", "nics"],
  [],
];

/** The POST /v1/vms body: only what was given. */
function body(values: WizardValues): Record<string, unknown> {
  return {
    name: values.name,
    cpus: values.cpus,
    memory_mib: values.memory_mib,
    power_on: values.power_on,
    strategy: values.strategy,
    provider_id: values.provider_id || undefined,
    project_id: values.project_id || undefined,
    zone: values.zone || undefined,
    group: values.group?.trim() || undefined,
    disks: (values.disks ?? []).map((d) => ({ size_gib: d.size_gib, datastore_id: d.datastore_id || undefined })),
    nics: (values.nics ?? []).map((n) => ({ network_id: n.network_id, mac: n.mac || undefined })),
  };
}

function CandidateText({ c }: { c: PlacementCandidate }) {
  const { t } = useTranslation();
  return (
    <Space wrap>
      <Typography.Text strong>{c.name}</Typography.Text>
      <Tag>{t(`vms:create.candidateKind.${c.kind}`)}</Tag>
      <span>
        {c.provider_name} · {c.zone}
      </span>
    </Space>
  );
}

function DryRun({ decision }: { decision: PlacementDecision }) {
  const { t } = useTranslation();
  const f = useFormat();
  return (
    <Flex vertical gap={12} data-testid="dry-run">
      {decision.chosen ? (
        <Alert
          type="success"
          showIcon
          message={t("vms:create.placedOn")}
          description={
            <Flex vertical gap={4}>
              <CandidateText c={decision.chosen} />
              {decision.datastore && (
                <span>
                  {t("vms:field.datastore")}: {decision.datastore.name} (
                  {t("vms:create.free", { size: f.bytes(decision.datastore.free_bytes) })})
                </span>
              )}
              <Typography.Text type="secondary">{decision.summary}</Typography.Text>
            </Flex>
          }
        />
      ) : (
        <Alert type="error" showIcon message={t("errors:code.no_valid_placement")} description={decision.summary} />
      )}
      {decision.ranked.length > 0 && (
        <Table
          size="small"
          rowKey="id"
          pagination={false}
          title={() => t("vms:create.ranked")}
          dataSource={decision.ranked.slice(0, 10)}
          columns={[
            { title: t("vms:create.candidate"), key: "c", render: (_: unknown, c: PlacementCandidate) => <CandidateText c={c} /> },
            {
              title: t("vms:create.cpuUse"),
              key: "cpu",
              render: (_: unknown, c: PlacementCandidate) => `${f.number(c.vcpus_used)} / ${f.number(c.cpu_cores)}`,
            },
            {
              title: t("vms:create.memoryUse"),
              key: "mem",
              render: (_: unknown, c: PlacementCandidate) => `${f.mib(c.memory_mib_used)} / ${f.mib(c.memory_mib)}`,
            },
            { title: t("vms:create.score"), dataIndex: "score", render: (s: number) => f.number(s, 3) },
          ]}
        />
      )}
      {decision.rejected.length > 0 && (
        <Table
          size="small"
          rowKey="id"
          pagination={false}
          title={() => t("vms:create.rejected")}
          dataSource={decision.rejected.slice(0, 20)}
          columns={[
            { title: t("vms:create.candidate"), key: "c", render: (_: unknown, c: PlacementCandidate) => <CandidateText c={c} /> },
            {
              title: t("vms:create.reasons"),
              dataIndex: "reasons",
              render: (reasons: { filter: string; reason: string }[]) =>
                reasons.map((r) => (
                  <div key={r.filter}>
                    <Tag>{r.filter}</Tag>
                    {r.reason}
                  </div>
                )),
            },
          ]}
        />
      )}
    </Flex>
  );
}

function Watch({ task }: { task: Task }) {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const { open } = useTasks();
  const [current, setCurrent] = useState(task);
  useTaskUpdates((update) => {
    if (update.id === task.id) setCurrent(update);
  });
  useEffect(() => {
    // The stream may have told of the end before this view subscribed: ask once.
    api.get<Task>(`/v1/tasks/${encodeURIComponent(task.id)}`).then(setCurrent).catch(() => undefined);
  }, [task.id]);
  const vmId = typeof current.result?.vm_id === "string" ? current.result.vm_id : current.vm_id;
  const status =
    current.state === "succeeded" ? "success" : current.state === "failed" ? "error" : current.state === "cancelled" ? "warning" : "info";
  return (
    <div data-testid="create-watch">
    <Result
      status={status}
      title={t(`vms:create.watch.${current.state}`)}
      subTitle={<TaskStateTag state={current.state} />}
      extra={
        <Flex vertical align="center" gap={16}>
          <Progress percent={current.progress} style={{ width: 360 }} status={status === "error" ? "exception" : undefined} />
          {current.error && <Typography.Text type="danger">{current.error.message}</Typography.Text>}
          <Space>
            <Button onClick={() => open(current.id, current)}>{t("vms:create.taskDetails")}</Button>
            {current.state === "succeeded" && vmId && (
              <Button type="primary" onClick={() => navigate(`/vms/${vmId}`)} data-testid="open-new-vm">
                {t("vms:create.openVm")}
              </Button>
            )}
          </Space>
        </Flex>
      }
    />
    </div>
  );
}

export default function CreateVm() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const { principal, can } = useAuth();
  const [form] = Form.useForm<WizardValues>();
  const [step, setStep] = useState(0);
  const [values, setValues] = useState<Partial<WizardValues>>({});
  const [decision, setDecision] = useState<PlacementDecision | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [task, setTask] = useState<Task | null>(null);
  const [projects, setProjects] = useState<Project[]>([]);
  const providers = useProviders(can("list_providers"));
  const providerId = Form.useWatch("provider_id", form);
  const networks = useNetworks(providerId, can("list_networks"));
  const datastores = useDatastores(providerId, can("list_datastores") && Boolean(providerId));

  useEffect(() => {
    if (principal?.is_admin) api.get<Project[]>("/v1/projects").then(setProjects).catch(() => undefined);
  }, [principal]);

  const zones = useMemo(
    () => [...new Set(providers.items.map((p) => `${p.region}/${p.zone}`))],
    [providers.items],
  );
  const poolName = (id: string) => providers.byId.get(id)?.name ?? id;

  const next = async () => {
    const fields = await form.validateFields(STEP_FIELDS[step]);
    const merged = { ...values, ...fields } as WizardValues;
    setValues(merged);
    if (step === 1) {
      setBusy(true);
      setError(null);
      setDecision(null);
      try {
        setDecision(await api.post<PlacementDecision>("/v1/vms/dry-run", body(merged)));
      } catch (err) {
        setError(err);
      } finally {
        setBusy(false);
      }
    }
    setStep(step + 1);
  };

  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      setTask(await api.post<Task>("/v1/vms", body(values as WizardValues)));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (task) {
    return (
      <>
        <PageHeader title={t("vms:create.title")} />
        <Card>
          <Watch task={task} />
        </Card>
      </>
    );
  }

  const all = values as WizardValues;
  return (
    <>
      <PageHeader title={t("vms:create.title")} />
      <Card>
        <Steps
          current={step}
          style={{ marginBottom: 24 }}
          items={[
            { title: t("vms:create.step.basics") },
            { title: t("vms:create.step.placement") },
            { title: t("vms:create.step.review") },
          ]}
        />
        <Form<WizardValues>
          form={form}
          layout="vertical"
          style={{ maxWidth: 720 }}
          initialValues={{ cpus: 1, memory_mib: 512, power_on: true, strategy: "spread", disks: [], nics: [] }}
          preserve
        >
          <div style={{ display: step === 0 ? "block" : "none" }}>
            <Form.Item
              name="name"
              label={t("vms:field.name")}
              rules={[{ required: true, pattern: VM_NAME, message: t("vms:validation.name") }]}
            >
              <Input data-testid="create-name" />
            </Form.Item>
            <Flex gap={16}>
              <Form.Item name="cpus" label={t("vms:field.cpus")} rules={[{ required: true }]} style={{ flex: 1 }}>
                <InputNumber min={1} max={256} style={{ width: "100%" }} />
              </Form.Item>
              <Form.Item name="memory_mib" label={t("vms:field.memoryMib")} rules={[{ required: true }]} style={{ flex: 1 }}>
                <InputNumber min={16} step={128} style={{ width: "100%" }} />
              </Form.Item>
            </Flex>
            {principal?.is_admin && (
              <Form.Item name="project_id" label={t("vms:field.project")} extra={t("vms:create.projectHelp")}>
                <Select allowClear options={projects.map((p) => ({ value: p.id, label: p.name }))} />
              </Form.Item>
            )}
            <Form.Item name="power_on" valuePropName="checked">
              <Checkbox>{t("vms:create.powerOn")}</Checkbox>
            </Form.Item>
          </div>
          <div style={{ display: step === 1 ? "block" : "none" }}>
            <Form.Item name="provider_id" label={t("vms:field.pool")} extra={t("vms:create.poolHelp")}>
              <Select
                allowClear
                placeholder={t("vms:create.anyPool")}
                options={providers.items.map((p) => ({ value: p.id, label: p.name }))}
                data-testid="create-pool"
              />
            </Form.Item>
            <Flex gap={16}>
              <Form.Item name="zone" label={t("vms:create.zone")} style={{ flex: 1 }}>
                <Select allowClear placeholder={t("vms:create.anyZone")} options={zones.map((z) => ({ value: z, label: z }))} />
              </Form.Item>
              <Form.Item name="strategy" label={t("vms:create.strategy")} style={{ flex: 1 }}>
                <Select
                  options={[
                    { value: "spread", label: t("vms:create.spread") },
                    { value: "pack", label: t("vms:create.pack") },
                  ]}
                />
              </Form.Item>
              <Form.Item name="group" label={t("vms:create.group")} style={{ flex: 1 }}>
                <Input placeholder={t("vms:create.groupPlaceholder")} />
              </Form.Item>
            </Flex>
            <Typography.Text strong>{t("vms:create.disks")}</Typography.Text>
            <Form.List name="disks">
              {(fields, { add, remove }) => (
                <div style={{ margin: "8px 0 16px" }}>
                  {fields.map((field) => (
                    <Space key={field.key} align="baseline">
                      <Form.Item name={[field.name, "size_gib"]} rules={[{ required: true }]} label={t("vms:disk.sizeGib")}>
                        <InputNumber min={1} max={65536} />
                      </Form.Item>
                      <Form.Item name={[field.name, "datastore_id"]} label={t("vms:field.datastore")}>
                        <Select
                          allowClear
                          style={{ width: 220 }}
                          placeholder={t("vms:create.anyDatastore")}
                          options={datastores.items.map((d) => ({ value: d.id, label: d.name }))}
                        />
                      </Form.Item>
                      <MinusCircleOutlined onClick={() => remove(field.name)} aria-label={t("common:action.delete")} />
                    </Space>
                  ))}
                  <Button type="dashed" icon={<PlusOutlined />} onClick={() => add({ size_gib: 10 })}>
                    {t("vms:disk.add")}
                  </Button>
                </div>
              )}
            </Form.List>
            <Typography.Text strong>{t("vms:create.nics")}</Typography.Text>
            <Form.List name="nics">
              {(fields, { add, remove }) => (
                <div style={{ margin: "8px 0 16px" }}>
                  {fields.map((field) => (
                    <Space key={field.key} align="baseline">
                      <Form.Item
                        name={[field.name, "network_id"]}
                        label={t("vms:nic.network")}
                        rules={[{ required: true, message: t("vms:validation.network") }]}
                      >
                        <Select
                          style={{ width: 260 }}
                          options={networks.items.map((n) => ({ value: n.id, label: `${n.name} · ${poolName(n.provider_id)}` }))}
                        />
                      </Form.Item>
                      <Form.Item name={[field.name, "mac"]} label={t("vms:nic.mac")}>
                        <Input placeholder={t("vms:nic.macAuto")} style={{ width: 200 }} />
                      </Form.Item>
                      <MinusCircleOutlined onClick={() => remove(field.name)} aria-label={t("common:action.delete")} />
                    </Space>
                  ))}
                  <Button type="dashed" icon={<PlusOutlined />} onClick={() => add()}>
                    {t("vms:nic.add")}
                  </Button>
                </div>
              )}
            </Form.List>
          </div>
        </Form>
        {step === 2 && (
          <Flex vertical gap={16} style={{ maxWidth: 960 }}>
            <Descriptions bordered size="small" column={2}>
              <Descriptions.Item label={t("vms:field.name")}>{all.name}</Descriptions.Item>
              <Descriptions.Item label={t("vms:field.cpus")}>{all.cpus}</Descriptions.Item>
              <Descriptions.Item label={t("vms:field.memoryMib")}>{all.memory_mib}</Descriptions.Item>
              <Descriptions.Item label={t("vms:create.powerOn")}>{all.power_on ? t("common:yes") : t("common:no")}</Descriptions.Item>
              <Descriptions.Item label={t("vms:field.pool")}>{all.provider_id ? poolName(all.provider_id) : t("vms:create.anyPool")}</Descriptions.Item>
              <Descriptions.Item label={t("vms:create.strategy")}>{t(`vms:create.${all.strategy}`)}</Descriptions.Item>
              <Descriptions.Item label={t("vms:create.disks")}>
                {(all.disks ?? []).map((d) => `${d.size_gib} GiB`).join(", ") || "—"}
              </Descriptions.Item>
              <Descriptions.Item label={t("vms:create.nics")}>
                {(all.nics ?? []).map((n) => networks.byId.get(n.network_id)?.name ?? n.network_id).join(", ") || "—"}
              </Descriptions.Item>
            </Descriptions>
            <Typography.Title level={5} style={{ margin: 0 }}>
              {t("vms:create.dryRunTitle")}
            </Typography.Title>
            {decision && <DryRun decision={decision} />}
          </Flex>
        )}
        <ErrorAlert error={error} style={{ marginTop: 16 }} />
        <Flex gap={8} style={{ marginTop: 24 }}>
          {step === 0 && <Button onClick={() => navigate("/vms")}>{t("common:action.cancel")}</Button>}
          {step > 0 && (
            <Button onClick={() => setStep(step - 1)} disabled={busy}>
              {t("common:action.previous")}
            </Button>
          )}
          {step < 2 && (
            <Button type="primary" onClick={() => void next()} loading={busy} data-testid="wizard-next">
              {step === 1 ? t("vms:create.checkPlacement") : t("common:action.next")}
            </Button>
          )}
          {step === 2 && (
            <Button
              type="primary"
              onClick={() => void create()}
              loading={busy}
              disabled={!decision?.chosen}
              data-testid="wizard-create"
            >
              {t("vms:create.submit")}
            </Button>
          )}
        </Flex>
      </Card>
    </>
  );
}
