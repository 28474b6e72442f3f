/*
 * Human durations for flags, environment and config: `500ms`, `30s`, `15m`, `1h`, `1h30m`, `2d`.
 * A unit is required: a bare number is refused because "90" could mean seconds or minutes, and
 * guessing wrong on a runtime limit costs money.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;

/** Words that switch a limit off. */
const OFF = new Set(['off', 'none', 'never', 'unlimited']);

/**
 * Milliseconds for a duration text, or undefined when it is not one.
 *
 * @example
 *   parseDuration('1h30m') // 5_400_000
 *   parseDuration('90')    // undefined (unit required)
 */
export function parseDuration(text: string): number | undefined {
  const value = text.trim().toLowerCase().replace(/\s+/g, '');
  if (!WHOLE.test(value)) return undefined;
  let total = 0;
  for (const match of value.matchAll(PART)) total += Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 1_000);
  return Math.round(total);
}

/** Like {@link parseDuration}, but `off`/`none`/`never`/`unlimited` give null (no limit). */
export function parseOptionalDuration(text: string): number | null | undefined {
  return OFF.has(text.trim().toLowerCase()) ? null : parseDuration(text);
}

/**
 * A short human form: `45s`, `12m`, `1h05m`, `2d03h`.
 *
 * @example
 *   formatDuration(3_900_000) // '1h05m'
 */
export function formatDuration(ms: number): string {
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${sign}${Math.round(abs)}ms`;
  const s = Math.floor(abs / 1_000);
  if (s < 60) return `${sign}${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${sign}${m}m${s % 60 === 0 || m >= 10 ? '' : `${String(s % 60).padStart(2, '0')}s`}`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${sign}${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${sign}${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}
