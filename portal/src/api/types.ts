/** The API's bodies as the portal reads them (see /openapi.json for the full schemas). */

export type PowerState = "running" | "stopped" | "suspended" | "paused" | "unknown";
export type TaskState = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export type RoleName = "reader" | "member" | "project-admin";
export type Locale = "en" | "zh-CN";

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Principal {
  user_id: string;
  user_name: string;
  domain_id: string;
  is_admin: boolean;
  project_id: string | null;
  role: RoleName | null;
  token_id: string;
  /** operationIds (route names) the caller may call. */
  permissions: string[];
  locale: Locale | null;
}

export interface LoginResult {
  token: string;
  expires_at: string;
  principal: Omit<Principal, "permissions" | "locale">;
}

export interface Provider {
  id: string;
  name: string;
  kind: string;
  url: string | null;
  username: string | null;
  verify_tls: boolean | null;
  region: string;
  zone: string;
  zone_id: string;
  status: "ok" | "unreachable" | "error" | "unknown";
  status_message: string | null;
  product: string | null;
  version: string | null;
  capabilities: Record<string, boolean>;
  created_at: string;
  last_sync_at: string | null;
  last_sync_ok_at: string | null;
  last_sync_seconds: number | null;
  inventory_age_s: number | null;
}

export interface Disk {
  id: number;
  position: number;
  key: string;
  label: string;
  size_bytes: number;
  datastore_id: string | null;
  path: string;
  format: string;
}

export interface Nic {
  id: number;
  position: number;
  key: string;
  mac: string;
  network_id: string | null;
  network_name: string;
  model: string;
}

export interface VM {
  id: string;
  name: string;
  power_state: PowerState;
  cpu_count: number;
  memory_mib: number;
  guest_os: string;
  provider_id: string;
  host_id: string | null;
  is_template: boolean;
  instance_uuid: string;
  annotation: string;
  created_at: string;
  updated_at: string;
  tags: string[];
  project_id: string | null;
  disks?: Disk[];
  nics?: Nic[];
}

export interface VMDetail extends VM {
  disks: Disk[];
  nics: Nic[];
}

export interface Host {
  id: string;
  provider_id: string;
  name: string;
  cluster_id: string | null;
  cpu_cores: number;
  cpu_mhz: number;
  memory_mib: number;
  in_maintenance: boolean;
  connected: boolean;
  hypervisor: string;
}

export interface Datastore {
  id: string;
  provider_id: string;
  name: string;
  kind: string;
  capacity_bytes: number;
  free_bytes: number;
}

export interface Network {
  id: string;
  provider_id: string;
  name: string;
  kind: string;
  vlan_id: number | null;
}

export interface Snapshot {
  id: string;
  name: string;
  description: string;
  created_at: string | null;
  parent_id: string | null;
  is_current: boolean;
}

export interface TaskStep {
  name: string;
  state: "pending" | "running" | "succeeded" | "failed" | "skipped";
  started_at: string | null;
  finished_at: string | null;
  executor?: string | null;
}

