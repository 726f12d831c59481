/**
 * The migration plan wizard: the source vCenter and its VMs, then the target KVM host with
 * the network map (portgroup -> KVM network), the storage map (datastore -> storage pool,
 * qcow2 or raw), the mode and the schedule; then the plan is saved as a draft and the
 * readiness report shows what would stop each VM before anything moves. The same wizard
 * edits a draft (/migrations/:planId/edit).
 */
import {
  Alert,
  App,
  Button,
  Card,
  DatePicker,
  Flex,
  Form,
  Input,
  InputNumber,
  Radio,
  Result,
  Select,
  Space,
  Steps,
  Table,
  Tag,
  Typography,
} from "antd";
import dayjs from "dayjs";
import type { Dayjs } from "dayjs";
import { useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate, useParams } from "react-router-dom";

import { ApiError, api, path } from "../../api/client";
import { useDatastores, useNetworks, useProviders } from "../../api/lookups";
import type {
  MigrationMode,
  MigrationPlan,
  Page,
  PowerState,
  ReadinessReport,
  TargetFormat,
  Task,
  VM,
} from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { CursorPager, currentCursor, firstPage } from "../../components/CursorPager";
import type { CursorState } from "../../components/CursorPager";
import { ErrorAlert } from "../../components/ErrorAlert";
import { PageHeader } from "../../components/PageHeader";
import { PowerStateTag } from "../../components/StateTags";
import { useFormat } from "../../i18n/format";
import { Readiness } from "./parts";

const PLAN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const VM_FIELDS = "name,power_state,cpu_count,memory_mib,guest_os,provider_id,is_template,disks,nics";
const POWER_STATES: PowerState[] = ["running", "stopped", "suspended"];

type Mapping = Record<string, string | undefined>;

/** A source network or datastore the selected VMs use, and which of them use it. */
interface Used {
  id: string;
  name: string;
  vms: string[];
}

