/** Pieces the migration pages share: state tags, plan progress and the readiness report. */
import {
  CheckCircleOutlined,
  ClockCircleOutlined,
  CloseCircleOutlined,
  ExclamationCircleOutlined,
  InfoCircleOutlined,
  MinusCircleOutlined,
  RollbackOutlined,
  StopOutlined,
  SyncOutlined,
} from "@ant-design/icons";
import { Alert, Card, Descriptions, Flex, List, Tag, Typography } from "antd";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";

import type {
  FindingSeverity,
  MigrationPlan,
  MigrationPlanState,
  ReadinessFinding,
  ReadinessReport,
} from "../../api/types";
import { useFormat } from "../../i18n/format";

/** A VM's phases in the API's order (tessera.migration.model.phases_for): warm mode
 * copies while the VM runs, then powers it off for a final sync. */
const COLD_PHASES = ["power_off", "copy", "virtio", "define", "boot", "verify", "cutover"];
const WARM_PHASES = ["copy", "power_off", "final_sync", "virtio", "define", "boot", "verify", "cutover"];

export function phasesFor(mode: string): string[] {
  return mode === "warm" ? WARM_PHASES : COLD_PHASES;
}

const PLAN: Record<MigrationPlanState, { color: string; icon: ReactNode }> = {
  draft: { color: "default", icon: <ClockCircleOutlined /> },
  running: { color: "processing", icon: <SyncOutlined spin /> },
  succeeded: { color: "success", icon: <CheckCircleOutlined /> },
  failed: { color: "error", icon: <CloseCircleOutlined /> },
  cancelled: { color: "warning", icon: <StopOutlined /> },
  rolled_back: { color: "default", icon: <RollbackOutlined /> },
};

export function PlanStateTag({ state }: { state: MigrationPlanState }) {
  const { t } = useTranslation();
  const look = PLAN[state] ?? PLAN.draft;
  return (
    <Tag color={look.color} icon={look.icon} data-plan-state={state} data-testid="plan-state">
      {t(`migration:planState.${state}`, { defaultValue: state })}
    </Tag>
  );
}

const VM: Record<string, { color: string; icon: ReactNode }> = {
  pending: { color: "default", icon: <ClockCircleOutlined /> },
  running: { color: "processing", icon: <SyncOutlined spin /> },
  migrated: { color: "success", icon: <CheckCircleOutlined /> },
  failed: { color: "error", icon: <CloseCircleOutlined /> },
  cancelled: { color: "warning", icon: <MinusCircleOutlined /> },
  rolled_back: { color: "default", icon: <RollbackOutlined /> },
};

export function VmStateTag({ state }: { state: string }) {
  const { t } = useTranslation();
  const look = VM[state] ?? VM.pending;
  return (
    <Tag color={look.color} icon={look.icon} data-vm-state={state}>
      {t(`migration:vmState.${state}`, { defaultValue: state })}
    </Tag>
  );
}

/** How far a plan is: its VMs' phases done, a running copy counted by its bytes. */
export function planProgress(plan: MigrationPlan): number {
  if (!plan.vms.length) return 0;
  const phases = phasesFor(plan.mode);
  let done = 0;
  for (const vm of plan.vms) {
    for (const phase of phases) {
      const state = vm.phases[phase];
      if (state === "done") done += 1;
      else if (phase === "copy" && state === "running" && vm.disks.length) {
        const total = vm.disks.reduce((sum, d) => sum + d.total_bytes, 0);
        const copied = vm.disks.reduce((sum, d) => sum + d.done_bytes, 0);
        if (total > 0) done += copied / total;
      }
    }
  }
  return Math.min(100, Math.round((done * 100) / (plan.vms.length * phases.length)));
}

