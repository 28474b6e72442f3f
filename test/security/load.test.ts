import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { defaultConfig } from '../../src/config/schema.js';
import { startVllmStandin, type VllmStandin } from '../../src/emulator/vllm-standin.js';
import { buildApp, type GatewayApp } from '../../src/gateway/app.js';
import { staticRouteSource } from '../../src/gateway/upstream/route-source.js';
import { createLogger } from '../../src/shared/logger.js';

/*
 * Load on loopback (SECURITY.md "Attack battery"): concurrent streaming and non-streaming
 * clients, plus one client hammering without pause, for LOAD_TEST_SECONDS (default 60).
 * Passes when no answer is a 5xx (or anything but 200 and the abuser's 429), every stream ends
 * with [DONE], the logs hold neither key nor prompt, and the heap after garbage collection does
 * not grow from the first quarter to the end. Clients reach the gateway through a trusted proxy
 * address each (X-Forwarded-For), so the limiter keeps them apart as it would real users.
 */

const SECONDS = Number(process.env.LOAD_TEST_SECONDS ?? 60);
const POD_KEY = 'pod_load_key_0123456789abcdef';
const MODEL = 'load-model';
const PROMPT = 'LOAD-PROMPT-never-logged-4f1e';
const KEYS = Array.from({ length: 9 }, (_, i) => `gw_load_key_${i}_0123456789abcdef`);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A log sink that keeps counts, not text (a 60 s run would otherwise look like a leak). */
function countingSink() {
  const counts = { lines: 0, serverErrors: 0, leaks: 0 };
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString();
      counts.lines++;
      if (/"status":5\d\d/.test(text) || /"event":"server_error"/.test(text)) counts.serverErrors++;
      if ([PROMPT, POD_KEY, ...KEYS].some((s) => text.includes(s))) counts.leaks++;
      cb();
    },
  });
  return { stream, counts };
}

describe(`load: ${SECONDS} s of concurrent streaming and non-streaming clients on loopback`, () => {
  let pod: VllmStandin;
  let built: GatewayApp;
  let url: string;
  const sink = countingSink();

  before(async () => {
    pod = await startVllmStandin({ model: MODEL, apiKey: POD_KEY, chunkDelayMs: 5, chunks: 12 });
    built = await buildApp({
      config: defaultConfig({
        proxy_port: 0,
        rate_limit_requests: 40,
        key_rate_limit_requests: 40,
        rate_limit_window: 1,
        trusted_proxies: ['127.0.0.1'],
        health_probe_interval_ms: 60_000,
      }),
      logger: createLogger({ level: 'info', destination: sink.stream }),
      routes: staticRouteSource(`${pod.url}/v1`, POD_KEY, MODEL),
      keys: KEYS,
      probe: false,
    });
    await built.app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(built.app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await built.app.close();
    await pod.close();
  });

  it(
    'serves every client without a 5xx, with a stable heap',
    { timeout: (SECONDS + 60) * 1000 },
    async () => {
      const statuses = new Map<number, number>();
      const problems: string[] = [];
      const note = (status: number): void => void statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const deadline = Date.now() + SECONDS * 1000;
      const request = (client: number, body: Record<string, unknown>): Promise<Response> =>
        fetch(`${url}/v1/chat/completions`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${KEYS[client]}`,
            'content-type': 'application/json',
            'x-forwarded-for': `198.51.100.${client + 1}`,
          },
          body: JSON.stringify({
            model: MODEL,
            messages: [{ role: 'user', content: `${PROMPT} ${client}` }],
            ...body,
          }),
        });

      // Well-behaved clients pace themselves under the 40/s limit (at most 20 requests a second).
      const paced = async (client: number, stream: boolean): Promise<void> => {
        while (Date.now() < deadline) {
          const started = Date.now();
          const res = await request(client, stream ? { stream: true } : {});
          note(res.status);
          const text = await res.text();
          if (res.status !== 200) problems.push(`client ${client}: ${res.status} ${text.slice(0, 120)}`);
          else if (stream && (!text.includes('data: [DONE]') || text.includes('"error"')))
            problems.push(`client ${client}: a stream ended without [DONE]`);
          await sleep(Math.max(0, 50 - (Date.now() - started)));
        }
      };
      // One client that never pauses: it must meet 429s, never 5xx. It sends in bursts of twice
      // its window's limit, so it is over the limit however slowly the box answers each request.
      const abuser = async (): Promise<void> => {
        while (Date.now() < deadline) {
          const burst = await Promise.all(
            Array.from({ length: 80 }, async () => {
              const res = await request(8, {});
              await res.arrayBuffer();
              return res.status;
            }),
          );
          for (const status of burst) {
            note(status);
            if (status !== 200 && status !== 429) problems.push(`abuser: ${status}`);
          }
          if (burst.includes(429)) await sleep(5);
        }
      };

      const heap: number[] = [];
      const sampleHeap = (): void => {
        gc();
        heap.push(process.memoryUsage().heapUsed);
      };
      const sampler = (async () => {
        await sleep((SECONDS * 1000) / 4);
        sampleHeap();
        while (Date.now() < deadline - 1000) {
          await sleep(Math.min(5000, (SECONDS * 1000) / 8));
          sampleHeap();
        }
      })();

      await Promise.all([
        ...[0, 1, 2, 3].map((c) => paced(c, true)),
        ...[4, 5, 6, 7].map((c) => paced(c, false)),
        abuser(),
        sampler,
      ]);
      await sleep(200);
      sampleHeap();

      const total = [...statuses.values()].reduce((a, b) => a + b, 0);
      const fivexx = [...statuses].filter(([s]) => s >= 500).reduce((a, [, n]) => a + n, 0);
      console.log(
        `load: ${total} requests in ${SECONDS} s; statuses ${JSON.stringify(Object.fromEntries(statuses))}; heap after GC ${heap.map((h) => Math.round(h / 1048576)).join(' → ')} MiB`,
      );
      assert.equal(fivexx, 0, 'no 5xx');
      assert.deepEqual(problems.slice(0, 5), []);
      assert.ok((statuses.get(200) ?? 0) > SECONDS * 20, 'the well-behaved clients were served');
      assert.ok((statuses.get(429) ?? 0) > 0, 'the abuser was rate-limited');
      assert.equal(sink.counts.serverErrors, 0, 'no 5xx or server_error in the logs');
      assert.equal(sink.counts.leaks, 0, 'no key or prompt in the logs');
      // Stable: the heap at the end is within 32 MiB of the first-quarter sample.
      const first = heap[0] as number;
      const last = heap.at(-1) as number;
      assert.ok(
        last - first < 32 * 1024 * 1024,
        `heap grew from ${Math.round(first / 1048576)} to ${Math.round(last / 1048576)} MiB`,
      );
      assert.equal(pod.stats.inFlight, 0, 'no upstream request left behind');

      const final = await fetch(`${url}/v1/models`, {
        headers: { authorization: `Bearer ${KEYS[0]}`, 'x-forwarded-for': '198.51.100.200' },
      });
      assert.equal(final.status, 200, 'still serving');
      await final.arrayBuffer();
    },
  );
});
