import { formatDuration } from '../shared/duration.js';
import type { ReadinessProgress } from '../lifecycle/readiness.js';
import { type CliIo, line } from './io.js';

/** `$0.27`, `$12.50`; sub-cent amounts keep their digits so a fresh pod's cost is not `$0.00`. */
export function usd(value: number): string {
  if (value > 0 && value < 0.01) return `$${value.toFixed(4)}`;
  return `$${value.toFixed(2)}`;
}

export function limit(ms: number | null): string {
  return ms === null ? 'none' : formatDuration(ms);
}

/**
 * Readiness progress: on a terminal one line rewritten in place; otherwise (logs, CI, cron) a
 * plain line each time what we wait for changes, never one per poll.
 */
export function progressPrinter(io: Pick<CliIo, 'stderr' | 'isTTY'>): {
  update(p: ReadinessProgress): void;
  done(): void;
} {
  let last = '';
  let drawn = false;
  return {
    update(p) {
      const what = `${p.status} — waiting for ${p.waitingFor}`;
      if (io.isTTY) {
        io.stderr.write(
          `\r\u001b[2K  [${formatDuration(p.elapsedMs)}] ${p.step === 'ready' ? `${p.status} — ready` : what}`,
        );
        drawn = true;
      } else if (what !== last) {
        line(
          io.stderr,
          `  [${formatDuration(p.elapsedMs)}] ${p.step === 'ready' ? `${p.status} — ready` : what}`,
        );
      }
      last = what;
    },
    done() {
      if (drawn) io.stderr.write('\n');
      drawn = false;
    },
  };
}
