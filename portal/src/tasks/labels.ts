/** Names of task kinds and steps in the UI's language (dots become underscores in keys). */
import type { TFunction } from "i18next";

/** Every kind of task, for filters (tests/portal/test_i18n_keys.py keeps it in step
 * with the backend's TaskKind). */
export const TASK_KINDS = [
  "vm.create",
  "vm.delete",
  "vm.power",
  "vm.rename",
  "vm.resize",
  "vm.nic.add",
  "vm.nic.remove",
  "vm.disk.add",
  "vm.disk.grow",
  "vm.disk.remove",
  "vm.snapshot.create",
  "vm.snapshot.revert",
  "vm.snapshot.delete",
  "vm.clone",
  "vm.template",
  "vm.untemplate",
  "vm.migrate",
  "vm.adopt",
  "vm.release",
  "vm.bulk.power",
  "vm.bulk.delete",
  "vm.bulk.tag",
  "provider.sync",
  "segment.create",
  "segment.update",
  "segment.delete",
  "router.sync",
  "interconnect.sync",
  "migration.run",
  "migration.rollback",
];

export function taskKindLabel(t: TFunction, kind: string): string {
  return t(`tasks:kind.${kind.replace(/\./g, "_")}`, { defaultValue: kind });
}

/** "disk-1" is the second disk: its label says "Disk 2". */
export function stepLabel(t: TFunction, name: string): string {
  const numbered = /^(.*)-(\d+)$/.exec(name);
  const base = numbered ? numbered[1] : name;
  const label = t(`tasks:step.${base.replace(/-/g, "_")}`, { defaultValue: base });
  return numbered ? `${label} ${Number(numbered[2]) + 1}` : label;
}
