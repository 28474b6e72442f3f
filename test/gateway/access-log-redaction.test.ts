import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  REDACT_PATHS,
  TOP_LEVEL_REDACT_PATHS,
  createLogger,
  flatLineLogger,
} from '../../src/shared/logger.js';

/** The access line's logger (flatLineLogger) redacts top-level paths only; its parent keeps every path. */
describe('access-line logger', () => {
  function capture() {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
    });
    return { logger, lines };
  }

  it('keeps every top-level path of REDACT_PATHS and no wildcard path', () => {
    assert.deepEqual(
      TOP_LEVEL_REDACT_PATHS,
      REDACT_PATHS.filter((p) => !p.includes('*')),
    );
    assert.ok(TOP_LEVEL_REDACT_PATHS.length > 0);
    for (const top of ['authorization', 'apiKey', 'api_key', 'key', 'token', 'password'])
      assert.ok(TOP_LEVEL_REDACT_PATHS.includes(top), top);
  });

  it('blanks top-level secrets in a flat line', () => {
    const { logger, lines } = capture();
    flatLineLogger(logger).info({
      msg: 'request',
      authorization: 'Bearer s1',
      key: 's2',
      token: 's3',
      apiKey: 's4',
      api_key: 's5',
      password: 's6',
      status: 200,
    });
    const line = lines[0] as Record<string, unknown>;
    for (const field of ['authorization', 'key', 'token', 'apiKey', 'api_key', 'password'])
      assert.equal(line[field], '[redacted]', field);
    assert.equal(line.status, 200);
    assert.equal(line.msg, 'request');
  });

  it('leaves the parent (security events, errors) with full redaction of nested paths', () => {
    const { logger, lines } = capture();
    flatLineLogger(logger);
    logger.warn(
      { event: 'x', upstream: { key: 'nested-secret', headers: { authorization: 'Bearer nested' } } },
      'security event',
    );
    const text = JSON.stringify(lines);
    assert.ok(!text.includes('nested-secret'));
    assert.ok(!text.includes('Bearer nested'));
  });
});
