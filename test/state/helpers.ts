import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/shared/clock.js';
import { openState, type StateDb } from '../../src/state/db.js';

/** A fresh temp directory; `home` is a not-yet-existing subdirectory (openState creates it). */
export function tempHome(): { root: string; home: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'rlm-state-'));
  return { root, home: join(root, 'home'), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** An open state in a temp dir with a manual clock; `done()` closes and removes it. */
export function tempState(start = 1_700_000_000_000): {
  state: StateDb;
  clock: ManualClock;
  home: string;
  done: () => void;
} {
  const t = tempHome();
  const clock = new ManualClock(start);
  const state = openState({ home: t.home, clock });
  return {
    state,
    clock,
    home: t.home,
    done: () => {
      state.close();
      t.cleanup();
    },
  };
}