const SEVERITY: Record<FindingSeverity, { color: string; icon: ReactNode }> = {
  blocking: { color: "error", icon: <CloseCircleOutlined /> },
  warning: { color: "warning", icon: <ExclamationCircleOutlined /> },
  info: { color: "default", icon: <InfoCircleOutlined /> },
};
const ORDER: Record<FindingSeverity, number> = { blocking: 0, warning: 1, info: 2 };

function Finding({ finding }: { finding: ReadinessFinding }) {
  const { t } = useTranslation();
  const look = SEVERITY[finding.severity] ?? SEVERITY.info;
  return (
    <Flex gap={8} align="baseline" data-testid="finding" data-severity={finding.severity} data-code={finding.code}>
      <Tag color={look.color} icon={look.icon} style={{ flex: "none" }}>
        {t(`migration:severity.${finding.severity}`, { defaultValue: finding.severity })}
      </Tag>
      <span>
        <Typography.Text strong>{t(`migration:finding.${finding.code}`, { defaultValue: finding.code })}</Typography.Text>
        <Typography.Text type="secondary"> — {finding.message}</Typography.Text>
      </span>
    </Flex>
  );
}

/** The readiness report: ready or not, what it would move and how long, then per VM
 * its blocking problems first, then warnings, then what was checked. */
export function Readiness({ report }: { report: ReadinessReport }) {
  const { t } = useTranslation();
  const f = useFormat();
  const blocking = report.vms.reduce(
    (n, vm) => n + vm.findings.filter((x) => x.severity === "blocking").length,
    0,
  );
  return (
    <Flex vertical gap={12} data-testid="readiness-report" data-ready={report.ready ? "yes" : "no"}>
      {report.ready ? (
        <Alert type="success" showIcon message={t("migration:readiness.ready")} data-testid="readiness-summary" />
      ) : (
        <Alert
          type="error"
          showIcon
          message={t("migration:readiness.blocked", { count: blocking })}
          description={t("migration:readiness.blockedHelp")}
          data-testid="readiness-summary"
        />
      )}
      <Descriptions size="small" bordered column={3}>
        <Descriptions.Item label={t("migration:readiness.transfer")}>{f.bytes(report.transfer_bytes)}</Descriptions.Item>
        <Descriptions.Item label={t("migration:readiness.estimate")}>
          <span data-testid="readiness-estimate" data-basis={report.estimate_copies ? "measured" : "default"}>
            {f.duration(report.estimate_s)}{" "}
            <Typography.Text type="secondary">
              {report.estimate_copies && report.estimate_mib_s
                ? t("migration:readiness.estimateMeasured", { count: report.estimate_copies, speed: report.estimate_mib_s })
                : t("migration:readiness.estimateDefault")}
            </Typography.Text>
          </span>
        </Descriptions.Item>
        <Descriptions.Item label={t("migration:readiness.checkedAt")}>{f.dateTime(report.checked_at)}</Descriptions.Item>
      </Descriptions>
      {report.vms.map((vm) => (
        <Card
          key={vm.vm_id}
          size="small"
          data-testid="readiness-vm"
          data-vm={vm.name}
          title={
            <Flex gap={8} align="center">
              {vm.name}
              {vm.ready ? (
                <Tag color="success">{t("migration:readiness.vmReady")}</Tag>
              ) : (
                <Tag color="error">{t("migration:readiness.vmBlocked")}</Tag>
              )}
            </Flex>
          }
          extra={
            <Typography.Text type="secondary">
              {t("migration:readiness.vmEstimate", {
                size: f.bytes(vm.transfer_bytes),
                time: f.duration(vm.estimate_s),
              })}
            </Typography.Text>
          }
        >
          <List
            size="small"
            split={false}
            dataSource={[...vm.findings].sort((a, b) => ORDER[a.severity] - ORDER[b.severity])}
            renderItem={(finding) => (
              <List.Item style={{ padding: "2px 0" }}>
                <Finding finding={finding} />
              </List.Item>
            )}
          />
        </Card>
      ))}
    </Flex>
  );
}
