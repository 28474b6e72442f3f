import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readTextIfExists, writePrivateFile } from '../shared/secret-file.js';

/**
 * Which runpod-llm installation (state directory) created a pod. Every pod carries it in its env
 * (`RUNPOD_LLM_INSTALL`, not a secret), so a watchdog that finds a `runpod-llm-*` pod its state
 * does not know can tell a pod it lost track of (its own install: an orphan it may reap) from a
 * pod of another machine on the same RunPod account (reported, never reaped).
 */
export const INSTALL_ENV = 'RUNPOD_LLM_INSTALL';
const INSTALL_FILE = 'install-id';

/**
 * This state directory's install id, created (0600) on first use.
 *
 * @example
 *   installId(home) // 'i-3f9a0c1d2b4e'
 */
export function installId(home: string): string {
  const path = join(home, INSTALL_FILE);
  const stored = readTextIfExists(path)?.trim();
  if (stored !== undefined && /^i-[0-9a-f]{12}$/.test(stored)) return stored;
  const id = `i-${randomBytes(6).toString('hex')}`;
  writePrivateFile(path, `${id}\n`);
  return id;
}

/** Whose a `runpod-llm-*` pod is, from its env: `ours`, `other` (another install), or `unknown` (no tag: older versions). */
export function podInstall(
  env: Readonly<Record<string, string>> | undefined,
  ours: string,
): 'ours' | 'other' | 'unknown' {
  const tag = env?.[INSTALL_ENV];
  if (tag === undefined || tag === '') return 'unknown';
  return tag === ours ? 'ours' : 'other';
}
