import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { shouldRetryHeader } from '../../src/gateway/errors.js';
import { ERROR_CODES, type ErrorCode, type ErrorCodeEntry, EXIT } from '../../src/shared/error-codes.js';
import { AppError, typeForStatus } from '../../src/shared/errors.js';

const REPO = join(import.meta.dirname, '..', '..');
const rows = Object.entries(ERROR_CODES) as Array<[ErrorCode, ErrorCodeEntry]>;
const exitNumbers = new Set<number>(Object.values(EXIT));

describe('error-code registry', () => {
  it('gives every code an exit code the CLI documents', () => {
    for (const [code, entry] of rows)
      assert.ok(exitNumbers.has(entry.exit), `${code}: exit ${entry.exit} is not one of EXIT`);
  });

  it('gives every code the gateway renders a status, an OpenAI type that fits it, and a code', () => {
    const rendered = rows.filter(([code, entry]) => code.startsWith('GW_') && entry.http !== undefined);
    assert.ok(rendered.length >= 25, `only ${rendered.length} gateway codes`);
    for (const [code, entry] of rows) {
      if (entry.http === undefined) {
        assert.equal(entry.openaiType, undefined, `${code}: a type without a status`);
        continue;
      }
      assert.ok(entry.http >= 400 && entry.http <= 599, `${code}: status ${entry.http}`);
      assert.equal(
        entry.openaiType,
        typeForStatus(entry.http),
        `${code}: type ${entry.openaiType} for ${entry.http}`,
      );
      assert.match(entry.openaiCode ?? '', /^[a-z][a-z_]*$/, `${code}: OpenAI code`);
    }
  });

  it('gives each OpenAI code one meaning (one row per client-visible code)', () => {
    const seen = new Map<string, ErrorCode>();
    for (const [code, entry] of rows) {
      if (entry.openaiCode === undefined) continue;
      assert.equal(
        seen.get(entry.openaiCode),
        undefined,
        `${code} and ${seen.get(entry.openaiCode)} both answer ${entry.openaiCode}`,
      );
      seen.set(entry.openaiCode, code);
    }
  });

  it('builds AppError from the registry: status, type, code', () => {
    const err = new AppError('GW_RATE_LIMITED', 'slow down');
    assert.deepEqual([err.status, err.type, err.apiCode], [429, 'rate_limit_error', 'rate_limit_exceeded']);
    const runpod = new AppError('RUNPOD_UNAVAILABLE', 'down');
    assert.deepEqual([runpod.status, runpod.type], [503, 'server_error']);
    const cli = new AppError('STATE_LOCKED', 'locked');
    assert.deepEqual([cli.status, cli.type], [500, 'server_error']);
  });

  it('maps codes to exit codes, CONFIG_TLS and GW_PORT_IN_USE to 8 (the regex table had them twice)', () => {
    const cases: Array<[ErrorCode, number]> = [
      ['CONFIG_INVALID', 2],
      ['CONFIG_TLS', 8],
      ['GW_PORT_IN_USE', 8],
      ['GW_START_FAILED', 8],
      ['CLI_USAGE_OUTPUT', 2],
      ['MISSING_NPM', 3],
      ['RUNPOD_AUTH', 4],
      ['RUNPOD_FORBIDDEN', 4],
      ['RUNPOD_NO_CAPACITY', 5],
      ['LIFECYCLE_POD_FAILED', 5],
      ['LIFECYCLE_READINESS_TIMEOUT', 6],
      ['STATE_CORRUPT', 7],
      ['SERVICE_MANAGER_FAILED', 8],
      ['CHECK_UNAVAILABLE_SBOM', 9],
      ['CHECK_FAILED_DOCTOR', 10],
      ['LIFECYCLE_INTERRUPTED', 130],
      ['GW_INTERNAL', 1],
    ];
    for (const [code, exit] of cases) assert.equal(exitCodeFor(new AppError(code, 'x')), exit, code);
    assert.equal(exitCodeFor(new TypeError('a bug')), 1);
  });

  it('drives x-should-retry from the registry', () => {
    assert.equal(shouldRetryHeader(503, 'model_waking'), 'true');
    assert.equal(shouldRetryHeader(504, 'upstream_proxy_timeout'), 'false');
    assert.equal(shouldRetryHeader(400, 'context_length_exceeded'), 'false');
    for (const [code, entry] of rows) {
      if (entry.retry === undefined || entry.http === undefined) continue;
      assert.equal(shouldRetryHeader(entry.http, entry.openaiCode), String(entry.retry), code);
    }
  });

  it("matches README's exit codes and the registry's own table", () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const section = /### Exit codes\n\n([\s\S]*?)\n\n/.exec(readme)?.[1];
    assert.ok(section !== undefined, 'README has an "Exit codes" section');
    const documented = [...section.matchAll(/(?:^|·)\s*(\d+) /g)].map((m) => Number(m[1]));
    assert.deepEqual(
      documented,
      [...exitNumbers].sort((a, b) => a - b),
    );
    const source = readFileSync(join(REPO, 'src/shared/error-codes.ts'), 'utf8');
    const table = [...source.matchAll(/^ \* \| (\d+) \|/gm)].map((m) => Number(m[1]));
    assert.deepEqual(
      table,
      [...exitNumbers].sort((a, b) => a - b),
    );
  });
});
