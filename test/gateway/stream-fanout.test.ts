import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { StreamFanout } from '../../src/gateway/upstream/stream-fanout.js';
import { staticRouteSource } from '../../src/gateway/upstream/route-source.js';
import { MODEL, POD_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const MB = 1024 * 1024;
/** A cacheable (temperature 0) streamed chat: its answer goes through the fan-out. */
const cacheable = (content: string) => ({
  model: MODEL,
  messages: [{ role: 'user', content }],
  temperature: 0,
  stream: true,
});

describe('cacheable streams: backpressure through the fan-out', () => {
  const cleanup: Array<() => unknown> = [];
  after(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });
  async function upstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(
      () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(resolve);
        }),
    );
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  async function gatewayFor(url: string, maxEntryBytes?: number): Promise<TestGateway> {
    const gw = await startTestGateway({
      pod: false,
      routes: staticRouteSource(`${url}/v1`, POD_KEY, MODEL),
      config: {
        rate_limit_requests: 100_000,
        ...(maxEntryBytes === undefined ? {} : { cache_max_entry_bytes: maxEntryBytes }),
      },
    });
    cleanup.push(() => gw.close());
    return gw;
  }
  const event = (size: number) =>
    Buffer.from(`data: ${JSON.stringify({ choices: [{ delta: { content: 'x'.repeat(size) } }] })}\n\n`);

  it('a client that reads slowly holds the upstream back: bytes read upstream stay bounded while it lags', async () => {
    let written = 0;
    let upstreamClosed = false;
    const url = await upstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = event(4000);
      const pump = (): void => {
        while (!upstreamClosed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      res.on('close', () => {
        upstreamClosed = true;
      });
      pump();
    });
    const gw = await gatewayFor(url);
    const controller = new AbortController();
    const res = await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: cacheable('slow reader'),
      signal: controller.signal,
    });
    assert.equal(res.headers.get('x-cache'), 'MISS', 'the stream may be stored: it goes through the fan-out');
    const reader = res.body!.getReader();
    let received = 0;
    let widest = 0;
    // The client takes a chunk every 10 ms; the upstream could write hundreds of MB meanwhile.
    for (let i = 0; i < 100; i++) {
      const { value } = await reader.read();
      received += value?.length ?? 0;
      widest = Math.max(widest, written - received);
      // Socket buffers on both legs plus the gateway's own (16 KiB per listener) — never the stream.
      assert.ok(
        written - received < 64 * MB,
        `the upstream got ${written} bytes ahead of a client that read ${received}`,
      );
      await sleep(10);
    }
    assert.ok(received > 0);
    controller.abort();
    for (let i = 0; i < 100 && !upstreamClosed; i++) await sleep(20);
    assert.ok(
      upstreamClosed,
      `the client leaving closed the upstream stream (it was at most ${widest} bytes ahead)`,
    );
  });

  it('a listener too far behind gets the error event and is cut off; the others continue to [DONE]', async () => {
    const total = 48 * MB;
    let go!: () => void;
    const released = new Promise<void>((resolve) => (go = resolve));
    let requests = 0;
    const url = await upstream((req, res) => {
      requests++;
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = event(16_000);
      res.write(chunk);
      let sent = chunk.length;
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end('data: [DONE]\n\n');
      };
      void released.then(pump);
    });
    const gw = await gatewayFor(url, 1 * MB);
    const body = cacheable('shared by two');
    const fast = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    assert.equal(fast.headers.get('x-cache'), 'MISS');
    // The second identical request joins the live stream; it then reads nothing at all.
    const stalled = await gw.api('/v1/chat/completions', { method: 'POST', json: body });
    assert.equal(stalled.headers.get('x-cache-coalesced'), '1');
    go();

    let fastBytes = 0;
    let tail = '';
    let sawError = false;
    for await (const chunk of fast.body as unknown as AsyncIterable<Uint8Array>) {
      fastBytes += chunk.length;
      const text = tail + Buffer.from(chunk).toString('latin1');
      if (text.includes('"error"')) sawError = true;
      tail = text.slice(-64);
    }
    assert.equal(sawError, false, 'the client that kept up got no error event');
    assert.match(tail, /data: \[DONE\]\n\n$/);
    assert.ok(fastBytes > total, `the client that kept up got the whole stream (${fastBytes} bytes)`);

    const late = await stalled.text();
    assert.ok(
      late.length < total / 2,
      `the stalled client was cut off (it had ${late.length} bytes), not fed the whole stream`,
    );
    assert.doesNotMatch(late, /\[DONE\]/);
    const last = late.trim().split('\n\n').at(-1) ?? '';
    const parsed = JSON.parse(last.replace(/^data: /, '')) as { error: { code: string; message: string } };
    assert.equal(parsed.error.code, 'client_too_slow');
    // Counted where operators look (the access line is written when the response closes).
    let metrics = '';
    for (let i = 0; i < 50 && !metrics.includes('event="slow_client"'); i++) {
      metrics = await (await gw.api('/metrics')).text();
      if (!metrics.includes('event="slow_client"')) await sleep(20);
    }
    assert.match(metrics, /^gateway_security_events_total\{event="slow_client"\} 1$/m);
    assert.equal(requests, 1, 'one upstream call for both');
    assert.equal(
      (await gw.cache!.store.stats()).entries,
      0,
      'a stream larger than the entry cap is not stored',
    );
  });
});

