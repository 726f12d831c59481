/**
 * The overview, from one call (`GET /v1/overview`): pools and whether they answer, hosts,
 * VMs by power state, capacity used and free per pool and per availability zone, and the
 * latest tasks and events. What a project sees is its own share (the server decides).
 */
import { ReloadOutlined } from "@ant-design/icons";
import { Button, Card, Col, Flex, List, Row, Segmented, Space, Statistic, Table, Tooltip, Typography } from "antd";
import type { TableColumnsType } from "antd";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import { api } from "../api/client";
import type { Capacity, Overview, PowerState, Task } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { EChart } from "../components/EChart";
import type { ChartOption } from "../components/EChart";
import { ErrorAlert } from "../components/ErrorAlert";
import { PageHeader } from "../components/PageHeader";
import { PoolStatusTag, TaskStateTag } from "../components/StateTags";
import { UsageBar } from "../components/UsageBar";
import { useFormat } from "../i18n/format";
import { taskKindLabel } from "../tasks/labels";
import { useTaskUpdates, useTasks } from "../tasks/TaskContext";

type Pool = Overview["pools"][number];
type Resource = "vcpus" | "memory" | "storage";
type Scope = "pools" | "zones";

const POWER_STATES: PowerState[] = ["running", "stopped", "suspended", "paused", "unknown"];
const POWER_COLORS: Record<PowerState, string> = {
  running: "#52c41a",
  stopped: "#8c8c8c",
  suspended: "#fa8c16",
  paused: "#fadb14",
  unknown: "#d9d9d9",
};
const REFRESH_MS = 30_000;

/** Used and free of one resource, in the unit the chart's axis shows (GiB for sizes). */
function usedFree(c: Capacity, resource: Resource): [number, number] {
  if (resource === "vcpus") return [c.vcpus_used, c.vcpus_free];
  if (resource === "memory") return [c.memory_mib_used / 1024, c.memory_mib_free / 1024];
  return [c.storage_gib_used, c.storage_gib_free];
}

