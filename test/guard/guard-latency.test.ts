import assert from 'node:assert/strict';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  createVllmStandinHandler,
  startVllmStandin,
  type VllmStandin,
} from '../../src/emulator/vllm-standin.js';
import { staticRouteSource } from '../../src/gateway/upstream/route-source.js';
import { GATEWAY_KEY, MODEL, POD_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type RunningGuard, startGuard } from './run-guard.js';

/*
 * A reply written in pieces on a socket without TCP_NODELAY waits for the peer's
 * delayed ACK (40 ms on Linux) on every keep-alive request. Fifty sequential requests on one
 * connection then take at least 50 × 40 ms = 2 s; without the stall they take a few ms each.
 * Each request through the path under test is paired with one through its baseline (the same
 * path without the guard, on its own keep-alive connection, right after it), and the bound is on
 * the sum of what the guard added over the fastest 45 of the 50 pairs: half the stalled minimum.
 * A busy machine slows both paths alike and its worst moments are the 5 pairs left out, so noise
 * cannot make it flaky, while a stall on every request (or on more than 5 of them) cannot hide.
 */

const N = 50;
const KEPT = 45;
const BOUND_MS = (KEPT * 40) / 2;
const CHAT = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
const STREAM = JSON.stringify({
  model: MODEL,
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 4,
  stream: true,
});

interface Timed {
  status: number;
  /** ms from sending to the whole response (plain) or to its first body bytes (streamed). */
  ms: number;
  reused: boolean;
}

/** One request on `agent`; `firstBytes` stops the clock at the first body bytes. */
function timed(agent: Agent, url: string, key: string, body: string, firstBytes: boolean): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(
      url,
      {
        agent,
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
        },
      },
      (res) => {
        let ms = Number.NaN;
        res.on('data', () => {
          if (firstBytes && Number.isNaN(ms)) ms = performance.now() - started;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ms: firstBytes ? ms : performance.now() - started,
            reused: req.reusedSocket,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Path {
  url: string;
  key: string;
}

/**
 * N sequential requests on one keep-alive connection per path (after three warm-up ones each),
 * alternating between the path under test and its baseline; the sums of their times.
 */
async function sequential(
  tested: Path,
  baseline: Path,
  body: string,
  firstBytes: boolean,
): Promise<{ added: number; summary: string }> {
  const agents = [
    new Agent({ keepAlive: true, maxSockets: 1 }),
    new Agent({ keepAlive: true, maxSockets: 1 }),
  ] as const;
  const paths = [tested, baseline] as const;
  const sums = [0, 0];
  const pairs: number[] = [];
  try {
    for (let i = 0; i < 3; i++)
      for (const j of [0, 1] as const)
        assert.equal((await timed(agents[j], paths[j].url, paths[j].key, body, firstBytes)).status, 200);
    for (let i = 0; i < N; i++) {
      const ms = [0, 0];
      for (const j of [0, 1] as const) {
        const r = await timed(agents[j], paths[j].url, paths[j].key, body, firstBytes);
        assert.equal(r.status, 200);
        assert.equal(r.reused, true, 'every request after the first rides the same connection');
        assert.ok(Number.isFinite(r.ms), 'a body arrived');
        ms[j] = r.ms;
        sums[j] = (sums[j] ?? 0) + r.ms;
      }
      pairs.push((ms[0] ?? 0) - (ms[1] ?? 0));
    }
  } finally {
    for (const agent of agents) agent.destroy();
  }
  const [sum = 0, base = 0] = sums;
  const added = pairs
    .sort((a, b) => a - b)
    .slice(0, KEPT)
    .reduce((a, b) => a + b, 0);
  return {
    added,
    summary: `${N} ${firstBytes ? "streams' first bytes" : 'requests'}: ${sum.toFixed(0)} ms, without the guard ${base.toFixed(0)} ms; added over the fastest ${KEPT} pairs ${added.toFixed(0)} ms (bound ${BOUND_MS} ms)`,
  };
}

describe('no delayed-ACK stall on keep-alive connections', () => {
  let pod: VllmStandin;
  let guard: RunningGuard;
  let gw: TestGateway;
  let direct: TestGateway;

  before(async () => {
    pod = await startVllmStandin({ model: MODEL, apiKey: POD_KEY, chunkDelayMs: 0 });
    guard = await startGuard({ GUARD_UPSTREAM: pod.url, GUARD_API_KEY: POD_KEY });
    gw = await startTestGateway({
      pod: false,
      routes: staticRouteSource(`${guard.url}/v1`, POD_KEY, MODEL),
      config: { rate_limit_requests: 10_000 },
    });
    direct = await startTestGateway({
      pod: false,
      routes: staticRouteSource(`${pod.url}/v1`, POD_KEY, MODEL),
      config: { rate_limit_requests: 10_000 },
    });
  });
  after(async () => {
    await gw.close();
    await direct.close();
    await guard.close();
    await pod.close();
  });

  const chat = (origin: string): string => `${origin}/v1/chat/completions`;

  it(`guard: ${N} sequential plain requests, and ${N} streams' first bytes, add well under 40 ms each, in sum`, async (t) => {
    for (const [body, firstBytes] of [
      [CHAT, false],
      [STREAM, true],
    ] as const) {
      const r = await sequential(
        { url: chat(guard.url), key: POD_KEY },
        { url: chat(pod.url), key: POD_KEY },
        body,
        firstBytes,
      );
      t.diagnostic(r.summary);
      assert.ok(r.added < BOUND_MS, `${r.summary}: a delayed-ACK stall`);
    }
  });

  it(`gateway → guard: the same through the gateway, against the gateway → stand-in path`, async (t) => {
    for (const [body, firstBytes] of [
      [CHAT, false],
      [STREAM, true],
    ] as const) {
      const r = await sequential(
        { url: chat(gw.url), key: GATEWAY_KEY },
        { url: chat(direct.url), key: GATEWAY_KEY },
        body,
        firstBytes,
      );
      t.diagnostic(r.summary);
      assert.ok(r.added < BOUND_MS, `${r.summary}: a delayed-ACK stall`);
    }
  });
});

describe('the guard keeps its connection to vLLM for the requests of one client connection', () => {
  it('opens one upstream connection for ten keep-alive requests, and a new one per new client connection', async () => {
    const standin = createVllmStandinHandler({ model: MODEL, apiKey: POD_KEY });
    let accepted = 0;
    const server = createServer((req, res) => standin.handler(req, res, req.url ?? '/'));
    server.on('connection', () => accepted++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const guard = await startGuard({
      GUARD_UPSTREAM: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      GUARD_API_KEY: POD_KEY,
    });
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = 0; i < 10; i++)
        assert.equal(
          (
            await timed(
              agent,
              `${guard.url}/v1/chat/completions`,
              POD_KEY,
              i % 2 === 0 ? CHAT : STREAM,
              false,
            )
          ).status,
          200,
        );
      agent.destroy();
      assert.equal(accepted, 1);
      const other = new Agent({ keepAlive: true, maxSockets: 1 });
      assert.equal(
        (await timed(other, `${guard.url}/v1/chat/completions`, POD_KEY, CHAT, false)).status,
        200,
      );
      other.destroy();
      assert.equal(accepted, 2);
    } finally {
      await guard.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
