import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { openState } from '../../src/state/db.js';
import { readUsage, recordUsageBatch, pruneRouteUsage } from '../../src/state/usage.js';
import { upsertRoute } from '../../src/state/routes.js';
import { tempState } from './helpers.js';

const writer = fileURLToPath(new URL('./fixtures/usage-writer.ts', import.meta.url));

function runWriter(home: string, batches: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, home, String(batches)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`writer exited ${code}: ${stderr}`)),
    );
  });
}

describe('usage', () => {
  it('starts empty', () => {
    const { state, done } = tempState();
    assert.deepEqual(readUsage(state), {
      total: { scope: '*', lastRequestAt: null, requests: 0, tokensIn: 0, tokensOut: 0 },
      byRoute: [],
    });
    done();
  });

  it('adds batches per route and to the total; the last request time only moves forward', () => {
    const { state, done } = tempState();
    recordUsageBatch(state, [
      { routeId: 'a', lastRequestAt: 2000, requests: 2, tokensIn: 10, tokensOut: 100 },
      { routeId: 'b', lastRequestAt: 1500, requests: 1, tokensIn: 5, tokensOut: 50 },
      { routeId: null, lastRequestAt: 2500, requests: 1, tokensIn: 0, tokensOut: 0 },
    ]);
    recordUsageBatch(state, [{ routeId: 'a', lastRequestAt: 1000, requests: 1, tokensIn: 1, tokensOut: 1 }]);
    const usage = readUsage(state);
    assert.deepEqual(usage.total, {
      scope: '*',
      lastRequestAt: 2500,
      requests: 5,
      tokensIn: 16,
      tokensOut: 151,
    });
    assert.deepEqual(usage.byRoute, [
      { scope: 'a', lastRequestAt: 2000, requests: 3, tokensIn: 11, tokensOut: 101 },
      { scope: 'b', lastRequestAt: 1500, requests: 1, tokensIn: 5, tokensOut: 50 },
    ]);
    done();
  });

  it('rejects negative or fractional values without writing anything', () => {
    const { state, done } = tempState();
    assert.throws(
      () =>
        recordUsageBatch(state, [
          { routeId: 'a', lastRequestAt: 1, requests: 1, tokensIn: 1, tokensOut: 1 },
          { routeId: 'a', lastRequestAt: 1, requests: -1, tokensIn: 0, tokensOut: 0 },
        ]),
      TypeError,
    );
    assert.equal(readUsage(state).total.requests, 0);
    done();
  });

  it('prunes rows of routes that no longer exist, keeping the total', () => {
    const { state, done } = tempState();
    upsertRoute(state, { routeId: 'a', podId: null, baseUrl: 'http://a/v1', apiKey: 'k', model: 'm' });
    recordUsageBatch(state, [
      { routeId: 'a', lastRequestAt: 1, requests: 1, tokensIn: 0, tokensOut: 0 },
      { routeId: 'gone', lastRequestAt: 2, requests: 1, tokensIn: 0, tokensOut: 0 },
    ]);
    pruneRouteUsage(state);
    const usage = readUsage(state);
    assert.deepEqual(
      usage.byRoute.map((r) => r.scope),
      ['a'],
    );
    assert.equal(usage.total.requests, 2);
    done();
  });

  it('loses no increment when several processes write batches at once', async () => {
    const { home, done } = tempState(); // creates and migrates the state first
    const batches = 150;
    await Promise.all([runWriter(home, batches), runWriter(home, batches), runWriter(home, batches)]);
    // A fresh handle sees the other processes' commits.
    const reader = openState({ home, readonly: true });
    const usage = readUsage(reader);
    assert.equal(usage.total.requests, 3 * batches);
    assert.equal(usage.total.tokensOut, 3 * batches * 7);
    assert.equal(usage.byRoute.find((r) => r.scope === 'shared')?.requests, 3 * batches);
    reader.close();
    done();
  });
});
