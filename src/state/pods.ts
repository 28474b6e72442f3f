import { randomBytes } from 'node:crypto';
import type { StateDb } from './db.js';

/** Every pod this tool creates is named `runpod-llm-<shortid>`: how orphans are recognised. */
export const POD_NAME_PREFIX = 'runpod-llm-';

/** How long the name of a create that failed unconfirmed is remembered (`strayCreateNames`). */
export const STRAY_CREATE_WINDOW_MS = 24 * 3_600_000;

/**
 * Names that a pod of ours can carry though nothing owns it: every name in the state (a create
 * that RunPod failed but later fulfilled is retried under the same name, so a second pod with a
 * known name is that duplicate), and the names of creates that failed unconfirmed in the last
 * day (audit `create_unconfirmed`: RunPod may still create the pod after we stopped looking).
 */
export function strayCreateNames(db: StateDb, now: number): Set<string> {
  const names = new Set<string>();
  for (const row of db.stmt('SELECT name FROM pods').all() as Array<{ name: string }>) names.add(row.name);
  const failed = db
    .stmt(
      "SELECT json_extract(details, '$.name') AS name FROM audit WHERE action = 'create_unconfirmed' AND at >= ?",
    )
    .all(now - STRAY_CREATE_WINDOW_MS) as Array<{ name: unknown }>;
  for (const row of failed) if (typeof row.name === 'string') names.add(row.name);
  return names;
}

/** `doctor --live`'s probe pods (named like ours, so a probe a killed doctor left behind is found). */
export const PROBE_NAME_PREFIX = 'runpod-llm-doctor-';
/**
 * A probe pod younger than this belongs to a doctor that is still running (its checks end within
 * ~3 min and it always terminates the pod): the watchdog leaves it alone. Older, it is an orphan.
 */
export const PROBE_MAX_AGE_MS = 15 * 60_000;

/** A `doctor --live` probe pod that a running doctor may still own (created under PROBE_MAX_AGE_MS ago). */
export function isYoungProbePod(pod: { name: string; createdAt: string }, now: number): boolean {
  const created = Date.parse(pod.createdAt);
  return pod.name.startsWith(PROBE_NAME_PREFIX) && !Number.isNaN(created) && now - created < PROBE_MAX_AGE_MS;
}

export type PodDesired = 'running' | 'stopped' | 'terminated';
export type IdleAction = 'stop' | 'terminate';
export type Cloud = 'SECURE' | 'COMMUNITY';

/** One pod we created (or adopted by name). `apiKey` is the pod's vLLM key: it lives only here. */
export interface PodRow {
  podId: string;
  name: string;
  runId: string | null;
  gpuTypeId: string;
  gpuCount: number;
  cloud: Cloud;
  costPerHr: number;
  model: string;
  /** Last status seen on RunPod (PROVISIONING, RUNNING, EXITED, …). */
  status: string;
  createdAt: number;
  startedAt: number | null;
  /** When readiness (health + models) last succeeded; idleness counts from here at the latest. */
  readyAt: number | null;
  desired: PodDesired;
  /** Runtime granted to this pod, counted from `createdAt` (a recreated pod gets the remainder, ≥ 5 min). */
  runtimeLimitMs: number | null;
  idleLimitMs: number | null;
  idleAction: IdleAction | null;
  budgetUsd: number | null;
  restarts: number;
  /** The pod this one was created to replace (recreate after death). */
  replacesPodId: string | null;
  apiKey: string;
  /** Version of the guard in front of its vLLM (src/guard); null: unguarded, vLLM's routes are public. */
  guard: string | null;
  /** When it was last asked to start (created or started again): readiness counts from here. */
  startingSince: number | null;
  /** Cost is accrued into `spend` up to this time. */
  accruedUntil: number | null;
  endedAt: number | null;
  endReason: string | null;
}

export type NewPod = Omit<
  PodRow,
  | 'restarts'
  | 'replacesPodId'
  | 'accruedUntil'
  | 'endedAt'
  | 'endReason'
  | 'readyAt'
  | 'startedAt'
  | 'desired'
  | 'guard'
  | 'startingSince'
