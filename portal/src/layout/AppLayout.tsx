/** The frame of every page after login: side menu, header with language and user menus. */
import {
  AuditOutlined,
  CloudSyncOutlined,
  CloudServerOutlined,
  ClusterOutlined,
  DashboardOutlined,
  DatabaseOutlined,
  DesktopOutlined,
  GlobalOutlined,
  ImportOutlined,
  LogoutOutlined,
  ProjectOutlined,
  ApartmentOutlined,
  ApiOutlined,
  BlockOutlined,
  BranchesOutlined,
  DeploymentUnitOutlined,
  SafetyOutlined,
  ShareAltOutlined,
  TeamOutlined,
  UnorderedListOutlined,
  UserOutlined,
} from "@ant-design/icons";
import { Badge, Button, Dropdown, Flex, Layout, Menu, Select, Tag, Tooltip, Typography, theme } from "antd";
import type { MenuProps } from "antd";
import { Suspense, useState } from "react";
import { useTranslation } from "react-i18next";
import { Outlet, useLocation, useNavigate } from "react-router-dom";

import type { Locale } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { useNotifyError } from "../components/ErrorAlert";
import { LOCALES } from "../i18n";
import { useTasks } from "../tasks/TaskContext";
import { PageLoading } from "./PageLoading";

type Item = Required<MenuProps>["items"][number];

/** The menu entry for a path: the longest menu key the path starts with. */
function selectedKey(pathname: string, keys: string[]): string {
  return (
    keys
      .filter((key) => (key === "/" ? pathname === "/" : pathname.startsWith(key)))
      .sort((a, b) => b.length - a.length)[0] ?? "/"
  );
}

export function LanguageSwitch({ onChange }: { onChange: (lng: Locale) => void }) {
  const { i18n, t } = useTranslation();
  return (
    <Select
      value={i18n.language as Locale}
      onChange={onChange}
      options={LOCALES}
      suffixIcon={<GlobalOutlined />}
      style={{ width: 120 }}
      aria-label={t("common:language")}
      data-testid="language-switch"
      popupMatchSelectWidth={false}
    />
  );
}

