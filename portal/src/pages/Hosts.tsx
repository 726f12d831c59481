/**
 * Hosts of every pool the caller sees, as vSphere Client lists them: state, pool and
 * cluster, CPU and memory with what their VMs are given, and how many VMs run there.
 */
import { Tag } from "antd";
import type { TableColumnsType } from "antd";
import { useTranslation } from "react-i18next";
import { Link } from "react-router-dom";

import type { HostListed } from "../api/types";
import { InventoryTable } from "../components/InventoryTable";
import type { SortOrder } from "../components/InventoryTable";
import { PageHeader } from "../components/PageHeader";
import { UsageBar } from "../components/UsageBar";
import { useFormat } from "../i18n/format";

const STATE_COLOR: Record<HostListed["state"], string> = {
  connected: "success",
  maintenance: "warning",
  disconnected: "error",
};

export default function Hosts() {
  const { t } = useTranslation();
  const f = useFormat();
  const columns = (sortOrder: SortOrder): TableColumnsType<HostListed> => [
    { title: t("inventory:field.name"), dataIndex: "name", sorter: true, sortOrder: sortOrder("name"), fixed: "left" },
    {
      title: t("inventory:field.state"),
      dataIndex: "state",
      render: (state: HostListed["state"]) => (
        <Tag color={STATE_COLOR[state]} data-host-state={state}>
          {t(`inventory:hostState.${state}`)}
        </Tag>
      ),
    },
    { title: t("inventory:field.pool"), dataIndex: "provider_name" },
    { title: t("inventory:field.cluster"), dataIndex: "cluster_name", render: (name: string | null) => name ?? "—" },
    {
      title: t("inventory:field.cpu"),
      dataIndex: "cpu_cores",
      sorter: true,
      sortOrder: sortOrder("cpu_cores"),
      render: (cores: number, h) =>
        t("inventory:host.cpu", { cores: f.number(cores), ghz: f.number(h.cpu_ghz, 1) }),
    },
    {
      title: t("inventory:field.vcpuAllocated"),
      key: "vcpus",
      render: (_: unknown, h) => <UsageBar used={h.vcpus_used} total={h.cpu_cores} format={(n) => f.number(n)} />,
    },
    {
      title: t("inventory:field.memory"),
      dataIndex: "memory_mib",
      sorter: true,
      sortOrder: sortOrder("memory_mib"),
      render: (mib: number) => f.mib(mib),
    },
    {
      title: t("inventory:field.memoryAllocated"),
      key: "memory",
      render: (_: unknown, h) => <UsageBar used={h.memory_mib_used} total={h.memory_mib} format={f.mib} />,
    },
    {
      title: t("inventory:field.vms"),
      dataIndex: "vm_count",
      align: "right",
      render: (count: number, h) => <Link to={`/vms?host_id=${encodeURIComponent(h.id)}`}>{f.number(count)}</Link>,
    },
    { title: t("inventory:field.hypervisor"), dataIndex: "hypervisor" },
  ];
  return (
    <>
      <PageHeader title={t("inventory:hosts.title")} subtitle={t("inventory:hosts.subtitle")} />
      <InventoryTable<HostListed>
        path="/v1/hosts"
        columns={columns}
        sortable={["name", "cpu_cores", "memory_mib"]}
        emptyText={t("inventory:hosts.empty")}
        testId="host-table"
      />
    </>
  );
}
