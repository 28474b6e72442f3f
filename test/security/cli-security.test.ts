import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../src/cli/program.js';
import { REPO } from './fixture-project.js';

/**
 * `runpod-llm security …` through the real command line, on this project: each command's exit
 * codes (0 clean, 2 usage, 9 could not run, 10 found problems), its text and its --json.
 * Runs in a temporary working directory (outputs must stay inside it) and never asks the real
 * registry: npm_config_registry points at a closed port, or an offline list is used.
 */
describe('runpod-llm security', () => {
  let cwd: string;
  let home: string;
  let npmCache: string;
  const previous = process.cwd();
  const advisories = (name: string): string => join(REPO, 'test/fixtures/audit/advisories', `${name}.json`);
  before(() => {
    cwd = mkdtempSync(join(tmpdir(), 'cli-security-'));
    home = mkdtempSync(join(tmpdir(), 'cli-security-home-'));
    npmCache = mkdtempSync(join(tmpdir(), 'cli-security-npm-'));
    chmodSync(home, 0o700);
    process.chdir(cwd);
  });
  after(() => {
    process.chdir(previous);
    rmSync(cwd, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
    rmSync(npmCache, { recursive: true, force: true });
  });

  async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const sink = (add: (s: string) => void) => new Writable({ write: (chunk: Buffer, _e, cb) => { add(chunk.toString()); cb(); } });
    const code = await runCli(argv, {
      stdout: sink((s) => { stdout += s; }),
      stderr: sink((s) => { stderr += s; }),
      env: { PATH: process.env.PATH, HOME: home, RUNPOD_LLM_HOME: home, npm_config_registry: 'http://127.0.0.1:1/', npm_config_cache: npmCache },
      signal: new AbortController().signal,
      isTTY: false,
    });
    return { code, stdout, stderr };
  }

  it('sbom prints the CycloneDX document, or writes it and says where', async () => {
    const printed = await cli('security', 'sbom', '--project', REPO);
    assert.equal(printed.code, 0, printed.stderr);
    const bom = JSON.parse(printed.stdout) as { bomFormat: string; metadata: { supplier?: { name: string } } };
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.equal(bom.metadata.supplier?.name, 'runpod-llm-manager contributors');
    assert.doesNotMatch(printed.stderr, /warning/);
    const written = await cli('security', 'sbom', '--project', REPO, '--out', 'sbom.cdx.json', '--json');
    assert.equal(written.code, 0);
    const summary = JSON.parse(written.stdout) as { file: string; specVersion: string; components: number };
    assert.equal(summary.file, 'sbom.cdx.json');
    assert.ok(summary.components > 50);
    assert.equal((JSON.parse(readFileSync(join(cwd, 'sbom.cdx.json'), 'utf8')) as { components: unknown[] }).components.length, summary.components);
  });

  it('sbom refuses an output outside the working directory (exit 2) unless --force', async () => {
    const refused = await cli('security', 'sbom', '--project', REPO, '--out', '../escaped.cdx.json');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^error: refusing to write \.\.\/escaped\.cdx\.json: it is outside the current directory\nfix: /);
    assert.equal(existsSync(join(cwd, '..', 'escaped.cdx.json')), false);
  });

  it('sbom of a directory without package.json exits 9', async () => {
    const res = await cli('security', 'sbom', '--project', home);
    assert.equal(res.code, 9);
    assert.match(res.stderr, /no package\.json/);
  });

  it('scan: an unreachable registry is "audit unavailable" (exit 9), never clean', async () => {
    const res = await cli('security', 'scan', '--project', REPO);
    assert.equal(res.code, 9);
    assert.match(res.stderr, /^audit unavailable: .*ECONNREFUSED/);
    assert.equal(res.stdout, '');
    const json = await cli('security', 'scan', '--project', REPO, '--json');
    assert.equal((JSON.parse(json.stdout) as { status: string }).status, 'unavailable');
  });

  it('scan against an offline list: findings at or above --level exit 10, none exit 0', async () => {
    const found = await cli('security', 'scan', '--project', REPO, '--advisories', advisories('mixed'), '--level', 'high');
    assert.equal(found.code, 10);
    assert.match(found.stdout, /vulnerable package\(s\) at or above high/);
    assert.match(found.stdout, /critical fast-uri: Recorded test advisory/);
    assert.doesNotMatch(found.stdout, /moderate commander/);
    const clean = await cli('security', 'scan', '--project', REPO, '--advisories', advisories('clean'));
    assert.equal(clean.code, 0);
    assert.match(clean.stdout, /^audit: no known vulnerabilities at or above low \(\d+ production dependencies checked against the offline advisory list\)/);
    const below = await cli('security', 'scan', '--project', REPO, '--advisories', advisories('low'), '--level', 'moderate');
    assert.equal(below.code, 0);
    assert.match(below.stdout, /1 below moderate/);
  });

  it('scan rejects an unknown severity (exit 2)', async () => {
    assert.equal((await cli('security', 'scan', '--level', 'severe')).code, 2);
  });

  it('licenses: this project passes the default policy; a narrower allow-list names each violation (exit 10)', async () => {
    const ok = await cli('security', 'licenses', '--project', REPO);
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /licenses: \d+ production packages: \d+ permissive, 0 weak copyleft, 0 strong copyleft, 0 unknown\npolicy: all allowed\n$/);
    const strict = await cli('security', 'licenses', '--project', REPO, '--allow', 'MIT;ISC', '--json');
    assert.equal(strict.code, 10);
    const report = JSON.parse(strict.stdout) as { violations: Array<{ name: string; reason: string }> };
    assert.ok(report.violations.length > 0);
    for (const v of report.violations) assert.match(v.reason, /(Apache-2\.0|BSD-3-Clause|BlueOak-1\.0\.0|\(.*\)) is permissive, not in the allow-list/, v.name);
  });

  it('report writes security-report.json and prints one line per check; the unavailable audit makes it exit 9', async () => {
    const res = await cli('security', 'report', '--project', REPO);
    assert.equal(res.code, 9, res.stdout + res.stderr);
    assert.match(res.stdout, /^(PASS|WARN)\s+supply\.sbom /m);
    assert.match(res.stdout, /^N\/A\s+supply\.audit\s+audit unavailable: /m);
    assert.match(res.stdout, /^PASS\s+gateway\.auth /m);
    assert.match(res.stdout, /^SKIP\s+gateway\.no_runpod_key\s+gateway not running/m);
    assert.match(res.stdout, /^SKIP\s+pod\.closed_routes\s+no pod running/m);
    assert.match(res.stdout, /wrote security-report\.json$/m);
    const file = JSON.parse(readFileSync(join(cwd, 'security-report.json'), 'utf8')) as { items: Array<{ id: string; status: string }> };
    assert.equal(file.items.length, 11);
    const offline = await cli('security', 'report', '--project', REPO, '--advisories', advisories('clean'), '--out', 'offline-report.json', '--json');
    assert.equal(offline.code, 0, offline.stdout);
    assert.equal((JSON.parse(offline.stdout) as { summary: { fail: number } }).summary.fail, 0);
  });
});
