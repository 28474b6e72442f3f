import type { StateDb } from './db.js';

/**
 * What the gateway forwards to: one upstream vLLM endpoint. The gateway reads these rows (it
 * never talks to RunPod) and adds `apiKey` as the upstream bearer token.
 */
export interface RouteRow {
  routeId: string;
  /** The pod behind it, or null for a route not backed by one of our pods (e.g. a fixed URL). */
  podId: string | null;
  /** OpenAI-style base URL ending with `/v1`, e.g. `https://abc123-8000.proxy.runpod.net/v1`. */
  baseUrl: string;
  apiKey: string;
  /** The served model name. */
  model: string;
  /** Only ready routes receive traffic (readiness = health 200 and the model listed). */
  ready: boolean;
  /** Relative share of traffic among ready routes (0 = drain). */
  weight: number;
  updatedAt: number;
}

/** How often a gateway re-reads the routes version (src/gateway/upstream/state-route-source.ts). */
export const ROUTE_POLL_MS = 1_000;

export type RouteInput = Omit<RouteRow, 'updatedAt' | 'weight' | 'ready'> &
  Partial<Pick<RouteRow, 'weight' | 'ready'>>;

interface RouteDbRow {
  route_id: string;
  pod_id: string | null;
  base_url: string;
  api_key: string;
  model: string;
  ready: number;
  weight: number;
  updated_at: number;
}

function fromDb(r: RouteDbRow): RouteRow {
  return {
    routeId: r.route_id,
    podId: r.pod_id,
    baseUrl: r.base_url,
    apiKey: r.api_key,
    model: r.model,
    ready: r.ready === 1,
    weight: r.weight,
    updatedAt: r.updated_at,
  };
}

/**
 * Inserts or replaces a route (the manager calls this after readiness).
 *
 * @example
 *   upsertRoute(state, { routeId: pod.podId, podId: pod.podId, baseUrl: `${podUrl}/v1`,
 *     apiKey: pod.apiKey, model: 'qwen', ready: true });
 */
export function upsertRoute(db: StateDb, route: RouteInput): RouteRow {
  if (!/\/v1$/.test(route.baseUrl))
    throw new TypeError(`route baseUrl must end with /v1, got ${route.baseUrl}`);
  const weight = route.weight ?? 1;
  if (!Number.isInteger(weight) || weight < 0)
    throw new TypeError(`route weight must be an integer >= 0, got ${weight}`);
  const row: RouteRow = { ...route, ready: route.ready ?? false, weight, updatedAt: db.clock.now() };
  db.stmt(
    `INSERT INTO routes (route_id, pod_id, base_url, api_key, model, ready, weight, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (route_id) DO UPDATE SET pod_id = excluded.pod_id, base_url = excluded.base_url,
       api_key = excluded.api_key, model = excluded.model, ready = excluded.ready,
       weight = excluded.weight, updated_at = excluded.updated_at`,
  ).run(
    row.routeId,
    row.podId,
    row.baseUrl,
    row.apiKey,
    row.model,
    row.ready ? 1 : 0,
    row.weight,
    row.updatedAt,
  );
  return row;
}

/** Marks a route ready or not (health probes, idle stop); a no-op for an unknown route. */
export function setRouteReady(db: StateDb, routeId: string, ready: boolean): void {
  db.stmt('UPDATE routes SET ready = ?, updated_at = ? WHERE route_id = ? AND ready <> ?').run(
    ready ? 1 : 0,
    db.clock.now(),
    routeId,
    ready ? 1 : 0,
  );
}

/** Removes every route of a pod (the pod stopped, ended or was replaced). */
export function deleteRoutesForPod(db: StateDb, podId: string): void {
  db.stmt('DELETE FROM routes WHERE pod_id = ?').run(podId);
}

/** `down`: no routes at all. */
export function clearRoutes(db: StateDb): void {
  db.stmt('DELETE FROM routes').run();
}

export function listRoutes(db: StateDb): RouteRow[] {
  return (db.stmt('SELECT * FROM routes ORDER BY route_id').all() as RouteDbRow[]).map(fromDb);
}

/**
 * Routes the gateway may send traffic to: ready and with a weight above zero.
 *
 * @example
 *   let seen = -1;
 *   setInterval(() => { const v = routesVersion(state); if (v !== seen) { seen = v; routes = listReadyRoutes(state); } }, 1000);
 */
export function listReadyRoutes(db: StateDb): RouteRow[] {
  return (
    db.stmt('SELECT * FROM routes WHERE ready = 1 AND weight > 0 ORDER BY route_id').all() as RouteDbRow[]
  ).map(fromDb);
}

/**
 * A counter bumped (by triggers) on every insert, update or delete of a route: a one-integer
 * read that tells a polling gateway whether to re-read the routes.
 */
export function routesVersion(db: StateDb): number {
  return db.stmt('SELECT version FROM routes_meta WHERE id = 1').pluck().get() as number;
}