> &
  Partial<Pick<PodRow, 'restarts' | 'replacesPodId' | 'readyAt' | 'startedAt' | 'desired' | 'guard'>>;

interface PodDbRow {
  pod_id: string;
  name: string;
  run_id: string | null;
  gpu_type_id: string;
  gpu_count: number;
  cloud: Cloud;
  cost_per_hr: number;
  model: string;
  status: string;
  created_at: number;
  started_at: number | null;
  ready_at: number | null;
  desired: PodDesired;
  runtime_limit_ms: number | null;
  idle_limit_ms: number | null;
  idle_action: IdleAction | null;
  budget_usd: number | null;
  restarts: number;
  replaces_pod_id: string | null;
  api_key: string;
  guard: string | null;
  starting_since: number | null;
  accrued_until: number | null;
  ended_at: number | null;
  end_reason: string | null;
}

function fromDb(r: PodDbRow): PodRow {
  return {
    podId: r.pod_id,
    name: r.name,
    runId: r.run_id,
    gpuTypeId: r.gpu_type_id,
    gpuCount: r.gpu_count,
    cloud: r.cloud,
    costPerHr: r.cost_per_hr,
    model: r.model,
    status: r.status,
    createdAt: r.created_at,
    startedAt: r.started_at,
    readyAt: r.ready_at,
    desired: r.desired,
    runtimeLimitMs: r.runtime_limit_ms,
    idleLimitMs: r.idle_limit_ms,
    idleAction: r.idle_action,
    budgetUsd: r.budget_usd,
    restarts: r.restarts,
    replacesPodId: r.replaces_pod_id,
    apiKey: r.api_key,
    guard: r.guard,
    startingSince: r.starting_since,
    accruedUntil: r.accrued_until,
    endedAt: r.ended_at,
    endReason: r.end_reason,
  };
}

/**
 * A fresh unique pod name. Unique names let `up` find a pod that RunPod created despite
 * answering 5xx (docs/runpod-contract.md), and let the watchdog spot orphans.
 *
 * @example
 *   newPodName() // 'runpod-llm-k3v9q2xa'
 */
export function newPodName(random: (n: number) => Buffer = randomBytes): string {
  const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
  const bytes = random(8);
  let id = '';
  for (const b of bytes) id += alphabet[b % 32];
  return POD_NAME_PREFIX + id;
}

export function isOurPodName(name: string): boolean {
  return name.startsWith(POD_NAME_PREFIX);
}

/**
 * Records a pod right after RunPod created it (before readiness).
 *
 * @example
 *   insertPod(state, { podId, name, runId, gpuTypeId: 'NVIDIA A40', gpuCount: 1, cloud: 'SECURE',
 *     costPerHr: 0.4, model, status: 'PROVISIONING', createdAt: now, runtimeLimitMs, idleLimitMs,
 *     idleAction: 'stop', budgetUsd: 5, apiKey });
 */
export function insertPod(db: StateDb, pod: NewPod): PodRow {
  db.stmt(
    `INSERT INTO pods (pod_id, name, run_id, gpu_type_id, gpu_count, cloud, cost_per_hr, model, status,
       created_at, started_at, ready_at, desired, runtime_limit_ms, idle_limit_ms, idle_action, budget_usd,
       restarts, replaces_pod_id, api_key, guard, starting_since)
     VALUES (@podId, @name, @runId, @gpuTypeId, @gpuCount, @cloud, @costPerHr, @model, @status,
       @createdAt, @startedAt, @readyAt, @desired, @runtimeLimitMs, @idleLimitMs, @idleAction, @budgetUsd,
       @restarts, @replacesPodId, @apiKey, @guard, @createdAt)`,
  ).run({
    ...pod,
    startedAt: pod.startedAt ?? null,
    readyAt: pod.readyAt ?? null,
    desired: pod.desired ?? 'running',
    restarts: pod.restarts ?? 0,
    replacesPodId: pod.replacesPodId ?? null,
    guard: pod.guard ?? null,
  });
  const row = getPod(db, pod.podId);
  if (row === undefined) throw new Error(`pod ${pod.podId} vanished right after insert`);
  return row;
}

