/** Routes: every page is its own chunk, loaded when first opened. */
import { App as AntApp, ConfigProvider, Result } from "antd";
import enUS from "antd/locale/en_US";
import zhCN from "antd/locale/zh_CN";
import { lazy } from "react";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router-dom";

import { AuthProvider, useAuth } from "./auth/AuthContext";
import { AppLayout } from "./layout/AppLayout";
import { PageLoading } from "./layout/PageLoading";
import { TaskProvider } from "./tasks/TaskContext";

const loadVmList = () => import("./pages/vms/VmList");
// The VM list is the page people open most: when the app starts on it, fetch its code
// now, while the caller is still being looked up, rather than after.
if (window.location.pathname === "/vms") void loadVmList();

const Login = lazy(() => import("./pages/Login"));
const Dashboard = lazy(() => import("./pages/Dashboard"));
const VmList = lazy(loadVmList);
const VmDetail = lazy(() => import("./pages/vms/VmDetail"));
const CreateVm = lazy(() => import("./pages/vms/CreateVm"));
const Pools = lazy(() => import("./pages/Pools"));
const Hosts = lazy(() => import("./pages/Hosts"));
const Datastores = lazy(() => import("./pages/Datastores"));
const Networks = lazy(() => import("./pages/Networks"));
const Segments = lazy(() => import("./pages/network/Segments"));
const SegmentDetail = lazy(() => import("./pages/network/SegmentDetail"));
const Routers = lazy(() => import("./pages/network/Routers"));
const FloatingIPs = lazy(() => import("./pages/network/FloatingIPs"));
const SecurityGroups = lazy(() => import("./pages/network/SecurityGroups"));
const AddressSpace = lazy(() => import("./pages/network/AddressSpace"));
const Topology = lazy(() => import("./pages/network/Topology"));
const Interconnects = lazy(() => import("./pages/network/Interconnects"));
const Tasks = lazy(() => import("./pages/Tasks"));
const Projects = lazy(() => import("./pages/admin/Projects"));
const Users = lazy(() => import("./pages/admin/Users"));
const Audit = lazy(() => import("./pages/admin/Audit"));
const Unmanaged = lazy(() => import("./pages/Unmanaged"));
const MigrationPlans = lazy(() => import("./pages/migration/Plans"));
const MigrationWizard = lazy(() => import("./pages/migration/PlanWizard"));
const MigrationPlan = lazy(() => import("./pages/migration/PlanDetail"));

function RequireLogin({ children }: { children: ReactNode }) {
  const { principal, loading } = useAuth();
  const location = useLocation();
  if (loading) return <PageLoading />;
  if (!principal) {
    const next = location.pathname + location.search;
    return <Navigate to={`/login?next=${encodeURIComponent(next)}`} replace />;
  }
  return <>{children}</>;
}

function NotFound() {
  const { t } = useTranslation();
  return <Result status="404" title="404" subTitle={t("common:notFound")} />;
}

function AppRoutes() {
  return (
    <Routes>
      <Route path="/login" element={<Login />} />
      <Route
        element={
          <RequireLogin>
            <AppLayout />
          </RequireLogin>
        }
      >
        <Route index element={<Dashboard />} />
        <Route path="vms" element={<VmList />} />
        <Route path="vms/new" element={<CreateVm />} />
        <Route path="vms/:vmId" element={<VmDetail />} />
        <Route path="pools" element={<Pools />} />
        <Route path="hosts" element={<Hosts />} />
        <Route path="datastores" element={<Datastores />} />
        <Route path="networks" element={<Networks />} />
        <Route path="network/segments" element={<Segments />} />
        <Route path="network/segments/:segmentId" element={<SegmentDetail />} />
        <Route path="network/routers" element={<Routers />} />
        <Route path="network/floating-ips" element={<FloatingIPs />} />
        <Route path="network/security-groups" element={<SecurityGroups />} />
        <Route path="network/address-space" element={<AddressSpace />} />
        <Route path="network/topology" element={<Topology />} />
        <Route path="network/interconnects" element={<Interconnects />} />
        <Route path="tasks" element={<Tasks />} />
        <Route path="admin/projects" element={<Projects />} />
        <Route path="admin/users" element={<Users />} />
        <Route path="admin/audit" element={<Audit />} />
        <Route path="admin/unmanaged" element={<Unmanaged />} />
        <Route path="migrations" element={<MigrationPlans />} />
        <Route path="migrations/new" element={<MigrationWizard />} />
        <Route path="migrations/:planId" element={<MigrationPlan />} />
        <Route path="migrations/:planId/edit" element={<MigrationWizard />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}

export default function App() {
  const { i18n } = useTranslation();
  return (
    <ConfigProvider locale={i18n.language === "zh-CN" ? zhCN : enUS}>
      <AntApp>
        <BrowserRouter>
          <AuthProvider>
            <TaskProvider>
              <AppRoutes />
            </TaskProvider>
          </AuthProvider>
        </BrowserRouter>
      </AntApp>
    </ConfigProvider>
  );
}
