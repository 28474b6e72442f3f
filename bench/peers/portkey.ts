import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, type Managed, type ProcessSet, waitForHttp } from '../lib/procs.js';

/*
 * The Portkey gateway, installed on demand into a bench-local, git-ignored folder (never the
 * project's package.json) and started as it ships: `start-server.js --port=N`, no tuning.
 * The only addition is the Node 20 preload next to this file (streams fail without it).
 */

export const PORTKEY_VERSION = '1.15.2';
const PACKAGE = '@portkey-ai/gateway';

export function peersDir(): string {
  return fileURLToPath(new URL('../.peers/', import.meta.url));
}

/** Installs the pinned Portkey into bench/.peers when it is not there yet; returns an error text or undefined. */
export function ensurePortkey(log: (line: string) => void): string | undefined {
  const dir = peersDir();
  const installed = join(dir, 'node_modules', PACKAGE, 'package.json');
  if (
    existsSync(installed) &&
    (JSON.parse(readFileSync(installed, 'utf8')) as { version?: string }).version === PORTKEY_VERSION
  )
    return undefined;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: 'bench-peers', private: true, description: 'Peers the benchmark compares against; installed by bench/run.ts, git-ignored', dependencies: { [PACKAGE]: PORTKEY_VERSION } }, null, 2)}\n`,
  );
  log(`installing ${PACKAGE}@${PORTKEY_VERSION} into ${dir} (once)`);
  // --ignore-scripts: its only install script is patch-package for its own development.
  const r = spawnSync(
    'npm',
    ['install', '--prefix', dir, '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'],
    { encoding: 'utf8', timeout: 300_000 },
  );
  if (r.status !== 0)
    return `npm install ${PACKAGE}@${PORTKEY_VERSION} failed: ${(r.stderr || r.stdout || String(r.error ?? '')).trim().split('\n').slice(-3).join(' ')}`;
  return existsSync(installed) ? undefined : `npm install finished but ${installed} is missing`;
}

export async function startPortkey(
  procs: ProcessSet,
  opts: { tmp: string },
): Promise<{ proc: Managed; port: number }> {
  const dir = peersDir();
  const port = await freePort();
  const preload = fileURLToPath(new URL('./portkey-preload.mjs', import.meta.url));
  const proc = procs.spawn(
    'portkey',
    process.execPath,
    ['--import', preload, join('node_modules', PACKAGE, 'build', 'start-server.js'), `--port=${port}`],
    {
      cwd: dir,
      logFile: join(opts.tmp, 'portkey.out'),
    },
  );
  await waitForHttp(`http://127.0.0.1:${port}/`, 20_000, proc);
  return { proc, port };
}

/** Headers Portkey needs to forward to an OpenAI-compatible server at `upstreamBase` (ends in /v1). */
export function portkeyHeaders(upstreamBase: string, upstreamKey: string): Record<string, string> {
  return {
    'x-portkey-provider': 'openai',
    'x-portkey-custom-host': upstreamBase,
    authorization: `Bearer ${upstreamKey}`,
  };
}
