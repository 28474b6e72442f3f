import { isAppError } from '../shared/errors.js';
import { probeStatus } from '../shared/probe.js';
import { listReadyRoutes, openState, type RouteRow } from '../state/index.js';
import type { ReportItem } from './config-checks.js';

/*
 * Checks of the running pods, as a stranger on the internet sees them: a RunPod pod's HTTP port
 * is public at its proxy URL, and vLLM's `--api-key` protects only `/v1`, so an unguarded pod
 * serves `/invocations` (full completions) and `/tokenize` to anyone who learns its id. Behind
 * the guard (src/guard/guard.py) both answer 404, with or without a key. The probes carry no key
 * and a body that asks for at most one token, so a pod left open costs next to nothing to check.
 */

/** The open vLLM routes probed through each pod URL, without a key. */
export const OPEN_ROUTE_PROBES: readonly { path: string; body: string }[] = [
  { path: '/invocations', body: '{"prompt":"","max_tokens":1}' },
  { path: '/tokenize', body: '{"prompt":"x"}' },
];

/** 404 (not routed) and 401/403 (refused) are closed; anything else means the route answered. */
const CLOSED = new Set([401, 403, 404]);

export interface PodProbeOptions {
  timeoutMs?: number;
}

type ProbeResult = { path: string; status: number } | { path: string; error: string };

/** The pod's base URL (the route's `/v1` removed), where its public port answers. */
function podBase(route: RouteRow): string {
  return route.baseUrl.replace(/\/v1$/, '');
}

async function probe(base: string, path: string, body: string, timeoutMs: number): Promise<ProbeResult> {
  const result = await probeStatus(
    fetch,
    `${base}${path}`,
    { method: 'POST', headers: { 'content-type': 'application/json' }, body },
    timeoutMs,
  );
  return { path, ...result };
}

/**
 * `pod.closed_routes`: every ready pod in the state answers 404/401 on `/invocations` and
 * `/tokenize` through its pod URL. Fails when one answers anything else (the route is open),
 * is unavailable when a pod cannot be reached, skips when no pod is running.
 *
 * @example
 *   const item = await checkPodOpenRoutes(config.home);   // { id: 'pod.closed_routes', status: 'pass', … }
 */
export async function checkPodOpenRoutes(home: string, options: PodProbeOptions = {}): Promise<ReportItem> {
  const id = 'pod.closed_routes';
  const timeoutMs = options.timeoutMs ?? 5_000;
  let routes: RouteRow[];
  try {
    const state = openState({ home, readonly: true });
    try {
      routes = listReadyRoutes(state).filter((r) => r.podId !== null);
    } finally {
      state.close();
    }
  } catch (err) {
    if (isAppError(err) && err.code === 'STATE_MISSING')
      return { id, status: 'skip', detail: 'no pod running (no state yet)' };
    return {
      id,
      status: 'unavailable',
      detail: `cannot read the state in ${home}: ${isAppError(err) ? err.message : (err as Error).message}`,
    };
  }
  if (routes.length === 0) return { id, status: 'skip', detail: 'no pod running' };

  const results = await Promise.all(
    routes.map(async (route) => ({
      podId: route.podId as string,
      probes: await Promise.all(
        OPEN_ROUTE_PROBES.map((p) => probe(podBase(route), p.path, p.body, timeoutMs)),
      ),
    })),
  );

  const open: string[] = [];
  const unreachable: string[] = [];
  for (const { podId, probes } of results) {
    for (const r of probes) {
      if ('error' in r) unreachable.push(`${podId} ${r.path}: ${r.error}`);
      else if (r.status >= 500) unreachable.push(`${podId} ${r.path}: HTTP ${r.status}`);
      else if (!CLOSED.has(r.status)) open.push(`${podId} answers ${r.status} on ${r.path}`);
    }
  }
  const paths = OPEN_ROUTE_PROBES.map((p) => p.path).join(' and ');
  if (open.length > 0) {
    return {
      id,
      status: 'fail',
      detail: `open to anyone through the pod URL, without a key: ${open.join('; ')} — strangers can use or disrupt this GPU`,
      fix: 'recreate the pod behind the guard: `runpod-llm down && runpod-llm up` (without --unguarded, and manager.guard not false)',
    };
  }
  if (unreachable.length > 0) {
    return {
      id,
      status: 'unavailable',
      detail: `could not check every pod: ${unreachable.join('; ')}`,
      fix: 'check that the pod is running (`runpod-llm status`) and run the report again',
    };
  }
  return {
    id,
    status: 'pass',
    detail: `${routes.length} running pod(s) refuse ${paths} through the pod URL (404/401 without a key)`,
  };
}