describe('StreamFanout', () => {
  function source() {
    const calls: string[] = [];
    return { calls, pause: () => calls.push('pause'), resume: () => calls.push('resume') };
  }
  const chunk = (n: number) => Buffer.alloc(n, 0x61);
  const options = (src: ReturnType<typeof source>) => ({
    maxBytes: 64,
    source: src,
    onAllGone: () => src.calls.push('gone'),
    cutOff: (atBoundary: boolean) => Buffer.from(`${atBoundary ? '' : '\n\n'}data: cut\n\n`),
    highWaterMark: 16,
  });

  it('a lone listener sets the pace: the upstream pauses while its buffer is full and resumes when it reads', async () => {
    const src = source();
    const fanout = new StreamFanout(options(src));
    const out = fanout.subscribe() as Readable;
    fanout.push(chunk(10));
    assert.deepEqual(src.calls, [], 'room left: keep reading');
    fanout.push(chunk(10));
    assert.deepEqual(src.calls, ['pause'], 'over its 16 bytes: paused');
    out.read();
    assert.deepEqual(src.calls, ['pause', 'resume']);
    fanout.finish(true);
    out.resume();
    await new Promise((resolve) => out.once('end', resolve));
    assert.equal(fanout.recorded()?.length, 20);
  });

  it('a listener more than maxBytes behind the newest chunk is cut off with the error event; the fast one continues', async () => {
    const src = source();
    const fanout = new StreamFanout(options(src));
    const fast = fanout.subscribe() as Readable;
    const slow = fanout.subscribe() as Readable;
    const got: Buffer[] = [];
    fast.on('data', (c: Buffer) => got.push(c));
    for (let i = 0; i < 10; i++) {
      fanout.push(chunk(10));
      await new Promise((resolve) => setImmediate(resolve));
    }
    fanout.finish(true);
    await new Promise((resolve) => fast.once('end', resolve));
    assert.equal(Buffer.concat(got).length, 100, 'the fast listener got everything');
    const rest: Buffer[] = [];
    for await (const c of slow) rest.push(c as Buffer);
    const text = Buffer.concat(rest).toString();
    assert.match(text, /data: cut\n\n$/);
    assert.ok(text.length < 100);
    assert.equal(fanout.recorded(), undefined, 'past maxBytes nothing is recorded');
    assert.ok(!src.calls.includes('gone'));
  });
});
