/**
 * Names for the ids a list shows (pool, host, network, datastore). Fetched once per page
 * view and never awaited by the list itself: rows render first, names fill in.
 */
import { useEffect, useMemo, useState } from "react";

import { api } from "./client";
import type { Datastore, Host, Network, Page, Project, Provider } from "./types";

function useList<T>(path: string | null, query: Record<string, string | number | undefined>) {
  const [items, setItems] = useState<T[]>([]);
  const key = JSON.stringify(query);
  useEffect(() => {
    if (!path) return undefined;
    const abort = new AbortController();
    api
      .get<T[] | Page<T>>(path, JSON.parse(key) as Record<string, string>, abort.signal)
      .then((body) => setItems(Array.isArray(body) ? body : body.items))
      .catch(() => undefined); // names are a nicety: the ids still show
    return () => abort.abort();
  }, [path, key]);
  return items;
}

function byId<T extends { id: string }>(items: T[]): Map<string, T> {
  return new Map(items.map((item) => [item.id, item]));
}

export function useProviders(enabled = true) {
  const items = useList<Provider>(enabled ? "/v1/providers" : null, {});
  return useMemo(() => ({ items, byId: byId(items) }), [items]);
}

/** Hosts of one pool, or the first 1,000 of all. */
export function useHosts(providerId?: string | null, enabled = true) {
  const items = useList<Host>(enabled ? "/v1/hosts" : null, {
    provider_id: providerId ?? undefined,
    limit: 1000,
  });
  return useMemo(() => ({ items, byId: byId(items) }), [items]);
}

export function useNetworks(providerId?: string | null, enabled = true) {
  const items = useList<Network>(enabled ? "/v1/networks" : null, {
    provider_id: providerId ?? undefined,
    limit: 1000,
  });
  return useMemo(() => ({ items, byId: byId(items) }), [items]);
}

export function useDatastores(providerId?: string | null, enabled = true) {
  const items = useList<Datastore>(enabled ? "/v1/datastores" : null, {
    provider_id: providerId ?? undefined,
    limit: 1000,
  });
  return useMemo(() => ({ items, byId: byId(items) }), [items]);
}

/** The projects the caller sees: every one for an admin, else their own. */
export function useProjects(enabled = true) {
  const items = useList<Project>(enabled ? "/v1/projects" : null, {});
  return useMemo(() => ({ items, byId: byId(items) }), [items]);
}
