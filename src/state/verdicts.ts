import type { StateDb } from './db.js';

/*
 * What `runpod-llm doctor --live` found out about RunPod's live API, one row per
 * question, the latest answer wins:
 * - `json_start_command`: does v2 honour the JSON start-command form
 *   (`{"entrypoint":[...],"cmd":[...]}` in `args`)? `up` picks its recipe from this.
 * - `self_stop`: can a pod stop itself with the pod-scoped key RunPod gives it (the guard's
 *   self-stop path)?
 * `unknown`: the probe ran but could not tell (e.g. the pod never printed anything).
 */

/** The questions `doctor --live` answers. */
export const VERDICT_NAMES = ['json_start_command', 'self_stop'] as const;
export type VerdictName = (typeof VERDICT_NAMES)[number];
export type VerdictValue = 'honoured' | 'not_honoured' | 'unknown';

export interface Verdict {
  name: VerdictName;
  value: VerdictValue;
  /** Epoch ms of the probe. */
  checkedAt: number;
  /** One line of evidence (what the probe saw); never a secret. */
  detail: string | null;
}

interface VerdictDbRow {
  name: VerdictName;
  value: VerdictValue;
  checked_at: number;
  detail: string | null;
}

function fromDb(r: VerdictDbRow): Verdict {
  return { name: r.name, value: r.value, checkedAt: r.checked_at, detail: r.detail };
}

export function setVerdict(
  db: StateDb,
  verdict: { name: VerdictName; value: VerdictValue; checkedAt?: number; detail?: string | null },
): void {
  db.stmt(
    `INSERT INTO verdicts (name, value, checked_at, detail) VALUES (?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET value = excluded.value, checked_at = excluded.checked_at, detail = excluded.detail`,
  ).run(verdict.name, verdict.value, verdict.checkedAt ?? db.clock.now(), verdict.detail ?? null);
}

/** The stored verdict, or null when `doctor --live` never answered this question. */
export function getVerdict(db: StateDb, name: VerdictName): Verdict | null {
  const r = db.stmt('SELECT * FROM verdicts WHERE name = ?').get(name) as VerdictDbRow | undefined;
  return r === undefined ? null : fromDb(r);
}

export function listVerdicts(db: StateDb): Verdict[] {
  return (db.stmt('SELECT * FROM verdicts ORDER BY name').all() as VerdictDbRow[]).map(fromDb);
}
