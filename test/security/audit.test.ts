import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readAdvisoryList } from '../../src/security/advisory-server.js';
import { interpret, runAudit } from '../../src/security/audit.js';
import { parseAuditJson } from '../../src/security/audit-report.js';
import type { RunCommand } from '../../src/security/run-command.js';
import { isAppError } from '../../src/shared/errors.js';
import { REPO } from './fixture-project.js';

/*
 * SECURITY.md "Vulnerability audit". The fixtures in test/fixtures/audit/ are real `npm audit
 * --json` outputs recorded by scripts/record-audit-fixtures.ts: reports made by npm against the
 * offline advisory lists in advisories/, and npm's own errors (this machine's registry answering
 * 405, a registry that is not there, no lockfile, offline mode).
 */

const FIXTURES = join(REPO, 'test/fixtures/audit');
const fixture = (name: string): { stdout: string; stderr: string } => ({
  stdout: readFileSync(join(FIXTURES, `${name}.json`), 'utf8'),
  stderr: readFileSync(join(FIXTURES, `${name}.stderr.txt`), 'utf8'),
});
const judge = (name: string, level: Parameters<typeof interpret>[2] = 'low') => {
  const { stdout, stderr } = fixture(name);
  return interpret(stdout, stderr, level, 'advisory-file', /POST 200/.test(stderr), false);
};

describe('security scan: npm audit output', () => {
  it('a clean report that an advisory service answered is ok', () => {
    const outcome = judge('clean');
    assert.equal(outcome.status, 'ok');
    assert.ok(outcome.status === 'ok' && outcome.audited > 50 && outcome.report.counts.total === 0);
  });

  it('each severity is counted and compared with the threshold', () => {
    for (const severity of ['low', 'moderate', 'high', 'critical'] as const) {
      const outcome = judge(severity);
      assert.equal(outcome.status, 'vulnerable', severity);
      assert.ok(
        outcome.status === 'vulnerable' &&
          outcome.report.counts[severity] >= 1 &&
          outcome.failing.every((v) => v.severity === severity),
        severity,
      );
    }
    assert.equal(judge('info').status, 'ok', 'info is below the default threshold (low)');
    assert.equal(judge('info', 'info').status, 'vulnerable');
    assert.equal(judge('moderate', 'high').status, 'ok');
    assert.equal(judge('critical', 'critical').status, 'vulnerable');
  });

  it('reads advisories, transitive effects and fixes from a mixed report', () => {
    const outcome = judge('mixed', 'moderate');
    assert.ok(outcome.status === 'vulnerable');
    const uri = outcome.report.vulnerabilities.find((v) => v.name === 'fast-uri');
    assert.equal(uri?.severity, 'critical');
    assert.equal(
      uri?.advisories[0]?.title,
      'Recorded test advisory: critical issue in a transitive dependency',
    );
    assert.equal(uri?.advisories[0]?.range, '<99.0.0');
    assert.equal(uri?.advisories[0]?.cvss, 9.8);
    assert.deepEqual(uri?.advisories[0]?.cwe, ['CWE-20']);
    const fastify = outcome.report.vulnerabilities.find((v) => v.name === 'fastify');
    assert.ok(
      fastify !== undefined &&
        fastify.advisories.length === 0 &&
        fastify.via.includes('fast-uri') === false &&
        fastify.via.length > 0,
    );
    assert.equal(outcome.report.vulnerabilities[0]?.severity, 'critical', 'most severe first');
    assert.ok(outcome.failing.every((v) => ['moderate', 'high', 'critical'].includes(v.severity)));
    const metadata = (
      JSON.parse(fixture('mixed').stdout) as { metadata: { vulnerabilities: Record<string, number> } }
    ).metadata.vulnerabilities;
    assert.equal(outcome.report.counts.total, metadata.total);
  });

  it('npm errors are "audit unavailable" with npm\'s reason, never clean', () => {
    const cases: Array<[string, RegExp]> = [
      [
        'error-registry-405',
        /^405 Method Not Allowed - POST https:\/\/registry\.npmjs\.org\/-\/npm\/v1\/security\/advisories\/bulk$/,
      ],
      ['error-connection-refused', /ECONNREFUSED/],
      ['error-no-lockfile', /requires an existing lockfile/],
    ];
    for (const [name, reason] of cases) {
      const outcome = judge(name);
      assert.equal(outcome.status, 'unavailable', name);
      assert.match(outcome.status === 'unavailable' ? outcome.reason : '', reason, name);
    }
  });

  it("npm's clean-looking report from offline mode (no advisory request made) is unavailable", () => {
    const { stdout, stderr } = fixture('offline-unchecked');
    assert.equal(parseAuditJson(stdout).kind, 'report', 'npm does print a report');
    assert.doesNotMatch(stderr, /advisories\/bulk/);
    const outcome = interpret(stdout, stderr, 'low', 'registry', false, false);
    assert.equal(outcome.status, 'unavailable');
    assert.match(outcome.status === 'unavailable' ? outcome.reason : '', /asked no advisory service/);
  });

  it('garbage, empty output and old report versions are unavailable', () => {
    assert.equal(
      interpret('', 'npm error code E500\nnpm error something broke', 'low', 'registry', false, false).status,
      'unavailable',
    );
    assert.equal(interpret('<html>', '', 'low', 'registry', false, false).status, 'unavailable');
    const v1 = interpret('{"auditReportVersion":1,"advisories":{}}', '', 'low', 'registry', true, false);
    assert.match(v1.status === 'unavailable' ? v1.reason : '', /report version 1/);
  });
});