export function AppLayout() {
  const { t } = useTranslation();
  const { principal, can, logout, changeLocale } = useAuth();
  const { connected } = useTasks();
  const notifyError = useNotifyError();
  const navigate = useNavigate();
  const location = useLocation();
  const [collapsed, setCollapsed] = useState(false);
  const { token } = theme.useToken();

  const show = (op: string, item: Item): Item[] => (can(op) ? [item] : []);
  const inventory: Item[] = [
    ...show("list_providers", { key: "/pools", icon: <CloudServerOutlined />, label: t("common:menu.pools") }),
    ...show("list_hosts", { key: "/hosts", icon: <ClusterOutlined />, label: t("common:menu.hosts") }),
    ...show("list_datastores", { key: "/datastores", icon: <DatabaseOutlined />, label: t("common:menu.datastores") }),
    ...show("list_networks", { key: "/networks", icon: <ApartmentOutlined />, label: t("common:menu.networks") }),
  ];
  const network: Item[] = [
    ...show("list_segments", { key: "/network/segments", icon: <ApartmentOutlined />, label: t("network:menu.segments") }),
    ...show("list_routers", { key: "/network/routers", icon: <BranchesOutlined />, label: t("network:menu.routers") }),
    ...show("list_floating_ips", { key: "/network/floating-ips", icon: <ShareAltOutlined />, label: t("network:menu.floatingIps") }),
    ...show("list_security_groups", { key: "/network/security-groups", icon: <SafetyOutlined />, label: t("network:menu.securityGroups") }),
    ...show("list_address_ranges", { key: "/network/address-space", icon: <BlockOutlined />, label: t("network:menu.addressSpace") }),
    ...show("list_interconnects", { key: "/network/interconnects", icon: <ApiOutlined />, label: t("network:menu.interconnects") }),
    ...show("list_segments", { key: "/network/topology", icon: <DeploymentUnitOutlined />, label: t("network:menu.topology") }),
  ];
  const admin: Item[] = [
    ...show("list_users", { key: "/admin/projects", icon: <ProjectOutlined />, label: t("common:menu.projects") }),
    ...show("list_users", { key: "/admin/users", icon: <TeamOutlined />, label: t("common:menu.users") }),
    ...show("list_audit", { key: "/admin/audit", icon: <AuditOutlined />, label: t("common:menu.audit") }),
    ...show("list_unmanaged_vms", { key: "/admin/unmanaged", icon: <ImportOutlined />, label: t("adopt:menu") }),
    ...show("list_migration_plans", { key: "/migrations", icon: <CloudSyncOutlined />, label: t("migration:menu") }),
  ];
  const items: Item[] = [
    { key: "/", icon: <DashboardOutlined />, label: t("common:menu.overview") },
    ...show("list_vms", { key: "/vms", icon: <DesktopOutlined />, label: t("common:menu.vms") }),
    ...(inventory.length
      ? [{ type: "group" as const, key: "inventory", label: t("common:menu.inventory"), children: inventory }]
      : []),
    ...(network.length
      ? [{ type: "group" as const, key: "network", label: t("network:menu.group"), children: network }]
      : []),
    ...show("list_tasks", { key: "/tasks", icon: <UnorderedListOutlined />, label: t("common:menu.tasks") }),
    ...(admin.length
      ? [{ type: "group" as const, key: "admin", label: t("common:menu.admin"), children: admin }]
      : []),
  ];
  const keys = ["/", "/vms", "/pools", "/hosts", "/datastores", "/networks", "/tasks", "/admin/projects", "/admin/users", "/admin/audit", "/admin/unmanaged", "/migrations", "/network/segments", "/network/routers", "/network/floating-ips", "/network/security-groups", "/network/address-space", "/network/topology", "/network/interconnects"];

  const onLogout = async () => {
    try {
      await logout();
    } catch (err) {
      notifyError(err);
    }
    navigate("/login", { replace: true });
  };

  const onLocale = (lng: Locale) => {
    changeLocale(lng).catch(notifyError);
  };

  const scope = principal?.is_admin
    ? t("common:user.platformAdmin")
    : principal?.role
      ? t(`common:role.${principal.role}`)
      : t("common:user.noRole");

  return (
    <Layout style={{ minHeight: "100vh" }}>
      <Layout.Sider
        collapsible
        collapsed={collapsed}
        onCollapse={setCollapsed}
        width={220}
        theme="dark"
      >
        <Flex align="center" gap={8} style={{ height: 56, padding: "0 20px", color: "#fff" }}>
          <img src="/favicon.svg" alt="" width={24} height={24} />
          {!collapsed && (
            <Typography.Text strong style={{ color: "#fff", fontSize: 18 }}>
              Tessera
            </Typography.Text>
          )}
        </Flex>
        <Menu
          theme="dark"
          mode="inline"
          selectedKeys={[selectedKey(location.pathname, keys)]}
          items={items}
          onClick={({ key }) => navigate(key)}
          data-testid="side-menu"
        />
      </Layout.Sider>
      <Layout>
        <Layout.Header
          style={{
            background: token.colorBgContainer,
            padding: "0 24px",
            borderBottom: `1px solid ${token.colorBorderSecondary}`,
          }}
        >
          <Flex justify="flex-end" align="center" gap={16} style={{ height: "100%" }}>
            <Tooltip title={connected ? t("common:live.on") : t("common:live.off")}>
              <Badge status={connected ? "processing" : "default"} text={t("common:live.label")} />
            </Tooltip>
            <LanguageSwitch onChange={onLocale} />
            <Dropdown
              menu={{
                items: [
                  { key: "logout", icon: <LogoutOutlined />, label: t("common:user.logout"), onClick: onLogout },
                ],
              }}
            >
              <Button type="text" icon={<UserOutlined />} data-testid="user-menu">
                {principal?.user_name}
                <Tag style={{ marginInlineStart: 8 }}>{scope}</Tag>
              </Button>
            </Dropdown>
          </Flex>
        </Layout.Header>
        <Layout.Content style={{ margin: 24 }}>
          <Suspense fallback={<PageLoading />}>
            <Outlet />
          </Suspense>
        </Layout.Content>
      </Layout>
    </Layout>
  );
}
