/**
 * One migration plan: its maps and readiness, each VM's phases and each disk's copy
 * (bytes, MiB/s, ETA) live while it runs, its events; and what its state allows:
 * edit, check and start a draft, cancel a running plan, resume or roll back one that ended.
 * The copy's progress is saved on the plan, not on a task event, so a running plan is
 * read again every second.
 */
import {
  CaretRightOutlined,
  DeleteOutlined,
  EditOutlined,
  ReloadOutlined,
  RollbackOutlined,
  SafetyCertificateOutlined,
  StopOutlined,
  UnorderedListOutlined,
} from "@ant-design/icons";
import { App, Button, Card, Descriptions, Empty, Flex, Progress, Result, Space, Steps, Table, Tag, Tooltip, Typography } from "antd";
import { useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate, useParams } from "react-router-dom";

import { api, path } from "../../api/client";
import { useDatastores, useNetworks, useProviders } from "../../api/lookups";
import type { EventEntry, MigrationDiskProgress, MigrationPlan, MigrationVm, Page, Task } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { ErrorAlert, useNotifyError } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { useFormat } from "../../i18n/format";
import { useTaskUpdates, useTasks } from "../../tasks/TaskContext";
import { PlanStateTag, Readiness, VmStateTag, phasesFor, planProgress } from "./parts";

const POLL_MS = 1000;

/** A lookup (useNetworks, useDatastores) read for names only. */
type Names = { byId: Map<string, { name: string }> };

function DiskTable({ disks }: { disks: MigrationDiskProgress[] }) {
  const { t } = useTranslation();
  const f = useFormat();
  if (!disks.length) return <Typography.Text type="secondary">{t("migration:detail.noDisksYet")}</Typography.Text>;
  return (
    <Table<MigrationDiskProgress>
      size="small"
      rowKey="index"
      pagination={false}
      dataSource={disks}
      data-testid="disk-table"
      onRow={(disk) => ({ "data-disk-state": disk.state } as React.HTMLAttributes<HTMLElement>)}
      columns={[
        { title: "#", dataIndex: "index", width: 40 },
        { title: t("migration:disk.source"), dataIndex: "ds_path" },
        { title: t("migration:disk.volume"), dataIndex: "volume", render: (v: string, d) => `${v} (${d.format})` },
        {
          title: t("migration:disk.state"),
          dataIndex: "state",
          render: (state: string, d) => (
            <Space size={4}>
              <Tag color={state === "done" ? "success" : state === "failed" ? "error" : "processing"} data-testid="disk-state" data-state={state}>
                {t(`migration:diskState.${state}`, { defaultValue: state })}
              </Tag>
              {d.identical && (
                <Tooltip title={t("migration:disk.identicalHelp")}>
                  <Tag icon={<SafetyCertificateOutlined />} color="success">
                    {t("migration:disk.identical")}
                  </Tag>
                </Tooltip>
              )}
            </Space>
          ),
        },
        {
          title: t("migration:disk.progress"),
          key: "progress",
          width: 260,
          render: (_: unknown, d) => (
            <Flex vertical>
              <Progress
                size="small"
                percent={d.total_bytes ? Math.floor((d.done_bytes * 100) / d.total_bytes) : 0}
                status={d.state === "failed" ? "exception" : d.state === "done" ? "success" : "active"}
              />
              <Typography.Text type="secondary" style={{ fontSize: 12 }} data-testid="disk-bytes">
                {f.bytes(d.done_bytes)} / {f.bytes(d.total_bytes)}
              </Typography.Text>
            </Flex>
          ),
        },
        { title: t("migration:disk.speed"), dataIndex: "mib_s", render: (v: number) => `${f.number(v, 1)} MiB/s` },
        ...(disks.some((d) => d.rounds?.length)
          ? [
              {
                title: t("migration:disk.rounds"),
                key: "rounds",
                render: (_: unknown, d: MigrationDiskProgress) =>
                  d.rounds?.length ? (
                    <Tooltip
                      title={d.rounds.map((r) => (
                        <div key={r.round}>
                          {t("migration:disk.roundLine", {
                            round: r.round,
                            size: f.bytes(r.bytes),
                            areas: f.number(r.areas),
                            time: f.duration(r.seconds),
                          })}
                        </div>
                      ))}
                    >
                      <Tag data-testid="disk-rounds">{f.number(d.rounds.length)}</Tag>
                    </Tooltip>
                  ) : (
                    "—"
                  ),
              },
            ]
          : []),
        {
          title: t("migration:disk.eta"),
          dataIndex: "eta_s",
          render: (v: number | null, d) => (d.state === "done" ? "—" : f.duration(v)),
        },
      ]}
    />
  );
}

