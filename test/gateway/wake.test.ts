import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startVllmStandin } from '../../src/emulator/vllm-standin.js';
import { stateRouteSource } from '../../src/gateway/upstream/state-route-source.js';
import { stateWake } from '../../src/gateway/wake.js';
import { silentLogger } from '../../src/shared/logger.js';
import { openState } from '../../src/state/db.js';
import { upsertRoute } from '../../src/state/routes.js';
import { pendingWake } from '../../src/state/wake-requests.js';
import { chatBody, MODEL, POD_KEY } from '../helpers/gateway.js';

describe('wake on request', () => {
  const homes: string[] = [];
  after(() => {
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  });
  async function setup(waitMs: number) {
    const home = mkdtempSync(join(tmpdir(), 'gw-wake-'));
    homes.push(home);
    const manager = openState({ home });
    const { buildApp } = await import('../../src/gateway/app.js');
    const { defaultConfig } = await import('../../src/config/schema.js');
    const routes = stateRouteSource({ home, logger: silentLogger(), pollMs: 60_000 });
    const wake = stateWake(routes, { waitMs, pollMs: 50, logger: silentLogger(), now: () => Date.now() });
    const built = await buildApp({
      config: defaultConfig({ auth: 'none', wake_on_request: true }),
      logger: silentLogger(),
      routes,
      keys: [],
      probe: false,
      wake,
    });
    return { manager, app: built.app };
  }

  it('answers 503 model_waking with Retry-After, and a burst writes one wake request', async () => {
    const { manager, app } = await setup(0);
    try {
      const answers = await Promise.all(
        Array.from({ length: 5 }, () =>
          app.inject({ method: 'POST', url: '/v1/chat/completions', payload: chatBody() }),
        ),
      );
      for (const res of answers) {
        assert.equal(res.statusCode, 503);
        assert.equal(res.headers['retry-after'], '30');
        assert.equal(res.headers['x-should-retry'], 'true');
        assert.equal(res.json<{ error: { code: string } }>().error.code, 'model_waking');
      }
      assert.ok(pendingWake(manager) !== null);
      const rows = manager.sql.prepare('SELECT * FROM wake_requests').all();
      assert.equal(rows.length, 1, 'one wake for the burst');
    } finally {
      await app.close();
      manager.close();
    }
  });

  it('holds the request while the pod wakes, then serves it', async () => {
    const { manager, app } = await setup(5_000);
    const pod = await startVllmStandin({ model: MODEL, apiKey: POD_KEY });
    try {
      const pending = app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: chatBody('wake me'),
      });
      setTimeout(
        () =>
          upsertRoute(manager, {
            routeId: 'pod1',
            podId: 'pod1',
            baseUrl: `${pod.url}/v1`,
            apiKey: POD_KEY,
            model: MODEL,
            ready: true,
          }),
        300,
      );
      const res = await pending;
      assert.equal(res.statusCode, 200);
      assert.match(res.body, /You said: wake me/);
    } finally {
      await app.close();
      await pod.close();
      manager.close();
    }
  });
});