export default function Dashboard() {
  const { t } = useTranslation();
  const f = useFormat();
  const { can } = useAuth();
  const { open } = useTasks();
  const [overview, setOverview] = useState<Overview | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [resource, setResource] = useState<Resource>("vcpus");
  const [scope, setScope] = useState<Scope>("pools");

  const load = useCallback(() => {
    api
      .get<Overview>("/v1/overview")
      .then((body) => {
        setOverview(body);
        setError(null);
      })
      .catch(setError);
  }, []);
  useEffect(() => {
    load();
    const timer = window.setInterval(load, REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [load]);
  // A finished task changes the figures: look again, at most every 3 s.
  const pending = useRef<number | undefined>(undefined);
  useTaskUpdates((task: Task) => {
    if (task.state !== "succeeded" && task.state !== "failed") return;
    if (pending.current === undefined) {
      pending.current = window.setTimeout(() => {
        pending.current = undefined;
        load();
      }, 3000);
    }
  });
  useEffect(() => () => window.clearTimeout(pending.current), []);

  const vmChart = useMemo<ChartOption | null>(() => {
    if (!overview) return null;
    return {
      animation: false,
      tooltip: { trigger: "item", valueFormatter: (value) => f.number(Number(value)) },
      legend: { bottom: 0 },
      series: [
        {
          type: "pie",
          radius: ["45%", "70%"],
          center: ["50%", "45%"],
          label: { formatter: (p) => `${p.name}: ${f.number(Number(p.value))}` },
          data: POWER_STATES.filter((s) => overview.vms[s] > 0).map((s) => ({
            name: t(`common:powerState.${s}`),
            value: overview.vms[s],
            itemStyle: { color: POWER_COLORS[s] },
          })),
        },
      ],
    };
  }, [overview, t, f]);

  const capacityChart = useMemo<ChartOption | null>(() => {
    if (!overview) return null;
    const rows = scope === "pools" ? overview.pools : overview.zones;
    const figures = rows.map((row) => usedFree(row.capacity, resource));
    const unit = resource === "vcpus" ? t("dashboard:unit.vcpus") : "GiB";
    const value = (n: number) => `${f.number(n, resource === "vcpus" ? 0 : 1)} ${unit}`;
    const round = (n: number) => Math.round(n * 10) / 10;
    // Three stacks: used within capacity, free, and what is given beyond capacity.
    const stack = (name: string, color: string, pick: (used: number, free: number) => number) => ({
      name,
      type: "bar" as const,
      stack: "capacity",
      color,
      data: figures.map(([used, free]) => round(pick(used, free))),
    });
    return {
      animation: false,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: (v) => value(Number(v)) },
      legend: { bottom: 0 },
      grid: { left: 8, right: 24, top: 8, bottom: 32, containLabel: true },
      xAxis: { type: "value", axisLabel: { formatter: (v: number) => f.number(v) } },
      yAxis: { type: "category", inverse: true, data: rows.map((row) => row.name) },
      series: [
        stack(t("dashboard:capacity.used"), "#1677ff", (used, free) => used + Math.min(0, free)),
        stack(t("dashboard:capacity.free"), "#b7eb8f", (_used, free) => Math.max(0, free)),
        stack(t("dashboard:capacity.overcommitted"), "#ff4d4f", (_used, free) => Math.max(0, -free)),
      ],
    };
  }, [overview, resource, scope, t, f]);

  const poolColumns: TableColumnsType<Pool> = [
    {
      title: t("dashboard:pool.name"),
      dataIndex: "name",
      render: (name: string, p) =>
        can("list_vms") ? <Link to={`/vms?provider_id=${encodeURIComponent(p.id)}`}>{name}</Link> : name,
    },
    { title: t("dashboard:pool.zone"), key: "zone", render: (_: unknown, p) => `${p.region} / ${p.zone}` },
    {
      title: t("dashboard:pool.status"),
      dataIndex: "status",
      render: (status: Pool["status"], p) => (
        <span data-testid={`overview-pool-${p.name}`}>
          <PoolStatusTag status={status} />
        </span>
      ),
    },
    {
      title: t("dashboard:pool.lastSync"),
      key: "age",
      render: (_: unknown, p) => (
        <Tooltip title={p.last_sync_ok_at ? f.dateTime(p.last_sync_ok_at) : undefined}>
          {p.inventory_age_s === null ? t("dashboard:pool.neverSynced") : f.ago(p.inventory_age_s)}
        </Tooltip>
      ),
    },
    { title: t("dashboard:pool.hosts"), key: "hosts", align: "right", render: (_: unknown, p) => f.number(p.hosts.total) },
    { title: t("dashboard:pool.vms"), dataIndex: "vms", align: "right", render: (n: number) => f.number(n) },
    {
      title: t("dashboard:resource.vcpus"),
      key: "vcpus",
      render: (_: unknown, p) => (
        <UsageBar used={p.capacity.vcpus_used} total={p.capacity.vcpus_total} format={(n) => f.number(n)} width={130} />
      ),
    },
    {
      title: t("dashboard:resource.memory"),
      key: "memory",
      render: (_: unknown, p) => (
        <UsageBar used={p.capacity.memory_mib_used} total={p.capacity.memory_mib_total} format={f.mib} width={130} />
      ),
    },
    {
      title: t("dashboard:resource.storage"),
      key: "storage",
      render: (_: unknown, p) => (
        <UsageBar
          used={p.capacity.storage_gib_used}
          total={p.capacity.storage_gib_total}
          format={(gib) => f.bytes(gib * 1024 ** 3)}
          width={130}
        />
      ),
    },
  ];

  const unreachable = overview?.pools.filter((p) => !p.reachable).length ?? 0;
  const total = overview?.capacity;

  return (
    <>
      <PageHeader
        title={t("dashboard:title")}
        subtitle={overview ? t("dashboard:asOf", { time: f.dateTime(overview.generated_at) }) : undefined}
        extra={
          <Button icon={<ReloadOutlined />} onClick={load}>
            {t("common:action.refresh")}
          </Button>
        }
      />
      <ErrorAlert error={error} style={{ marginBottom: 16 }} />
      <Row gutter={[16, 16]}>
        <Col xs={24} sm={12} xl={6}>
          <Card loading={!overview} data-testid="stat-pools">
            <Statistic title={t("dashboard:stat.pools")} value={f.number(overview?.pools.length ?? 0)} />
            <Typography.Text type={unreachable ? "danger" : "secondary"}>
              {t("dashboard:stat.unreachable", { count: unreachable })}
            </Typography.Text>
          </Card>
        </Col>
        <Col xs={24} sm={12} xl={6}>
          <Card loading={!overview} data-testid="stat-hosts">
            <Statistic title={t("dashboard:stat.hosts")} value={f.number(overview?.hosts.total ?? 0)} />
            <Typography.Text type="secondary">
              {t("dashboard:stat.hostStates", {
                connected: f.number(overview?.hosts.connected ?? 0),
                maintenance: f.number(overview?.hosts.maintenance ?? 0),
                disconnected: f.number(overview?.hosts.disconnected ?? 0),
              })}
            </Typography.Text>
          </Card>
        </Col>
        <Col xs={24} sm={12} xl={6}>
          <Card loading={!overview} data-testid="stat-vms">
            <Statistic title={t("dashboard:stat.vms")} value={f.number(overview?.vms.total ?? 0)} />
            <Typography.Text type="secondary">
              {t("dashboard:stat.vmStates", {
                running: f.number(overview?.vms.running ?? 0),
                templates: f.number(overview?.vms.templates ?? 0),
                count: overview?.vms.templates ?? 0,
              })}
            </Typography.Text>
          </Card>
        </Col>
        <Col xs={24} sm={12} xl={6}>
          <Card loading={!overview} data-testid="stat-capacity">
            <Typography.Text type="secondary">{t("dashboard:stat.capacity")}</Typography.Text>
            {total && (
              <Space direction="vertical" size={2} style={{ width: "100%", marginTop: 4 }}>
                {(["vcpus", "memory", "storage"] as const).map((r) => {
                  const [used, free] = usedFree(total, r);
                  const sum = used + free;
                  return (
                    <Flex key={r} justify="space-between" gap={8}>
                      <Typography.Text>{t(`dashboard:resource.${r}`)}</Typography.Text>
                      <Typography.Text strong>{f.percent(sum > 0 ? used / sum : 0)}</Typography.Text>
                    </Flex>
                  );
                })}
              </Space>
            )}
          </Card>
        </Col>
        <Col xs={24} xl={9}>
          <Card title={t("dashboard:chart.vmStates")} loading={!overview}>
            {vmChart && overview && overview.vms.total > 0 ? (
              <EChart option={vmChart} testId="chart-vm-states" />
            ) : (
              <Typography.Text type="secondary">{t("dashboard:noVms")}</Typography.Text>
            )}
          </Card>
        </Col>
        <Col xs={24} xl={15}>
          <Card
            title={t("dashboard:chart.capacity")}
            loading={!overview}
            extra={
              <Space wrap>
                <Segmented<Scope>
                  value={scope}
                  onChange={setScope}
                  options={[
                    { value: "pools", label: t("dashboard:scope.pools") },
                    { value: "zones", label: t("dashboard:scope.zones") },
                  ]}
                  data-testid="capacity-scope"
                />
                <Segmented<Resource>
                  value={resource}
                  onChange={setResource}
                  options={[
                    { value: "vcpus", label: t("dashboard:resource.vcpus") },
                    { value: "memory", label: t("dashboard:resource.memory") },
                    { value: "storage", label: t("dashboard:resource.storage") },
                  ]}
                  data-testid="capacity-resource"
                />
              </Space>
            }
          >
            {capacityChart && overview && overview.pools.length > 0 ? (
              <EChart
                option={capacityChart}
                height={Math.max(200, 48 * (scope === "pools" ? overview.pools.length : overview.zones.length) + 60)}
                testId="chart-capacity"
              />
            ) : (
              <Typography.Text type="secondary">{t("dashboard:noPools")}</Typography.Text>
            )}
          </Card>
        </Col>
        <Col span={24}>
          <Card title={t("dashboard:pools")} styles={{ body: { padding: 0 } }}>
            <Table<Pool>
              rowKey="id"
              size="middle"
              columns={poolColumns}
              dataSource={overview?.pools ?? []}
              loading={!overview && !error}
              pagination={false}
              scroll={{ x: "max-content" }}
              locale={{ emptyText: t("dashboard:noPools") }}
              data-testid="overview-pools"
            />
          </Card>
        </Col>
        <Col xs={24} xl={12}>
          <Card
            title={t("dashboard:recentTasks")}
            extra={can("list_tasks") && <Link to="/tasks">{t("dashboard:seeAll")}</Link>}
          >
            <List<Task>
              size="small"
              dataSource={overview?.recent_tasks ?? []}
              locale={{ emptyText: t("dashboard:noTasks") }}
              data-testid="recent-tasks"
              renderItem={(task) => (
                <List.Item extra={<Typography.Text type="secondary">{f.since(task.created_at)}</Typography.Text>}>
                  <Space>
                    <TaskStateTag state={task.state} />
                    <Typography.Link onClick={() => open(task.id, task)}>{taskKindLabel(t, task.kind)}</Typography.Link>
                    <Typography.Text type="secondary">{task.requester}</Typography.Text>
                  </Space>
                </List.Item>
              )}
            />
          </Card>
        </Col>
        <Col xs={24} xl={12}>
          <Card title={t("dashboard:recentEvents")}>
            <List
              size="small"
              dataSource={overview?.recent_events ?? []}
              locale={{ emptyText: t("dashboard:noEvents") }}
              data-testid="recent-events"
              renderItem={(event) => (
                <List.Item
                  extra={
                    <Tooltip title={f.dateTime(event.at)}>
                      <Typography.Text type="secondary">{f.since(event.at)}</Typography.Text>
                    </Tooltip>
                  }
                >
                  <Space wrap>
                    <Typography.Text strong>
                      {t(`common:eventKind.${event.kind.replace(/\./g, "_")}`, { defaultValue: event.kind })}
                    </Typography.Text>
                    {event.object_kind === "vm" && event.object_id && can("show_vm") ? (
                      <Link to={`/vms/${encodeURIComponent(event.object_id)}`}>{event.object_name}</Link>
                    ) : event.object_kind === "task" && event.task_id ? (
                      // A task's events are named by its kind: say it in words, and open it.
                      <Typography.Link onClick={() => open(event.task_id as string)}>
                        {taskKindLabel(t, event.object_name)}
                      </Typography.Link>
                    ) : (
                      <Typography.Text>{event.object_name}</Typography.Text>
                    )}
                    <Typography.Text type="secondary">{t("dashboard:by", { actor: event.actor })}</Typography.Text>
                  </Space>
                </List.Item>
              )}
            />
          </Card>
        </Col>
      </Row>
    </>
  );
}
