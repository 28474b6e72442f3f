import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../src/cli/program.js';
import { makeProject, REPO } from './fixture-project.js';

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
    const sink = (add: (s: string) => void) =>
      new Writable({
        write: (chunk: Buffer, _e, cb) => {
          add(chunk.toString());
          cb();
        },
      });
    const code = await runCli(argv, {
      stdout: sink((s) => {
        stdout += s;
      }),
      stderr: sink((s) => {
        stderr += s;
      }),
      env: {
        PATH: process.env.PATH,
        HOME: home,
        RUNPOD_LLM_HOME: home,
        npm_config_registry: 'http://127.0.0.1:1/',
        npm_config_cache: npmCache,
      },
      signal: new AbortController().signal,
      isTTY: false,
    });
    return { code, stdout, stderr };
  }

  it('sbom prints the CycloneDX document, or writes it and says where', async () => {
    const printed = await cli('security', 'sbom', '--project', REPO);
    assert.equal(printed.code, 0, printed.stderr);
    const bom = JSON.parse(printed.stdout) as {
      bomFormat: string;
      metadata: { supplier?: { name: string } };
    };
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.equal(bom.metadata.supplier?.name, 'runpod-llm-manager contributors');
    assert.doesNotMatch(printed.stderr, /warning/);
    const written = await cli('security', 'sbom', '--project', REPO, '--out', 'sbom.cdx.json', '--json');
    assert.equal(written.code, 0);
    const summary = JSON.parse(written.stdout) as { file: string; specVersion: string; components: number };
    assert.equal(summary.file, 'sbom.cdx.json');
    assert.ok(summary.components > 50);
    assert.equal(
      (JSON.parse(readFileSync(join(cwd, 'sbom.cdx.json'), 'utf8')) as { components: unknown[] }).components
        .length,
      summary.components,
    );
  });

  it("with no --project, sbom and licenses describe this tool's own package, whatever the working directory", async () => {
    // The working directory is an empty temporary one: no package.json here.
    const sbom = await cli('security', 'sbom');
    assert.equal(sbom.code, 0, sbom.stderr);
    const bom = JSON.parse(sbom.stdout) as {
      metadata: { component: { name: string; version: string } };
      components: unknown[];
    };
    const own = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
    };
    assert.deepEqual([bom.metadata.component.name, bom.metadata.component.version], [own.name, own.version]);
    assert.ok(bom.components.length > 50);
    const licenses = await cli('security', 'licenses', '--json');
    assert.equal(licenses.code, 0, licenses.stderr);
    assert.ok(
      (JSON.parse(licenses.stdout) as { packages: Array<{ name: string }> }).packages.some(
        (p) => p.name === 'fastify',
      ),
    );
  });

  it('--project DIR checks another project', async () => {
    const other = makeProject(
      { name: 'other-app', version: '2.0.0', author: 'Someone', dependencies: { a: '1' } },
      { a: { name: 'a', version: '1.0.0', license: 'MIT' } },
    );
    try {
      const res = await cli('security', 'licenses', '--project', other.dir, '--json');
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(
        (JSON.parse(res.stdout) as { packages: Array<{ name: string }> }).packages.map((p) => p.name),
        ['a'],
      );
    } finally {
      other.remove();
    }
  });

  it('sbom --out: a path the user typed is written anywhere, 0644 whatever the umask; an existing file only with --force', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'cli-security-out-'));
    const umask = process.umask(0o077);
    try {
      const target = join(outside, 'sbom.cdx.json');
      const first = await cli('security', 'sbom', '--out', target, '--json');
      assert.equal(first.code, 0, first.stderr);
      assert.equal((JSON.parse(first.stdout) as { file: string }).file, target);
      assert.equal(statSync(target).mode & 0o777, 0o644);
      assert.equal(
        (JSON.parse(readFileSync(target, 'utf8')) as { bomFormat: string }).bomFormat,
        'CycloneDX',
      );
      const relative = await cli('security', 'sbom', '--out', '../' + basename(outside) + '/rel.cdx.json');
      assert.equal(relative.code, 0, relative.stderr);
      assert.ok(existsSync(join(outside, 'rel.cdx.json')));

      writeFileSync(target, 'keep me');
      const again = await cli('security', 'sbom', '--out', target);
      assert.equal(again.code, 2);
      assert.equal(
        again.stderr,
        `error: refusing to write ${target}: it already exists\nfix: add --force to replace it, or choose another path\n`,
      );
      assert.equal(readFileSync(target, 'utf8'), 'keep me');
      const forced = await cli('security', 'sbom', '--out', target, '--force');
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(statSync(target).mode & 0o777, 0o644);
      assert.match(readFileSync(target, 'utf8'), /"bomFormat": "CycloneDX"/);
      assert.deepEqual(
        readdirSync(outside).filter((f) => f.endsWith('.tmp')),
        [],
      );
    } finally {
      process.umask(umask);
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('sbom --out never writes through a symbolic link, --force or not, and names a missing directory', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'cli-security-out-'));
    try {
      writeFileSync(join(outside, 'victim'), 'keep me');
      symlinkSync(join(outside, 'victim'), join(outside, 'link.json'));
      for (const force of [[], ['--force']]) {
        const res = await cli('security', 'sbom', '--out', join(outside, 'link.json'), ...force);
        assert.equal(res.code, 2, force.join(''));
        assert.match(
          res.stderr,
          /^error: refusing to write .*link\.json: it is a symbolic link \(never followed\)\nfix: /,
        );
        assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'keep me');
        assert.ok(lstatSync(join(outside, 'link.json')).isSymbolicLink());
      }
      const nowhere = await cli('security', 'sbom', '--out', join(outside, 'missing', 'x.json'));
      assert.equal(nowhere.code, 2);
      assert.match(nowhere.stderr, /its directory .*missing does not exist\nfix: create the directory first/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
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
    const found = await cli(
      'security',
      'scan',
      '--project',
      REPO,
      '--advisories',
      advisories('mixed'),
      '--level',
      'high',
    );
    assert.equal(found.code, 10);
    assert.match(found.stdout, /vulnerable package\(s\) at or above high/);
    assert.match(found.stdout, /critical fast-uri: Recorded test advisory/);
    assert.doesNotMatch(found.stdout, /moderate commander/);
    const clean = await cli('security', 'scan', '--project', REPO, '--advisories', advisories('clean'));
    assert.equal(clean.code, 0);
    assert.match(
      clean.stdout,
      /^audit: no known vulnerabilities at or above low \(\d+ production dependencies checked against the offline advisory list\)/,
    );
    const below = await cli(
      'security',
      'scan',
      '--project',
      REPO,
      '--advisories',
      advisories('low'),
      '--level',
      'moderate',
    );
    assert.equal(below.code, 0);
    assert.match(below.stdout, /1 below moderate/);
  });

  it('scan rejects an unknown severity (exit 2)', async () => {
    assert.equal((await cli('security', 'scan', '--level', 'severe')).code, 2);
  });

  it('licenses: this project passes the default policy; a narrower allow-list names each violation (exit 10)', async () => {
    const ok = await cli('security', 'licenses', '--project', REPO);
    assert.equal(ok.code, 0);
    assert.match(
      ok.stdout,
      /licenses: \d+ production packages: \d+ permissive, 0 weak copyleft, 0 strong copyleft, 0 unknown\npolicy: all allowed\n$/,
    );
    const strict = await cli('security', 'licenses', '--project', REPO, '--allow', 'MIT;ISC', '--json');
    assert.equal(strict.code, 10);
    const report = JSON.parse(strict.stdout) as { violations: Array<{ name: string; reason: string }> };
    assert.ok(report.violations.length > 0);
    for (const v of report.violations)
      assert.match(
        v.reason,
        /(Apache-2\.0|BSD-3-Clause|BlueOak-1\.0\.0|\(.*\)) is permissive, not in the allow-list/,
        v.name,
      );
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
    const file = JSON.parse(readFileSync(join(cwd, 'security-report.json'), 'utf8')) as {
      items: Array<{ id: string; status: string }>;
    };
    assert.equal(file.items.length, 11);
    const offline = await cli(
      'security',
      'report',
      '--project',
      REPO,
      '--advisories',
      advisories('clean'),
      '--out',
      'offline-report.json',
      '--json',
    );
    assert.equal(offline.code, 0, offline.stdout);
    assert.equal((JSON.parse(offline.stdout) as { summary: { fail: number } }).summary.fail, 0);
  });

  it("report with no --project: this tool's package, from any directory; the default file is replaced, an --out file is not", async () => {
    const first = await cli('security', 'report', '--advisories', advisories('clean'), '--json');
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const report = JSON.parse(first.stdout) as {
      project: { name: string };
      tool: { version: string };
      items: Array<{ id: string; status: string }>;
    };
    const own = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
    };
    assert.equal(report.project.name, own.name);
    assert.equal(report.tool.version, own.version);
    assert.deepEqual(
      report.items.filter((i) => i.id.startsWith('supply.')).map((i) => i.status),
      ['pass', 'pass', 'pass'],
    );
    const second = await cli('security', 'report', '--advisories', advisories('clean'));
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /wrote security-report\.json$/m);
    const kept = await cli(
      'security',
      'report',
      '--advisories',
      advisories('clean'),
      '--out',
      'offline-report.json',
    );
    assert.equal(kept.code, 2);
    assert.match(kept.stderr, /^error: refusing to write offline-report\.json: it already exists\n/);
  });
});
