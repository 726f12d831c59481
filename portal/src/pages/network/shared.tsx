/**
 * What the network pages share: loading the small, unpaged network lists (a project has
 * tens of segments and routers, not thousands), state tags, and labels for ids.
 */
import {
  CheckCircleOutlined,
  ClockCircleOutlined,
  CloseCircleOutlined,
  MinusCircleOutlined,
  SyncOutlined,
} from "@ant-design/icons";
import { Tag } from "antd";
import { useCallback, useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";

import { api } from "../../api/client";
import { useProjects } from "../../api/lookups";
import type { RealisationState, Segment, SegmentStatus } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";

export const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A list route's items, reloaded on `reload()`; `null` until the first answer. */
export function useList<T>(path: string | null, query?: Record<string, string | undefined>) {
  const [items, setItems] = useState<T[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  const key = JSON.stringify(query ?? {});
  useEffect(() => {
    if (!path) return undefined;
    const abort = new AbortController();
    api
      .get<T[]>(path, JSON.parse(key) as Record<string, string>, abort.signal)
      .then((body) => {
        setItems(body);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!abort.signal.aborted) setError(err);
      });
    return () => abort.abort();
  }, [path, key, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { items, error, reload, loading: items === null && !error && path !== null };
}

export function byId<T extends { id: string }>(items: T[] | null): Map<string, T> {
  return new Map((items ?? []).map((item) => [item.id, item]));
}

const SEGMENT: Record<SegmentStatus, { color: string; icon: React.ReactNode }> = {
  building: { color: "processing", icon: <SyncOutlined spin /> },
  active: { color: "success", icon: <CheckCircleOutlined /> },
  error: { color: "error", icon: <CloseCircleOutlined /> },
  deleting: { color: "warning", icon: <SyncOutlined spin /> },
};

export function SegmentStatusTag({ status }: { status: SegmentStatus }) {
  const { t } = useTranslation();
  const look = SEGMENT[status] ?? SEGMENT.error;
  return (
    <Tag color={look.color} icon={look.icon} data-segment-status={status}>
      {t(`network:segmentStatus.${status}`)}
    </Tag>
  );
}

const REALISATION: Record<RealisationState, { color: string; icon: React.ReactNode }> = {
  pending: { color: "default", icon: <ClockCircleOutlined /> },
  realised: { color: "success", icon: <CheckCircleOutlined /> },
  removed: { color: "default", icon: <MinusCircleOutlined /> },
};

export function RealisationTag({ state }: { state: RealisationState }) {
  const { t } = useTranslation();
  const look = REALISATION[state] ?? REALISATION.pending;
  return (
    <Tag color={look.color} icon={look.icon} data-realisation-state={state}>
      {t(`network:realisationState.${state}`)}
    </Tag>
  );
}

/** "VLAN 120 · physnet default", "VXLAN 5001", "Flat · default". */
export function useSegmentation() {
  const { t } = useTranslation();
  return useCallback(
    (s: Pick<Segment, "network_type" | "segmentation_id" | "physical_network">) => {
      const type = t(`network:networkType.${s.network_type}`);
      const id = s.segmentation_id === null ? "" : ` ${s.segmentation_id}`;
      const physnet = s.physical_network ? ` · ${s.physical_network}` : "";
      return `${type}${id}${physnet}`;
    },
    [t],
  );
}

/** A project's name for an id; the platform's objects have none. */
export function useProjectLabel() {
  const { t } = useTranslation();
  const { can } = useAuth();
  const projects = useProjects(can("list_projects"));
  return useMemo(() => {
    const names = new Map(projects.items.map((p) => [p.id, p.name]));
    return (projectId: string | null) =>
      projectId === null ? t("network:platform") : (names.get(projectId) ?? projectId);
  }, [projects.items, t]);
}
