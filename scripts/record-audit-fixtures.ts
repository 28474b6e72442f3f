/**
 * Records the `npm audit --json` fixtures in test/fixtures/audit/ from real npm runs:
 * reports (clean, each severity, mixed) by npm against the offline advisory lists in
 * test/fixtures/audit/advisories/ (served on loopback), and npm's error outputs (this
 * machine's registry refusing with 405, a registry that is not there, a project without a
 * lockfile, and the clean-looking report npm prints in offline mode).
 *
 *   node --import tsx scripts/record-audit-fixtures.ts
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAdvisoryList, startAdvisoryServer } from '../src/security/advisory-server.js';
import { runCommand } from '../src/security/run-command.js';

const root = join(import.meta.dirname, '..');
const out = join(root, 'test/fixtures/audit');
const base = ['audit', '--json', '--loglevel=http', '--offline=false', '--audit=true', '--omit=dev'];

function save(name: string, stdout: string, stderr: string): void {
  writeFileSync(join(out, `${name}.json`), stdout.endsWith('\n') ? stdout : `${stdout}\n`);
  // The stderr keeps only npm's http and error lines (no local log paths).
  const lines = stderr
    .split('\n')
    .filter((l) => /^npm (http|warn audit|error)/.test(l) && !/complete log/.test(l));
  writeFileSync(join(out, `${name}.stderr.txt`), `${lines.join('\n')}\n`);
  console.log(`recorded ${name}`);
}

for (const file of readdirSync(join(out, 'advisories'))
  .filter((f) => f.endsWith('.json'))
  .sort()) {
  const server = await startAdvisoryServer(readAdvisoryList(join(out, 'advisories', file)));
  const cache = mkdtempSync(join(tmpdir(), 'audit-fixture-'));
  try {
    const r = await runCommand('npm', [...base, `--registry=${server.url}`, `--cache=${cache}`], {
      cwd: root,
    });
    save(file.replace(/\.json$/, ''), r.stdout, r.stderr.replaceAll(server.url, 'http://127.0.0.1:PORT/'));
  } finally {
    await server.close();
    rmSync(cache, { recursive: true, force: true });
  }
}

const registry = await runCommand('npm', base, { cwd: root });
save('error-registry-405', registry.stdout, registry.stderr);
const refused = await runCommand('npm', [...base, '--registry=http://127.0.0.1:1/'], { cwd: root });
save('error-connection-refused', refused.stdout, refused.stderr);
const bare = mkdtempSync(join(tmpdir(), 'audit-nolock-'));
writeFileSync(
  join(bare, 'package.json'),
  JSON.stringify({ name: 'no-lock', version: '1.0.0', dependencies: { 'left-pad': '^1.3.0' } }),
);
const nolock = await runCommand('npm', base, { cwd: bare });
save('error-no-lockfile', nolock.stdout, nolock.stderr);
rmSync(bare, { recursive: true, force: true });
const offline = await runCommand('npm', ['audit', '--json', '--loglevel=http', '--offline', '--omit=dev'], {
  cwd: root,
});
save('offline-unchecked', offline.stdout, offline.stderr);
