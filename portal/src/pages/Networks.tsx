/** Networks: vSphere port groups (distributed or standard) and KVM networks and bridges. */
import type { TableColumnsType } from "antd";
import { useTranslation } from "react-i18next";

import type { NetworkListed } from "../api/types";
import { InventoryTable } from "../components/InventoryTable";
import type { SortOrder } from "../components/InventoryTable";
import { PageHeader } from "../components/PageHeader";
import { useFormat } from "../i18n/format";

export default function Networks() {
  const { t } = useTranslation();
  const f = useFormat();
  const columns = (sortOrder: SortOrder): TableColumnsType<NetworkListed> => [
    { title: t("inventory:field.name"), dataIndex: "name", sorter: true, sortOrder: sortOrder("name"), fixed: "left" },
    { title: t("inventory:field.pool"), dataIndex: "provider_name" },
    {
      title: t("inventory:field.type"),
      dataIndex: "kind",
      render: (kind: string) => t(`inventory:networkKind.${kind}`, { defaultValue: kind }),
    },
    {
      title: t("inventory:field.vlan"),
      dataIndex: "vlan_id",
      align: "right",
      render: (vlan: number | null) => (vlan === null ? "—" : String(vlan)),
    },
    { title: t("inventory:field.hosts"), dataIndex: "host_count", align: "right", render: (n: number) => f.number(n) },
  ];
  return (
    <>
      <PageHeader title={t("inventory:networks.title")} subtitle={t("inventory:networks.subtitle")} />
      <InventoryTable<NetworkListed>
        path="/v1/networks"
        columns={columns}
        sortable={["name"]}
        emptyText={t("inventory:networks.empty")}
        testId="network-table"
      />
    </>
  );
}
