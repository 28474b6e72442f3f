import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { GUARD_PY, rawRequest, type RunningGuard, startGuard } from './run-guard.js';

const KEY = 'vk_head_test_0123456789abcdef';

/**
 * The request head as the asyncio guard reads it (src/guard/guard.py): a whole head
 * within CLIENT_TIMEOUT (a slow-header trickle no longer holds a connection slot), and header
 * lines two parsers could read differently refused. CLIENT_TIMEOUT is set to 1 s for the test.
 */
describe('guard request heads', () => {
  let pod: VllmStandin;
  let guard: RunningGuard;

  before(async () => {
    pod = await startVllmStandin({ model: 'm', apiKey: KEY });
    const launch = `import sys\nsys.path.insert(0, ${JSON.stringify(dirname(GUARD_PY))})\nimport guard\nguard.CLIENT_TIMEOUT = 1\nsys.exit(guard.main())`;
    guard = await startGuard({ GUARD_UPSTREAM: pod.url, GUARD_API_KEY: KEY }, ['-c', launch]);
  });
  after(async () => {
    await guard.close();
    await pod.close();
  });

  it('closes a connection whose head trickles in for longer than the client timeout, though bytes keep coming', async () => {
    const socket = connect(guard.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let sent = 0;
    const head = 'GET /v1/models HTTP/1.1\r\nhost: pod\r\nx-slow: ' + 'a'.repeat(200);
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(head[sent++ % head.length] ?? 'a');
    }, 100);
    const outcome = await Promise.race([
      closed.then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still open'), 15_000)),
    ]);
    clearInterval(trickle);
    socket.destroy();
    assert.equal(outcome, 'closed', 'a head that never ends must not hold the connection');
    assert.ok(sent >= 5, `the trickle kept sending (${sent} bytes) until the guard closed`);
  });

  it('refuses obs-fold, a field without a colon and a space before the colon (400), and never asks vLLM', async () => {
    for (const field of ['x-a: 1\r\n  folded', 'no-colon-here', 'content-length : 5', '']) {
      const seen = pod.requests.length;
      const res = await rawRequest(
        guard.port,
        `GET /v1/models HTTP/1.1\r\nhost: pod\r\nconnection: close\r\nauthorization: Bearer ${KEY}\r\n${field}${field ? '\r\n' : ''}\r\n`,
      );
      if (field === '') {
        assert.equal(res.status, 200, 'the same request without the odd field passes');
        continue;
      }
      assert.equal(res.status, 400, JSON.stringify(field));
      assert.deepEqual(JSON.parse(res.body), { error: 'Bad Request' });
      assert.equal(pod.requests.length, seen, `${JSON.stringify(field)} reached the stand-in`);
    }
  });
});
