/** Datastores (vSphere) and storage pools (KVM): type, capacity, used and free space. */
import type { TableColumnsType } from "antd";
import { useTranslation } from "react-i18next";

import type { DatastoreListed } from "../api/types";
import { InventoryTable } from "../components/InventoryTable";
import type { SortOrder } from "../components/InventoryTable";
import { PageHeader } from "../components/PageHeader";
import { UsageBar } from "../components/UsageBar";
import { useFormat } from "../i18n/format";

export default function Datastores() {
  const { t } = useTranslation();
  const f = useFormat();
  const columns = (sortOrder: SortOrder): TableColumnsType<DatastoreListed> => [
    { title: t("inventory:field.name"), dataIndex: "name", sorter: true, sortOrder: sortOrder("name"), fixed: "left" },
    { title: t("inventory:field.pool"), dataIndex: "provider_name" },
    { title: t("inventory:field.type"), dataIndex: "kind", render: (kind: string) => kind || "—" },
    {
      title: t("inventory:field.capacity"),
      dataIndex: "capacity_bytes",
      sorter: true,
      sortOrder: sortOrder("capacity_bytes"),
      align: "right",
      render: (bytes: number) => f.bytes(bytes),
    },
    {
      title: t("inventory:field.free"),
      dataIndex: "free_bytes",
      sorter: true,
      sortOrder: sortOrder("free_bytes"),
      align: "right",
      render: (bytes: number) => f.bytes(bytes),
    },
    {
      title: t("inventory:field.used"),
      key: "used",
      render: (_: unknown, d) => <UsageBar used={d.used_bytes} total={d.capacity_bytes} format={f.bytes} />,
    },
    { title: t("inventory:field.hosts"), dataIndex: "host_count", align: "right", render: (n: number) => f.number(n) },
  ];
  return (
    <>
      <PageHeader title={t("inventory:datastores.title")} subtitle={t("inventory:datastores.subtitle")} />
      <InventoryTable<DatastoreListed>
        path="/v1/datastores"
        columns={columns}
        sortable={["name", "capacity_bytes", "free_bytes"]}
        emptyText={t("inventory:datastores.empty")}
        testId="datastore-table"
      />
    </>
  );
}
