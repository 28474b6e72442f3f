import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorFromResponse, isNoCapacityDetail, redact, unavailableError } from '../../src/runpod/errors.js';
import { NO_CAPACITY_DETAIL } from '../../src/emulator/faults.js';

const KEY = 'rpa_SECRET_abcdefghijklmnop';
const answer = (status: number, detail: string, extra: Record<string, unknown> = {}) =>
  errorFromResponse(
    { status, body: JSON.stringify({ title: 't', status, detail, ...extra }), operation: 'GET /v2/pods' },
    [KEY],
  );

describe('RunPod error mapping', () => {
  const table: Array<[number, string, string]> = [
    [401, 'missing bearer token', 'RUNPOD_AUTH'],
    [403, 'access denied', 'RUNPOD_FORBIDDEN'],
    [400, NO_CAPACITY_DETAIL, 'RUNPOD_NO_CAPACITY'],
    [400, 'exactly one of gpu or cpu must be set', 'RUNPOD_BAD_REQUEST'],
    [422, 'Request validation failed.', 'RUNPOD_BAD_REQUEST'],
    [402, 'insufficient balance', 'RUNPOD_INSUFFICIENT_BALANCE'],
    [404, 'pod not found', 'RUNPOD_NOT_FOUND'],
    [409, 'action not valid', 'RUNPOD_CONFLICT'],
    [429, 'rate limit exceeded for the minute window', 'RUNPOD_RATE_LIMITED'],
    [500, 'internal server error', 'RUNPOD_UNAVAILABLE'],
    [503, 'unavailable', 'RUNPOD_UNAVAILABLE'],
    [418, 'teapot', 'RUNPOD_BAD_RESPONSE'],
  ];
  for (const [status, detail, code] of table) {
    it(`${status} "${detail.slice(0, 30)}" → ${code}, with a one-line message and a hint`, () => {
      const err = answer(status, detail);
      assert.equal(err.code, code);
      assert.equal(err.upstreamStatus, status);
      assert.ok(!err.message.includes('\n'));
      assert.ok((err.hint ?? '').length > 10);
    });
  }

  it('keeps the validation errors of a 422', () => {
    const err = answer(422, 'Request validation failed.', {
      errors: ["$: additional properties 'x' not allowed"],
    });
    assert.deepEqual(err.errors, ["$: additional properties 'x' not allowed"]);
    assert.match(err.message, /additional properties 'x'/);
  });

  it('reads a non-problem body (HTML from a proxy) without failing', () => {
    const err = errorFromResponse(
      { status: 502, body: '<html>502 Bad Gateway</html>', operation: 'GET /v2/pods' },
      [KEY],
    );
    assert.equal(err.code, 'RUNPOD_UNAVAILABLE');
  });

  it('recognises the observed no-capacity detail and close rewordings only', () => {
    assert.ok(isNoCapacityDetail(NO_CAPACITY_DETAIL));
    assert.ok(isNoCapacityDetail('No instances available for this GPU'));
    assert.ok(!isNoCapacityDetail('gpu count exceeds the maximum'));
  });

  it('never carries the key, even when the server or the network error quotes it', () => {
    const err = answer(400, `token ${KEY} is odd`, { errors: [`header Bearer ${KEY}`] });
    const net = unavailableError('GET /v2/pods', 'network', 1000, new Error(`connect failed for ${KEY}`), [
      KEY,
    ]);
    for (const e of [err, net]) {
      assert.ok(
        !`${e.message} ${e.hint} ${JSON.stringify(e)} ${String((e.cause as Error | undefined)?.message)}`.includes(
          KEY,
        ),
      );
    }
    assert.equal(redact(`Bearer ${KEY}`, []), 'Bearer [redacted]');
  });
});