function usedBy(vms: VM[], pick: (vm: VM) => { id: string | null; name: string }[]): Used[] {
  const found = new Map<string, Used>();
  for (const vm of vms) {
    for (const { id, name } of pick(vm)) {
      if (!id) continue;
      const entry = found.get(id) ?? { id, name, vms: [] };
      if (!entry.vms.includes(vm.name)) entry.vms.push(vm.name);
      found.set(id, entry);
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** "[LocalDS_0] vm/disk.vmdk" -> "LocalDS_0" */
function datastoreOf(diskPath: string): string {
  return /^\[([^\]]+)\]/.exec(diskPath)?.[1] ?? "";
}

function VmPicker({
  providerId,
  selected,
  onChange,
}: {
  providerId: string;
  selected: Map<string, VM>;
  onChange: (selected: Map<string, VM>) => void;
}) {
  const { t } = useTranslation();
  const f = useFormat();
  const [name, setName] = useState("");
  const [nameInput, setNameInput] = useState("");
  const [power, setPower] = useState<PowerState | undefined>();
  const [pager, setPager] = useState<CursorState>(() => firstPage(20));
  const [page, setPage] = useState<Page<VM> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const cursor = currentCursor(pager);

  useEffect(() => setPager((p) => firstPage(p.size)), [providerId, name, power]);
  useEffect(() => {
    const abort = new AbortController();
    setPage(null);
    api
      .get<Page<VM>>(
        "/v1/vms",
        { provider_id: providerId, name, power_state: power, cursor, limit: pager.size, fields: VM_FIELDS },
        abort.signal,
      )
      .then((body) => {
        setPage(body);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!abort.signal.aborted) setError(err);
      });
    return () => abort.abort();
  }, [providerId, name, power, cursor, pager.size]);

  const rows = (page?.items ?? []).filter((vm) => !vm.is_template);
  return (
    <Flex vertical gap={8}>
      <Space wrap>
        <Input.Search
          allowClear
          placeholder={t("migration:wizard.filterName")}
          value={nameInput}
          onChange={(e) => setNameInput(e.target.value)}
          onSearch={(value) => setName(value.trim())}
          style={{ width: 260 }}
          data-testid="vm-filter-name"
        />
        <Select
          allowClear
          placeholder={t("migration:wizard.filterPower")}
          value={power}
          onChange={setPower}
          style={{ width: 180 }}
          options={POWER_STATES.map((s) => ({ value: s, label: t(`common:powerState.${s}`) }))}
        />
        <Typography.Text type="secondary" data-testid="vm-selected-count">
          {t("migration:wizard.selected", { count: selected.size })}
        </Typography.Text>
      </Space>
      <ErrorAlert error={error} />
      <Table<VM>
        size="small"
        rowKey="id"
        loading={page === null && !error}
        dataSource={rows}
        pagination={false}
        data-testid="source-vm-table"
        rowSelection={{
          selectedRowKeys: [...selected.keys()],
          preserveSelectedRowKeys: true,
          onSelect: (vm, checked) => {
            const next = new Map(selected);
            if (checked) next.set(vm.id, vm);
            else next.delete(vm.id);
            onChange(next);
          },
          onSelectAll: (checked, _all, changed) => {
            const next = new Map(selected);
            for (const vm of changed) {
              if (checked) next.set(vm.id, vm);
              else next.delete(vm.id);
            }
            onChange(next);
          },
        }}
        columns={[
          { title: t("migration:field.vmName"), dataIndex: "name" },
          { title: t("migration:field.power"), dataIndex: "power_state", render: (s: PowerState) => <PowerStateTag state={s} /> },
          { title: t("migration:field.cpus"), dataIndex: "cpu_count" },
          { title: t("migration:field.memory"), dataIndex: "memory_mib", render: (m: number) => f.mib(m) },
          { title: t("migration:field.guestOs"), dataIndex: "guest_os" },
          {
            title: t("migration:field.disks"),
            key: "disks",
            render: (_: unknown, vm) => f.bytes((vm.disks ?? []).reduce((n, d) => n + d.size_bytes, 0)),
          },
          { title: t("migration:field.nics"), key: "nics", render: (_: unknown, vm) => (vm.nics ?? []).length },
        ]}
      />
      <CursorPager state={pager} nextCursor={page?.next_cursor ?? null} onChange={setPager} loading={page === null} shown={rows.length} />
      {selected.size > 0 && (
        <Flex wrap="wrap" gap={4}>
          {[...selected.values()].map((vm) => (
            <Tag
              key={vm.id}
              closable
              onClose={() => {
                const next = new Map(selected);
                next.delete(vm.id);
                onChange(next);
              }}
            >
              {vm.name}
            </Tag>
          ))}
        </Flex>
      )}
    </Flex>
  );
}

function MapTable({
  testid,
  title,
  sources,
  targets,
  mapping,
  onChange,
  placeholder,
}: {
  testid: string;
  title: string;
  sources: Used[];
  targets: { value: string; label: string }[];
  mapping: Mapping;
  onChange: (mapping: Mapping) => void;
  placeholder: string;
}) {
  const { t } = useTranslation();
  return (
    <Table<Used>
      size="small"
      rowKey="id"
      pagination={false}
      data-testid={testid}
      title={() => <Typography.Text strong>{title}</Typography.Text>}
      dataSource={sources}
      locale={{ emptyText: t("migration:wizard.nothingToMap") }}
      columns={[
        { title: t("migration:wizard.sourceSide"), dataIndex: "name", width: "30%" },
        {
          title: t("migration:wizard.usedBy"),
          dataIndex: "vms",
          render: (vms: string[]) => vms.join(", "),
        },
        {
          title: t("migration:wizard.targetSide"),
          key: "target",
          width: 320,
          render: (_: unknown, source) => (
            <Select
              allowClear
              style={{ width: 300 }}
              placeholder={placeholder}
              value={mapping[source.id]}
              onChange={(value?: string) => onChange({ ...mapping, [source.id]: value })}
              options={targets}
              status={mapping[source.id] ? undefined : "warning"}
              data-testid={`${testid}-${source.name}`}
            />
          ),
        },
      ]}
    />
  );
}

export default function PlanWizard() {
  const { t } = useTranslation();
  const f = useFormat();
  const navigate = useNavigate();
  const { modal } = App.useApp();
  const { can } = useAuth();
  const { planId: editId } = useParams();
  const allowed = can(editId ? "update_migration_plan" : "create_migration_plan");
  const providers = useProviders(allowed);

  const [step, setStep] = useState(0);
  const [planId, setPlanId] = useState<string | undefined>(editId);
  const [loaded, setLoaded] = useState(!editId);
  const [name, setName] = useState("");
  const [source, setSource] = useState<string | undefined>();
  const [target, setTarget] = useState<string | undefined>();
  const [vms, setVms] = useState<Map<string, VM>>(new Map());
  const [networkMap, setNetworkMap] = useState<Mapping>({});
  const [storageMap, setStorageMap] = useState<Mapping>({});
  const [format, setFormat] = useState<TargetFormat>("qcow2");
  const [mode, setMode] = useState<MigrationMode>("cold");
  const [scheduleAt, setScheduleAt] = useState<Dayjs | null>(null);
  const [parallelism, setParallelism] = useState(1);
  const [hadSchedule, setHadSchedule] = useState(false);
  const [report, setReport] = useState<ReadinessReport | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [invalid, setInvalid] = useState<string | null>(null);
  const [notDraft, setNotDraft] = useState(false);

  const sourceNets = useNetworks(source, Boolean(source));
  const sourceStores = useDatastores(source, Boolean(source));
  const targetNets = useNetworks(target, Boolean(target));
  const targetPools = useDatastores(target, Boolean(target));

  // Editing a draft: the plan as saved, its VMs with their NICs and disks.
  useEffect(() => {
    if (!editId) return;
    const abort = new AbortController();
    (async () => {
      const plan = await api.get<MigrationPlan>(path`/v1/migration-plans/${editId}`, undefined, abort.signal);
      const details = await Promise.all(
        plan.vms.map((vm) => api.get<VM>(path`/v1/vms/${vm.vm_id}`, undefined, abort.signal)),
      );
      setPlanId(plan.id);
      setName(plan.name);
      setSource(plan.source_provider_id ?? undefined);
      setTarget(plan.target_provider_id ?? undefined);
      setVms(new Map(details.map((vm) => [vm.id, vm])));
      setNetworkMap(plan.network_map);
      setStorageMap(plan.storage_map);
      setFormat(plan.target_format);
      setMode(plan.mode);
      setScheduleAt(plan.schedule_at ? dayjs(plan.schedule_at) : null);
      setParallelism(plan.parallelism);
      setHadSchedule(Boolean(plan.schedule_at));
      setReport(plan.readiness);
      setNotDraft(plan.state !== "draft");
      setLoaded(true);
    })().catch((err: unknown) => {
      if (!abort.signal.aborted) {
        setError(err);
        setLoaded(true);
      }
    });
    return () => abort.abort();
  }, [editId]);

  const selected = useMemo(() => [...vms.values()], [vms]);
  const usedNets = useMemo(
    () =>
      usedBy(selected, (vm) =>
        (vm.nics ?? []).map((n) => ({
          id: n.network_id,
          name: (n.network_id && sourceNets.byId.get(n.network_id)?.name) || n.network_name || n.network_id || "",
        })),
      ),
    [selected, sourceNets.byId],
  );
  const storeByName = useMemo(() => new Map(sourceStores.items.map((d) => [d.name, d])), [sourceStores.items]);
  const usedStores = useMemo(
    () =>
      usedBy(selected, (vm) =>
        (vm.disks ?? []).map((d) => {
          const id = d.datastore_id ?? storeByName.get(datastoreOf(d.path))?.id ?? null;
          return { id, name: (id && sourceStores.byId.get(id)?.name) || datastoreOf(d.path) };
        }),
      ),
    [selected, storeByName, sourceStores.byId],
  );

  const vsphere = providers.items.filter((p) => p.kind === "vsphere");
  const kvm = providers.items.filter((p) => p.kind === "libvirt");
  const pool = (id?: string) => (id ? providers.byId.get(id)?.name ?? id : "—");

  if (!allowed) return <Result status="403" subTitle={t("migration:adminOnly")} />;

  const validate = (): string | null => {
    if (step === 0) {
      if (!PLAN_NAME.test(name)) return t("migration:validation.name");
      if (!source) return t("migration:validation.source");
      if (!vms.size) return t("migration:validation.vms");
    }
    if (step === 1 && !target) return t("migration:validation.target");
    return null;
  };

  const body = () => {
    const only = (mapping: Mapping, used: Used[]) =>
      Object.fromEntries(used.filter((u) => mapping[u.id]).map((u) => [u.id, mapping[u.id] as string]));
    return {
      name,
      vm_ids: [...vms.keys()],
      network_map: only(networkMap, usedNets),
      storage_map: only(storageMap, usedStores),
      target_format: format,
      mode,
      parallelism,
      schedule_at: scheduleAt ? scheduleAt.toISOString() : undefined,
    };
  };

  /** Save the draft (create it the first time) and check it now. */
  const saveAndCheck = async () => {
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      let id = planId;
      if (id) {
        await api.patch<MigrationPlan>(path`/v1/migration-plans/${id}`, {
          ...body(),
          clear_schedule: hadSchedule && !scheduleAt,
        });
      } else {
        const plan = await api.post<MigrationPlan>("/v1/migration-plans", {
          ...body(),
          source_provider_id: source,
          target_provider_id: target,
        });
        id = plan.id;
        setPlanId(id);
      }
      setHadSchedule(Boolean(scheduleAt));
      setReport(await api.post<ReadinessReport>(path`/v1/migration-plans/${id}/readiness`));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const next = () => {
    const problem = validate();
    setInvalid(problem);
    if (problem) return;
    if (step === 1) void saveAndCheck();
    setStep(step + 1);
  };

  const start = () => {
    if (!planId) return;
    modal.confirm({
      title: t("migration:action.startConfirm", { name }),
      content: t("migration:action.startHelp", { count: vms.size }),
      okText: t("migration:action.start"),
      cancelText: t("common:action.cancel"),
      okButtonProps: { id: "confirm-ok" },
      onOk: async () => {
        try {
          await api.post<Task>(path`/v1/migration-plans/${planId}/start`);
          navigate(`/migrations/${planId}`);
        } catch (err) {
          setError(err);
          if (err instanceof ApiError && err.code === "plan_not_ready") {
            const plan = await api.get<MigrationPlan>(path`/v1/migration-plans/${planId}`);
            setReport(plan.readiness);
          }
        }
      },
    });
  };

  const title = editId ? t("migration:wizard.editTitle", { name }) : t("migration:wizard.title");
  if (!loaded) return <PageHeader title={title} />;
  return (
    <>
      <PageHeader title={title} subtitle={t("migration:wizard.subtitle")} />
      <Card>
        <Steps
          current={step}
          style={{ marginBottom: 24 }}
          items={[
            { title: t("migration:wizard.step.vms") },
            { title: t("migration:wizard.step.target") },
            { title: t("migration:wizard.step.readiness") },
          ]}
        />
        {step === 0 && (
          <Form layout="vertical">
            <Flex gap={16} wrap="wrap">
              <Form.Item label={t("migration:field.name")} required extra={t("migration:wizard.nameHelp")} style={{ width: 320 }}>
                <Input value={name} onChange={(e) => setName(e.target.value)} data-testid="plan-name" />
              </Form.Item>
              <Form.Item label={t("migration:field.source")} required style={{ width: 320 }}>
                <Select
                  value={source}
                  disabled={Boolean(planId)}
                  placeholder={t("migration:wizard.chooseSource")}
                  onChange={(value: string) => {
                    setSource(value);
                    setVms(new Map());
                    setNetworkMap({});
                    setStorageMap({});
                  }}
                  options={vsphere.map((p) => ({ value: p.id, label: p.name }))}
                  data-testid="plan-source"
                />
              </Form.Item>
            </Flex>
            {source && <VmPicker providerId={source} selected={vms} onChange={setVms} />}
          </Form>
        )}
        {step === 1 && (
          <Form layout="vertical">
            <Flex gap={16} wrap="wrap">
              <Form.Item label={t("migration:field.target")} required extra={t("migration:wizard.targetHelp")} style={{ width: 320 }}>
                <Select
                  value={target}
                  disabled={Boolean(planId)}
                  placeholder={t("migration:wizard.chooseTarget")}
                  onChange={(value: string) => {
                    setTarget(value);
                    setNetworkMap({});
                    setStorageMap({});
                  }}
                  options={kvm.map((p) => ({ value: p.id, label: p.name }))}
                  data-testid="plan-target"
                />
              </Form.Item>
              <Form.Item label={t("migration:field.mode")} extra={t("migration:wizard.modeHelp")}>
                <Radio.Group value={mode} onChange={(e) => setMode(e.target.value as MigrationMode)} data-testid="plan-mode">
                  <Radio.Button value="cold">{t("migration:mode.cold")}</Radio.Button>
                  <Radio.Button value="warm">{t("migration:mode.warm")}</Radio.Button>
                </Radio.Group>
              </Form.Item>
              <Form.Item label={t("migration:field.format")} extra={t("migration:wizard.formatHelp")}>
                <Radio.Group value={format} onChange={(e) => setFormat(e.target.value as TargetFormat)} data-testid="plan-format">
                  <Radio.Button value="qcow2">qcow2</Radio.Button>
                  <Radio.Button value="raw">raw</Radio.Button>
                </Radio.Group>
              </Form.Item>
              <Form.Item label={t("migration:field.schedule")} extra={t("migration:wizard.scheduleHelp")}>
                <DatePicker
                  showTime
                  value={scheduleAt}
                  onChange={setScheduleAt}
                  placeholder={t("migration:schedule.now")}
                  disabledDate={(d) => d.isBefore(dayjs(), "day")}
                  data-testid="plan-schedule"
                />
              </Form.Item>
              <Form.Item label={t("migration:field.parallelism")} extra={t("migration:wizard.parallelismHelp")} style={{ width: 320 }}>
                <InputNumber
                  min={1}
                  max={8}
                  precision={0}
                  value={parallelism}
                  onChange={(value) => setParallelism(value ?? 1)}
                  data-testid="plan-parallelism"
                />
              </Form.Item>
            </Flex>
            {target && (
              <Flex vertical gap={16}>
                <MapTable
                  testid="network-map"
                  title={t("migration:wizard.networkMap")}
                  sources={usedNets}
                  targets={targetNets.items.map((n) => ({ value: n.id, label: n.vlan_id === null ? n.name : `${n.name} (VLAN ${n.vlan_id})` }))}
                  mapping={networkMap}
                  onChange={setNetworkMap}
                  placeholder={t("migration:wizard.unmappedNetwork")}
                />
                <MapTable
                  testid="storage-map"
                  title={t("migration:wizard.storageMap")}
                  sources={usedStores}
                  targets={targetPools.items.map((d) => ({
                    value: d.id,
                    label: `${d.name} · ${t("migration:wizard.free", { size: f.bytes(d.free_bytes) })}`,
                  }))}
                  mapping={storageMap}
                  onChange={setStorageMap}
                  placeholder={t("migration:wizard.unmappedDatastore")}
                />
              </Flex>
            )}
          </Form>
        )}
        {step === 2 && (
          <Flex vertical gap={16}>
            <Typography.Text type="secondary">
              {t("migration:wizard.summary", {
                count: vms.size,
                source: pool(source),
                target: pool(target),
                mode: t(`migration:mode.${mode}`),
                format,
              })}
            </Typography.Text>
            {busy && <Alert type="info" showIcon message={t("migration:readiness.checking")} />}
            {report && <Readiness report={report} />}
          </Flex>
        )}
        {notDraft && <Alert type="error" showIcon message={t("migration:wizard.notDraft")} style={{ marginTop: 16 }} />}
        {invalid && <Alert type="warning" showIcon message={invalid} style={{ marginTop: 16 }} data-testid="wizard-invalid" />}
        <ErrorAlert error={error} style={{ marginTop: 16 }} />
        <Flex gap={8} style={{ marginTop: 24 }} wrap="wrap">
          {step === 0 && (
            <Button onClick={() => navigate(planId ? `/migrations/${planId}` : "/migrations")}>{t("common:action.cancel")}</Button>
          )}
          {step > 0 && (
            <Button onClick={() => setStep(step - 1)} disabled={busy} data-testid="wizard-back">
              {t("common:action.previous")}
            </Button>
          )}
          {step < 2 && (
            <Button type="primary" onClick={next} disabled={notDraft} data-testid="wizard-next">
              {step === 1 ? t("migration:wizard.saveAndCheck") : t("common:action.next")}
            </Button>
          )}
          {step === 2 && (
            <>
              <Button onClick={() => void saveAndCheck()} loading={busy} data-testid="wizard-recheck">
                {t("migration:wizard.checkAgain")}
              </Button>
              <Button onClick={() => navigate(planId ? `/migrations/${planId}` : "/migrations")} disabled={busy || !planId} data-testid="wizard-keep-draft">
                {t("migration:wizard.keepDraft")}
              </Button>
              <Button type="primary" onClick={start} disabled={busy || !report?.ready} data-testid="wizard-start">
                {t("migration:action.start")}
              </Button>
            </>
          )}
        </Flex>
      </Card>
    </>
  );
}