export interface Task {
  id: string;
  kind: string;
  state: TaskState;
  progress: number;
  steps: TaskStep[];
  error: { code: string; message: string } | null;
  result: Record<string, unknown> | null;
  requester: string;
  provider_id: string | null;
  vm_id: string | null;
  cancel_requested: boolean;
  attempt: number;
  executor_id: string | null;
  parent_id: string | null;
  project_id: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface TaskItem {
  vm_id: string;
  vm_name: string;
  position: number;
  state: "pending" | "running" | "succeeded" | "failed" | "cancelled";
  child_task_id: string | null;
  error: { code: string; message: string } | null;
  updated_at: string;
}

export interface EventEntry {
  id: number;
  at: string;
  kind: string;
  actor: string;
  object_kind: string;
  object_id: string | null;
  object_name: string;
  provider_id: string | null;
  task_id: string | null;
  message: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface PlacementCandidate {
  id: string;
  name: string;
  kind: "host" | "cluster";
  provider_id: string;
  provider_name: string;
  provider_kind: string;
  zone_id: string;
  zone: string;
  hosts: number;
  cpu_cores: number;
  vcpus_used: number;
  memory_mib: number;
  memory_mib_used: number;
  in_maintenance: boolean;
  connected: boolean;
}

export interface PlacementDecision {
  summary: string;
  chosen: PlacementCandidate | null;
  datastore: { id: string; name: string; capacity_bytes: number; free_bytes: number } | null;
  ranked: (PlacementCandidate & { score: number })[];
  rejected: (PlacementCandidate & { reasons: { filter: string; reason: string }[] })[];
  rejected_by: Record<string, number>;
}

export interface BulkPreview {
  count: number;
  vms: { id: string; name: string }[];
}

export interface Project {
  id: string;
  domain_id: string;
  name: string;
  description: string;
  created_at: string;
}

/** The inventory lists' rows: the object and what the list adds (pool name, usage). */
export interface HostListed extends Host {
  provider_name: string;
  cluster_name: string | null;
  state: "connected" | "maintenance" | "disconnected";
  cpu_ghz: number;
  vcpus_used: number;
  memory_mib_used: number;
  vm_count: number;
}

export interface DatastoreListed extends Datastore {
  provider_name: string;
  used_bytes: number;
  host_count: number;
}

export interface NetworkListed extends Network {
  provider_name: string;
  host_count: number;
}

export interface Capacity {
  vcpus_total: number;
  vcpus_used: number;
  vcpus_free: number;
  memory_mib_total: number;
  memory_mib_used: number;
  memory_mib_free: number;
  storage_gib_total: number;
  storage_gib_used: number;
  storage_gib_free: number;
}

export interface HostCounts {
  total: number;
  connected: number;
  maintenance: number;
  disconnected: number;
}

export interface Overview {
  generated_at: string;
  pools: {
    id: string;
    name: string;
    kind: string;
    region: string;
    zone: string;
    zone_id: string;
    status: Provider["status"];
    reachable: boolean;
    last_sync_at: string | null;
    last_sync_ok_at: string | null;
    inventory_age_s: number | null;
    hosts: HostCounts;
    vms: number;
    capacity: Capacity;
  }[];
  zones: { id: string; name: string; region: string; pools: number; capacity: Capacity }[];
  hosts: HostCounts;
  vms: Record<PowerState, number> & { total: number; templates: number };
  capacity: Capacity;
  recent_tasks: Task[];
  recent_events: EventEntry[];
}

export interface User {
  id: string;
  domain_id: string;
  name: string;
  display_name: string;
  email: string;
  source: "local" | "ldap";
  is_admin: boolean;
  enabled: boolean;
  locked: boolean;
  locale: string;
  created_at: string;
}

export interface Member {
  user_id: string;
  user_name: string;
  role: RoleName;
}

export type GrantKind = "provider" | "zone" | "network";

export interface Grant {
  kind: GrantKind;
  target_id: string;
  created_at: string;
}

export type QuotaName = "vms" | "vcpus" | "ram_mib" | "disk_gib" | "floating_ips" | "snapshots";

export interface QuotaUsage {
  quota: QuotaName;
  limit: number | null;
  in_use: number;
  reserved: number;
  free: number | null;
}

export type AuditOutcome = "success" | "denied" | "invalid" | "error";

export interface AuditEntry {
  id: number;
  at: string;
  request_id: string;
  user_id: string | null;
  user_name: string;
  project_id: string | null;
  source_ip: string;
  method: string;
  path: string;
  action: string;
  status_code: number;
  outcome: AuditOutcome;
  target_id: string | null;
  task_id: string | null;
}

// -- Tessera's own networks (/v1/segments, subnets, ports, routers, floating IPs, ...) --

export type NetworkType = "flat" | "vlan" | "vxlan";
export type SegmentStatus = "building" | "active" | "error" | "deleting";
export type RealisationState = "pending" | "realised" | "removed";
export type RangeKind = "subnet" | "region" | "vpn-peer" | "announcement" | "migration-target";

export interface Realisation {
  provider_id: string;
  state: RealisationState;
  native_name: string;
  location: string;
}

export interface Segment {
  id: string;
  name: string;
  description: string;
  project_id: string | null;
  network_type: NetworkType;
  segmentation_id: number | null;
  physical_network: string | null;
  shared: boolean;
  external: boolean;
  region_id: string | null;
  status: SegmentStatus;
  realisations: Realisation[];
  subnet_ids: string[];
  created_at: string;
  updated_at: string;
}

export interface SegmentAccepted {
  segment: Segment;
  task: Task | null;
}

export interface Subnet {
  id: string;
  segment_id: string;
  project_id: string | null;
  name: string;
  cidr: string;
  ip_version: number;
  gateway_ip: string | null;
  allocation_pools: { start: string; end: string }[];
  dns_nameservers: string[];
  enable_dhcp: boolean;
  addresses_used: number;
  addresses_total: number;
  created_at: string;
}

export interface NetPort {
  id: string;
  segment_id: string;
  project_id: string | null;
  name: string;
  mac: string;
  fixed_ips: { subnet_id: string; ip_address: string }[];
  device_owner: "" | "compute" | "router_interface" | "router_gateway";
  device_id: string | null;
  security_group_ids: string[];
  created_at: string;
}

export interface Router {
  id: string;
  name: string;
  project_id: string | null;
  external_segment_id: string | null;
  enable_snat: boolean;
  gateway_ips: string[];
  interfaces: { port_id: string; subnet_id: string; ip_address: string }[];
  created_at: string;
}

export interface FloatingIP {
  id: string;
  project_id: string | null;
  segment_id: string;
  subnet_id: string;
  address: string;
  port_id: string | null;
  fixed_ip: string | null;
  router_id: string | null;
  created_at: string;
}

export interface SecurityRule {
  id: string;
  security_group_id: string;
  direction: "ingress" | "egress";
  ethertype: "IPv4" | "IPv6";
  protocol: "tcp" | "udp" | "icmp" | "icmpv6" | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
}

export interface SecurityGroup {
  id: string;
  name: string;
  description: string;
  project_id: string | null;
  rules: SecurityRule[];
  created_at: string;
}

export interface AddressRange {
  id: string;
  name: string;
  kind: RangeKind;
  cidr: string;
  region_id: string | null;
  description: string;
  created_at: string;
}

export interface RangeOwner {
  cidr: string;
  kind: RangeKind;
  object_id: string;
  owner: string;
  project_id: string | null;
}

export interface AddressOverlap {
  first: RangeOwner;
  second: RangeOwner;
}

/* Migration plans (tessera/api/migration_schemas.py, tessera/migration/readiness.py). */
export type MigrationPlanState = "draft" | "running" | "succeeded" | "failed" | "cancelled" | "rolled_back";
export type MigrationMode = "cold" | "warm";
export type TargetFormat = "qcow2" | "raw";
export type FindingSeverity = "blocking" | "warning" | "info";

export interface MigrationDiskProgress {
  index: number;
  ds_path: string;
  volume: string;
  format: string;
  state: string;
  total_bytes: number;
  transfer_bytes: number;
  done_bytes: number;
  mib_s: number;
  eta_s: number | null;
  identical: boolean | null;
  /** Warm mode: what each copy round copied (round 0: the full copy). */
  rounds?: { round: number; bytes: number; areas: number; seconds: number }[];
}

export interface MigrationVm {
  vm_id: string;
  name: string;
  position: number;
  state: string;
  phase: string | null;
  /** phase -> pending | running | done | failed; warm mode adds `warm_round` (a number). */
  phases: Record<string, string | number | boolean>;
  disks: MigrationDiskProgress[];
  target_native_id: string | null;
  error: string | null;
}

export interface ReadinessFinding {
  severity: FindingSeverity;
  code: string;
  message: string;
}

export interface ReadinessVm {
  vm_id: string;
  name: string;
  ready: boolean;
  findings: ReadinessFinding[];
  transfer_bytes: number;
  virtual_bytes: number;
  estimate_s: number;
}

export interface ReadinessReport {
  checked_at: string;
  ready: boolean;
  vms: ReadinessVm[];
  transfer_bytes: number;
  estimate_s: number;
  /** "measured over N copies" (the median MiB/s of the source's recent copies) or "default". */
  estimate_basis?: string;
  estimate_mib_s?: number | null;
  estimate_copies?: number;
}

export interface MigrationPlan {
  id: string;
  name: string;
  state: MigrationPlanState;
  source_provider_id: string | null;
  target_provider_id: string | null;
  /** source network id -> target network id */
  network_map: Record<string, string>;
  /** source datastore id -> target storage pool (datastore) id */
  storage_map: Record<string, string>;
  target_format: TargetFormat;
  mode: MigrationMode;
  schedule_at: string | null;
  /** How many of its VMs migrate at once (1-8). */
  parallelism: number;
  task_id: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  vms: MigrationVm[];
  readiness: ReadinessReport | null;
}

export type InterconnectKind = "bgp" | "ospf" | "ipsec" | "gre";

export interface InterconnectSide {
  region_id: string;
  region: string;
  namespace: string;
  underlay_ip: string;
  asn: number | null;
  tunnel_ip: string | null;
  ranges: string[];
  /** What it announces (routed) or reaches through the tunnel (VPN) now. */
  prefixes: string[];
  /** Read by the node's agent at its last sync; "unknown" when no agent runs. */
  tunnel_state: "up" | "down" | "unknown";
  tunnel_checked_at: string | null;
}

export interface Interconnect {
  id: string;
  name: string;
  kind: InterconnectKind;
  a: InterconnectSide;
  b: InterconnectSide;
  ospf_area: string | null;
  has_psk: boolean;
  created_at: string;
}