export function getPod(db: StateDb, podId: string): PodRow | undefined {
  const r = db.stmt('SELECT * FROM pods WHERE pod_id = ?').get(podId) as PodDbRow | undefined;
  return r === undefined ? undefined : fromDb(r);
}

export function getPodByName(db: StateDb, name: string): PodRow | undefined {
  const r = db.stmt('SELECT * FROM pods WHERE name = ?').get(name) as PodDbRow | undefined;
  return r === undefined ? undefined : fromDb(r);
}

/** Pods not yet ended (what the watchdog looks after), oldest first; `runId` narrows to one run. */
export function listActivePods(db: StateDb, runId?: string): PodRow[] {
  const rows = (
    runId === undefined
      ? db.stmt('SELECT * FROM pods WHERE ended_at IS NULL ORDER BY created_at, pod_id').all()
      : db
          .stmt('SELECT * FROM pods WHERE ended_at IS NULL AND run_id = ? ORDER BY created_at, pod_id')
          .all(runId)
  ) as PodDbRow[];
  return rows.map(fromDb);
}

/** Every pod ever recorded, newest first, at most `limit` (status/history). */
export function listPods(db: StateDb, limit = 100): PodRow[] {
  return (
    db.stmt('SELECT * FROM pods ORDER BY created_at DESC, pod_id LIMIT ?').all(limit) as PodDbRow[]
  ).map(fromDb);
}

/** Stores what RunPod last reported. */
export function updatePodSeen(
  db: StateDb,
  podId: string,
  seen: { status: string; costPerHr?: number; startedAt?: number | null },
): void {
  db.stmt(
    `UPDATE pods SET status = @status, cost_per_hr = coalesce(@costPerHr, cost_per_hr),
       started_at = coalesce(@startedAt, started_at) WHERE pod_id = @podId`,
  ).run({ podId, status: seen.status, costPerHr: seen.costPerHr ?? null, startedAt: seen.startedAt ?? null });
}

export function markPodReady(db: StateDb, podId: string, at: number = db.clock.now()): void {
  db.stmt('UPDATE pods SET ready_at = ? WHERE pod_id = ?').run(at, podId);
}

/**
 * Records the intent before acting on RunPod, so a crash between the decision and the API call
 * is retried by the next watchdog pass instead of forgotten.
 */
export function setPodDesired(db: StateDb, podId: string, desired: PodDesired, reason?: string): void {
  // Wanted running again (a stopped pod resumed): the reason it was stopped no longer applies,
  // and would otherwise become its end reason later (markPodEnded keeps an existing reason).
  db.stmt(
    `UPDATE pods SET desired = @desired,
       end_reason = CASE WHEN @desired = 'running' THEN @reason ELSE coalesce(@reason, end_reason) END
     WHERE pod_id = @podId`,
  ).run({ desired, reason: reason ?? null, podId });
}

/** The pod is gone on RunPod (terminated, replaced, or vanished). */
export function markPodEnded(db: StateDb, podId: string, reason: string, at: number = db.clock.now()): void {
  db.stmt(
    `UPDATE pods SET ended_at = coalesce(ended_at, ?), end_reason = coalesce(end_reason, ?), desired = 'terminated'
     WHERE pod_id = ?`,
  ).run(at, reason, podId);
}

export function setAccruedUntil(db: StateDb, podId: string, until: number): void {
  db.stmt('UPDATE pods SET accrued_until = max(coalesce(accrued_until, 0), ?) WHERE pod_id = ?').run(
    until,
    podId,
  );
}

/**
 * A stopped pod was asked to start again (resume, wake): wanted running, not ready until
 * readiness passes again (no traffic, and not idle while it boots), readiness timed from `at`,
 * and no cost booked for the time it was stopped (a stopped pod bills no GPU time).
 */
export function markPodStarting(db: StateDb, podId: string, at: number = db.clock.now()): void {
  db.stmt(
    `UPDATE pods SET desired = 'running', end_reason = NULL, ready_at = NULL, starting_since = @at,
       accrued_until = max(coalesce(accrued_until, 0), @at)
     WHERE pod_id = @podId AND ended_at IS NULL`,
  ).run({ podId, at });
}