describe('security scan: running npm', () => {
  it('asks npm with offline off and audit on explicitly, production only by default', async () => {
    const calls: string[][] = [];
    const run: RunCommand = async (_file, args) => {
      calls.push([...args]);
      return { code: 1, ...fixture('error-registry-405') };
    };
    const outcome = await runAudit({ cwd: REPO, run });
    assert.equal(outcome.status, 'unavailable');
    assert.deepEqual(calls[0]?.slice(0, 6), [
      'audit',
      '--json',
      '--loglevel=http',
      '--offline=false',
      '--audit=true',
      '--omit=dev',
    ]);
    await runAudit({ cwd: REPO, run, dev: true });
    assert.ok(!calls[1]?.includes('--omit=dev'));
  });

  it('checks the real tree against an offline advisory list with npm itself', async () => {
    const vulnerable = await runAudit({
      cwd: REPO,
      advisoriesFile: join(FIXTURES, 'advisories/mixed.json'),
      level: 'high',
    });
    assert.equal(vulnerable.status, 'vulnerable');
    assert.ok(
      vulnerable.status === 'vulnerable' &&
        vulnerable.source === 'advisory-file' &&
        vulnerable.failing.some((v) => v.name === 'secure-json-parse' && v.severity === 'high'),
    );
    const clean = await runAudit({ cwd: REPO, advisoriesFile: join(FIXTURES, 'advisories/clean.json') });
    assert.equal(clean.status, 'ok', 'an advisory whose range misses the installed version does not match');
  });

  it('a registry that cannot be reached is unavailable (npm_config_registry from the environment)', async () => {
    const outcome = await runAudit({
      cwd: REPO,
      env: { ...process.env, npm_config_registry: 'http://127.0.0.1:1/' },
    });
    assert.equal(outcome.status, 'unavailable');
    assert.match(outcome.status === 'unavailable' ? outcome.reason : '', /ECONNREFUSED/);
  });

  it('refuses advisory lists that are not in the bulk format (exit 2)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'advisories-'));
    try {
      const cases: Array<[string, RegExp]> = [
        ['[]', /keyed by package name/],
        ['{"a": {}}', /array of advisories/],
        ['{"a": [{"severity": "high", "vulnerable_versions": "<1"}]}', /id is missing/],
        ['{"a": [{"id": 1, "severity": "severe", "vulnerable_versions": "<1"}]}', /severity must be one of/],
        ['{"a": [{"id": 1, "severity": "high"}]}', /vulnerable_versions/],
        ['not json', /cannot read/],
      ];
      for (const [text, why] of cases) {
        const file = join(dir, 'list.json');
        writeFileSync(file, text);
        assert.throws(
          () => readAdvisoryList(file),
          (err: unknown) => isAppError(err) && err.code === 'CLI_USAGE_ADVISORIES' && why.test(err.message),
          text,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
