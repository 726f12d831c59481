/** Migration plans (VMware -> KVM): each with its state and how far it is; live while one runs. */
import { PlusOutlined, ReloadOutlined } from "@ant-design/icons";
import { Button, Progress, Result, Table, Tag } from "antd";
import { useCallback, useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate } from "react-router-dom";

import { api } from "../../api/client";
import { useProviders } from "../../api/lookups";
import type { MigrationPlan } from "../../api/types";
import { Can, useAuth } from "../../auth/AuthContext";
import { ErrorAlert } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { useFormat } from "../../i18n/format";
import { useTaskUpdates } from "../../tasks/TaskContext";
import { PlanStateTag, planProgress } from "./parts";

const POLL_MS = 2000;

export default function Plans() {
  const { t } = useTranslation();
  const f = useFormat();
  const navigate = useNavigate();
  const { can } = useAuth();
  const allowed = can("list_migration_plans");
  const providers = useProviders(allowed && can("list_providers"));
  const [plans, setPlans] = useState<MigrationPlan[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      setPlans(await api.get<MigrationPlan[]>("/v1/migration-plans"));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, []);

  useEffect(() => {
    if (allowed) void load();
  }, [allowed, load]);

  // A running plan's progress lives on the plan (per disk bytes), not on a task event.
  const running = plans?.some((p) => p.state === "running") ?? false;
  useEffect(() => {
    if (!running) return undefined;
    const timer = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [running, load]);

  useTaskUpdates((task) => {
    if (task.kind.startsWith("migration.")) void load();
  });

  if (!allowed) return <Result status="403" subTitle={t("migration:adminOnly")} />;

  const pool = (id: string | null) => (id ? providers.byId.get(id)?.name ?? id : "—");
  return (
    <>
      <PageHeader
        title={t("migration:plans.title")}
        subtitle={t("migration:plans.subtitle")}
        extra={
          <>
            <Button icon={<ReloadOutlined />} onClick={() => void load()}>
              {t("common:action.refresh")}
            </Button>
            <Can op="create_migration_plan">
              <Button type="primary" icon={<PlusOutlined />} onClick={() => navigate("/migrations/new")} data-testid="new-plan">
                {t("migration:plans.new")}
              </Button>
            </Can>
          </>
        }
      />
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Table<MigrationPlan>
        rowKey="id"
        loading={plans === null && !error}
        dataSource={plans ?? []}
        data-testid="plans-table"
        locale={{ emptyText: t("migration:plans.empty") }}
        pagination={{ pageSize: 50, hideOnSinglePage: true }}
        columns={[
          {
            title: t("migration:field.name"),
            dataIndex: "name",
            render: (name: string, plan) => <Link to={`/migrations/${plan.id}`}>{name}</Link>,
          },
          {
            title: t("migration:field.state"),
            dataIndex: "state",
            render: (_: unknown, plan) => <PlanStateTag state={plan.state} />,
          },
          {
            title: t("migration:field.progress"),
            key: "progress",
            width: 200,
            render: (_: unknown, plan) => (
              <Progress
                percent={plan.state === "succeeded" ? 100 : planProgress(plan)}
                size="small"
                status={plan.state === "failed" ? "exception" : plan.state === "running" ? "active" : undefined}
              />
            ),
          },
          {
            title: t("migration:field.mode"),
            dataIndex: "mode",
            render: (mode: string) => <Tag>{t(`migration:mode.${mode}`, { defaultValue: mode })}</Tag>,
          },
          {
            title: t("migration:field.route"),
            key: "route",
            render: (_: unknown, plan) => `${pool(plan.source_provider_id)} → ${pool(plan.target_provider_id)}`,
          },
          { title: t("migration:field.vms"), key: "vms", render: (_: unknown, plan) => f.number(plan.vms.length) },
          { title: t("migration:field.schedule"), dataIndex: "schedule_at", render: (at: string | null) => (at ? f.dateTime(at) : t("migration:schedule.now")) },
          { title: t("migration:field.createdAt"), dataIndex: "created_at", render: (at: string) => f.dateTime(at) },
        ]}
      />
    </>
  );
}
