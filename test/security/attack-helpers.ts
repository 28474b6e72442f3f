import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { GATEWAY_KEY, POD_KEY, type TestGateway } from '../helpers/gateway.js';

/*
 * Shared tools of the attack battery: raw sockets (for what HTTP clients refuse to send), a
 * tolerant HTTP/1.1 response reader, and the three checks every attack ends with — the
 * answer is an OpenAI error envelope, the gateway still serves, and the logs hold no secret
 * and no prompt text. SECURITY.md names these tests as the proof of its sections.
 */

/** An HTTP/1.1 response as read off a raw socket. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Everything received, as latin1. */
  raw: string;
  /** The server closed the connection (before our timeout). */
  closed: boolean;
  ms: number;
}

export interface RawOptions {
  timeoutMs?: number;
  host?: string;
  /** Written one after another, `gapMs` apart (slow clients). */
  gapMs?: number;
  /** Resolve as soon as one complete response arrived instead of waiting for the close. */
  firstResponse?: boolean;
}

/** Sends bytes on a fresh TCP connection and collects the answer until close or timeout. */
export function rawRequest(
  port: number,
  data: string | Buffer | Array<string | Buffer>,
  options: RawOptions = {},
): Promise<RawResponse> {
  const parts = Array.isArray(data) ? data : [data];
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect(port, options.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks).toString('latin1');
      resolve({ ...parseResponse(raw), raw, closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 5000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (options.firstResponse === true && parseResponse(Buffer.concat(chunks).toString('latin1')).complete)
        finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined);
    void (async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0 && options.gapMs !== undefined) await sleep(options.gapMs);
        if (socket.destroyed) return;
        socket.write(part);
      }
    })();
  });
}

/** Reads the first response in `raw`: status, lower-cased headers, body (Content-Length or chunked). */
export function parseResponse(raw: string): {
  status: number;
  headers: Record<string, string>;
  body: string;
  complete: boolean;
} {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: '', complete: false };
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const colon = l.indexOf(':');
    if (colon > 0) headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
  }
  let rest = raw.slice(end + 4);
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    return {
      status,
      headers,
      body: Buffer.from(rest, 'latin1').subarray(0, length).toString('utf8'),
      complete: Buffer.byteLength(rest, 'latin1') >= length,
    };
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    let body = '';
    for (;;) {
      const lineEnd = rest.indexOf('\r\n');
      if (lineEnd < 0) return { status, headers, body, complete: false };
      const size = Number.parseInt(rest.slice(0, lineEnd), 16);
      if (size === 0)
        return { status, headers, body: Buffer.from(body, 'latin1').toString('utf8'), complete: true };
      body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
      rest = rest.slice(lineEnd + 4 + size);
    }
  }
  return { status, headers, body: Buffer.from(rest, 'latin1').toString('utf8'), complete: false };
}

export interface Envelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** The body is exactly OpenAI's error envelope (four fields), optionally with this code. */
export function assertEnvelope(body: string, code?: string | RegExp): Envelope {
  let value: Envelope;
  try {
    value = JSON.parse(body) as Envelope;
  } catch {
    assert.fail(`not a JSON envelope: ${JSON.stringify(body.slice(0, 200))}`);
  }
  assert.deepEqual(Object.keys(value), ['error']);
  assert.deepEqual(Object.keys(value.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof value.error.message, 'string');
  assert.equal(typeof value.error.type, 'string');
  if (typeof code === 'string') assert.equal(value.error.code, code);
  else if (code !== undefined) assert.match(String(value.error.code), code);
  return value;
}

/** A raw answer: status, envelope, and the security headers every answer carries. */
export function assertRawRefusal(res: RawResponse, status: number, code?: string | RegExp): Envelope {
  assert.equal(res.status, status, `expected ${status}, got: ${JSON.stringify(res.raw.slice(0, 300))}`);
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.equal(res.headers['x-frame-options'], 'DENY');
  assert.match(res.headers['content-type'] ?? '', /^application\/json/);
  return assertEnvelope(res.body, code);
}

/** The gateway still answers a health check and a real chat completion. */
export async function assertServing(gw: TestGateway): Promise<void> {
  const health = await fetch(`${gw.url}/health`);
  assert.equal(health.status, 200);
  await health.arrayBuffer();
}

export async function assertStillForwarding(gw: TestGateway): Promise<void> {
  const res = await gw.api('/v1/chat/completions', {
    method: 'POST',
    json: { model: 'test-model', messages: [{ role: 'user', content: 'still there?' }] },
  });
  assert.equal(res.status, 200, await res.clone().text());
  await res.arrayBuffer();
}

/** Neither key, nor any of `secrets` (prompt markers, guessed keys), appears in any log line. */
export function assertLogsClean(gw: TestGateway, secrets: readonly string[] = []): void {
  const text = gw.logs.text();
  for (const secret of [GATEWAY_KEY, POD_KEY, ...secrets])
    assert.ok(!text.includes(secret), `the logs contain ${JSON.stringify(secret.slice(0, 40))}`);
  // Every line is one JSON object: nothing an attacker sent split or forged a line.
  for (const line of text.split('\n').filter(Boolean)) JSON.parse(line);
}

/** A prompt marker: unique text that must never reach a log. */
export function marker(name: string): string {
  return `PROMPT-${name}-${Math.random().toString(36).slice(2, 10)}`;
}

export const AUTH = `Authorization: Bearer ${GATEWAY_KEY}\r\n`;

/** The security event lines logged so far. */
export function securityEvents(gw: TestGateway): Array<Record<string, unknown>> {
  return gw.logs.lines().filter((l) => l.msg === 'security event');
}