function PhaseSteps({ vm, mode }: { vm: MigrationVm; mode: string }) {
  const { t } = useTranslation();
  const phases = phasesFor(mode);
  const current = Math.max(0, phases.findIndex((p) => vm.phases[p] !== "done"));
  const failed = phases.some((p) => vm.phases[p] === "failed");
  const round = typeof vm.phases.warm_round === "number" ? vm.phases.warm_round : null;
  return (
    <Steps
      size="small"
      current={phases.every((p) => vm.phases[p] === "done") ? phases.length : current}
      status={failed ? "error" : vm.phases[phases[current]] === "running" ? "process" : "wait"}
      data-testid="vm-phases"
      items={phases.map((p) => ({
        title: t(`migration:phase.${p}`, { defaultValue: p }),
        description: p === "copy" && round !== null ? t("migration:detail.round", { round }) : undefined,
        status:
          vm.phases[p] === "done"
            ? "finish"
            : vm.phases[p] === "failed"
              ? "error"
              : vm.phases[p] === "running"
                ? "process"
                : "wait",
      }))}
    />
  );
}

function EventsCard({ planId, version }: { planId: string; version: string }) {
  const { t } = useTranslation();
  const f = useFormat();
  const [events, setEvents] = useState<EventEntry[] | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    api
      .get<Page<EventEntry>>("/v1/events", { object_id: planId, limit: 100 }, abort.signal)
      .then((page) => setEvents(page.items))
      .catch(() => setEvents((old) => old ?? []));
    return () => abort.abort();
  }, [planId, version]);
  return (
    <Card title={t("migration:detail.events")} size="small">
      <Table<EventEntry>
        size="small"
        rowKey="id"
        loading={events === null}
        dataSource={events ?? []}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        data-testid="plan-events"
        columns={[
          { title: t("migration:event.at"), dataIndex: "at", width: 190, render: (at: string) => f.dateTime(at) },
          {
            title: t("migration:field.vmName"),
            key: "vm",
            width: 160,
            render: (_: unknown, e) => String((e.after as { vm?: string } | null)?.vm ?? e.object_name),
          },
          {
            title: t("migration:event.what"),
            key: "what",
            width: 220,
            render: (_: unknown, e) => {
              const after = (e.after ?? {}) as { phase?: string; state?: string };
              if (!after.phase) return e.kind;
              return (
                <Space size={4} wrap={false}>
                  {t(`migration:phase.${after.phase}`, { defaultValue: after.phase })}
                  <Tag>{t(`migration:phaseState.${after.state ?? "pending"}`, { defaultValue: after.state })}</Tag>
                </Space>
              );
            },
          },
          { title: t("migration:event.message"), dataIndex: "message" },
          { title: t("migration:event.actor"), dataIndex: "actor", width: 140 },
        ]}
      />
    </Card>
  );
}

export default function PlanDetail() {
  const { t } = useTranslation();
  const f = useFormat();
  const navigate = useNavigate();
  const { modal } = App.useApp();
  const { can } = useAuth();
  const { open } = useTasks();
  const notifyError = useNotifyError();
  const { planId = "" } = useParams();
  const allowed = can("show_migration_plan");
  const [plan, setPlan] = useState<MigrationPlan | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [checking, setChecking] = useState(false);
  const providers = useProviders(allowed);
  const sourceNets = useNetworks(plan?.source_provider_id, Boolean(plan?.source_provider_id));
  const targetNets = useNetworks(plan?.target_provider_id, Boolean(plan?.target_provider_id));
  const sourceStores = useDatastores(plan?.source_provider_id, Boolean(plan?.source_provider_id));
  const targetStores = useDatastores(plan?.target_provider_id, Boolean(plan?.target_provider_id));

  const load = useCallback(async () => {
    try {
      setPlan(await api.get<MigrationPlan>(path`/v1/migration-plans/${planId}`));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [planId]);

  useEffect(() => {
    if (allowed) void load();
  }, [allowed, load]);

  const running = plan?.state === "running";
  useEffect(() => {
    if (!running) return undefined;
    const timer = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [running, load]);

  useTaskUpdates((task) => {
    if (plan && task.id === plan.task_id) void load();
  });

  if (!allowed) return <Result status="403" subTitle={t("migration:adminOnly")} />;
  if (!plan) {
    return (
      <>
        <PageHeader title={t("migration:detail.title")} />
        {error ? <ErrorAlert error={error} /> : <Card loading />}
      </>
    );
  }

  const act = (action: "start" | "cancel" | "resume" | "rollback", danger = false) => {
    modal.confirm({
      title: t(`migration:action.${action}Confirm`, { name: plan.name }),
      content: t(`migration:action.${action}Help`, { count: plan.vms.length }),
      okText: t(`migration:action.${action}`),
      cancelText: t("common:action.cancel"),
      okButtonProps: { id: "confirm-ok", danger },
      onOk: async () => {
        try {
          await api.post<Task>(`${path`/v1/migration-plans/${plan.id}`}/${action}`);
        } catch (err) {
          notifyError(err);
        }
        await load();
      },
    });
  };

  const remove = () => {
    modal.confirm({
      title: t("migration:action.deleteConfirm", { name: plan.name }),
      content: t("migration:action.deleteHelp"),
      okText: t("common:action.delete"),
      cancelText: t("common:action.cancel"),
      okButtonProps: { id: "confirm-ok", danger: true },
      onOk: async () => {
        try {
          await api.delete(path`/v1/migration-plans/${plan.id}`);
          navigate("/migrations");
        } catch (err) {
          notifyError(err);
        }
      },
    });
  };

  const check = async () => {
    setChecking(true);
    try {
      await api.post(path`/v1/migration-plans/${plan.id}/readiness`);
      await load();
    } catch (err) {
      notifyError(err);
    } finally {
      setChecking(false);
    }
  };

  const state = plan.state;
  const name = (items: Names, id: string) => items.byId.get(id)?.name ?? id;
  const pool = (id: string | null) => (id ? providers.byId.get(id)?.name ?? id : "—");
  const mapLines = (map: Record<string, string>, from: Names, to: Names) =>
    Object.entries(map).length ? (
      <Flex vertical>
        {Object.entries(map).map(([src, dst]) => (
          <span key={src}>
            {name(from, src)} → {name(to, dst)}
          </span>
        ))}
      </Flex>
    ) : (
      t("common:none")
    );

  return (
    <>
      <PageHeader
        title={
          <Space>
            {plan.name}
            <PlanStateTag state={state} />
          </Space>
        }
        subtitle={t("migration:detail.subtitle", { source: pool(plan.source_provider_id), target: pool(plan.target_provider_id) })}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={() => void load()}>
              {t("common:action.refresh")}
            </Button>
            {plan.task_id && (
              <Button icon={<UnorderedListOutlined />} onClick={() => plan.task_id && open(plan.task_id)} data-testid="plan-task">
                {t("migration:detail.task")}
              </Button>
            )}
            {state === "draft" && (
              <>
                <Can op="update_migration_plan">
                  <Button icon={<EditOutlined />} onClick={() => navigate(`/migrations/${plan.id}/edit`)} data-testid="plan-edit">
                    {t("migration:action.edit")}
                  </Button>
                </Can>
                <Can op="check_migration_plan">
                  <Button icon={<SafetyCertificateOutlined />} loading={checking} onClick={() => void check()} data-testid="plan-check">
                    {t("migration:action.check")}
                  </Button>
                </Can>
                <Can op="start_migration_plan">
                  <Button type="primary" icon={<CaretRightOutlined />} onClick={() => act("start")} data-testid="plan-start">
                    {t("migration:action.start")}
                  </Button>
                </Can>
              </>
            )}
            {state === "running" && (
              <Can op="cancel_migration_plan">
                <Button danger icon={<StopOutlined />} onClick={() => act("cancel", true)} data-testid="plan-cancel">
                  {t("migration:action.cancel")}
                </Button>
              </Can>
            )}
            {(state === "failed" || state === "cancelled" || state === "rolled_back") && (
              <Can op="resume_migration_plan">
                <Button icon={<CaretRightOutlined />} onClick={() => act("resume")} data-testid="plan-resume">
                  {t("migration:action.resume")}
                </Button>
              </Can>
            )}
            {(state === "succeeded" || state === "failed" || state === "cancelled") && (
              <Can op="rollback_migration_plan">
                <Button danger icon={<RollbackOutlined />} onClick={() => act("rollback", true)} data-testid="plan-rollback">
                  {t("migration:action.rollback")}
                </Button>
              </Can>
            )}
            {state !== "running" && (
              <Can op="delete_migration_plan">
                <Button danger type="text" icon={<DeleteOutlined />} onClick={remove} data-testid="plan-delete">
                  {t("common:action.delete")}
                </Button>
              </Can>
            )}
          </>
        }
      />
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Flex vertical gap={16}>
        <Card size="small">
          <Flex gap={24} align="center" style={{ marginBottom: 12 }}>
            <Progress
              percent={state === "succeeded" ? 100 : planProgress(plan)}
              status={state === "failed" ? "exception" : state === "running" ? "active" : undefined}
              style={{ flex: 1, margin: 0 }}
              data-testid="plan-progress"
            />
          </Flex>
          <Descriptions size="small" bordered column={{ xs: 1, md: 2, xl: 3 }}>
            <Descriptions.Item label={t("migration:field.mode")}>{t(`migration:mode.${plan.mode}`, { defaultValue: plan.mode })}</Descriptions.Item>
            <Descriptions.Item label={t("migration:field.format")}>{plan.target_format}</Descriptions.Item>
            <Descriptions.Item label={t("migration:field.parallelism")}>{plan.parallelism}</Descriptions.Item>
            <Descriptions.Item label={t("migration:field.schedule")}>
              {plan.schedule_at ? f.dateTime(plan.schedule_at) : t("migration:schedule.now")}
            </Descriptions.Item>
            <Descriptions.Item label={t("migration:wizard.networkMap")}>{mapLines(plan.network_map, sourceNets, targetNets)}</Descriptions.Item>
            <Descriptions.Item label={t("migration:wizard.storageMap")}>{mapLines(plan.storage_map, sourceStores, targetStores)}</Descriptions.Item>
            <Descriptions.Item label={t("migration:field.createdBy")}>
              {plan.created_by} · {f.dateTime(plan.created_at)}
            </Descriptions.Item>
          </Descriptions>
        </Card>
        <Card title={t("migration:detail.vms")} size="small">
          <Table<MigrationVm>
            rowKey="vm_id"
            size="small"
            pagination={false}
            dataSource={plan.vms}
            data-testid="vm-table"
            expandable={{
              defaultExpandAllRows: true,
              expandedRowRender: (vm) => (
                <Flex vertical gap={12} style={{ padding: "4px 0" }}>
                  <PhaseSteps vm={vm} mode={plan.mode} />
                  <DiskTable disks={vm.disks} />
                </Flex>
              ),
            }}
            columns={[
              { title: t("migration:field.vmName"), dataIndex: "name" },
              { title: t("migration:field.state"), dataIndex: "state", render: (s: string) => <VmStateTag state={s} /> },
              {
                title: t("migration:detail.phase"),
                dataIndex: "phase",
                render: (p: string | null, vm) =>
                  p && vm.phases[p] !== "pending" ? (
                    <span data-testid="vm-phase" data-phase={p}>
                      {t(`migration:phase.${p}`, { defaultValue: p })} ·{" "}
                      {t(`migration:phaseState.${String(vm.phases[p] ?? "pending")}`, { defaultValue: String(vm.phases[p]) })}
                    </span>
                  ) : (
                    "—"
                  ),
              },
              {
                title: t("migration:detail.copied"),
                key: "copied",
                render: (_: unknown, vm) => {
                  const total = vm.disks.reduce((n, d) => n + d.total_bytes, 0);
                  const done = vm.disks.reduce((n, d) => n + d.done_bytes, 0);
                  return total ? `${f.bytes(done)} / ${f.bytes(total)}` : "—";
                },
              },
              {
                title: t("migration:detail.error"),
                dataIndex: "error",
                render: (e: string | null) => (e ? <Typography.Text type="danger">{e}</Typography.Text> : "—"),
              },
            ]}
          />
        </Card>
        <Card title={t("migration:readiness.title")} size="small">
          {plan.readiness ? <Readiness report={plan.readiness} /> : <Empty description={t("migration:readiness.none")} />}
        </Card>
        <EventsCard planId={plan.id} version={`${plan.updated_at}/${plan.vms.map((v) => v.phase).join()}`} />
      </Flex>
    </>
  );
}
