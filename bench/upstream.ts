/**
 * The upstream stand-in for the benchmarks: an OpenAI-compatible chat endpoint on plain
 * `node:http`, as cheap as we can make it, because it shares the machine's two cores with the
 * load generator and the proxy under test.
 *
 * Behaviour is chosen per request by the model name, the one field every proxy forwards untouched
 * (headers are filtered by our gateway and rewritten by Portkey; unknown body fields may be
 * dropped): `bench-d20` answers after 20 ms; `bench-d0-n64-p20` streams 64 deltas 20 ms apart.
 * Missing parts take the defaults given on the command line.
 *
 *   node --import tsx bench/upstream.ts --port 0 --key secret   # prints "listening <port>"
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export interface Behaviour {
  delayMs: number;
  chunks: number;
  paceMs: number;
}

const MODEL = /"model"\s*:\s*"([^"]*)"/;
const STREAM = /"stream"\s*:\s*true/;

/** Reads `d<ms>`, `n<count>`, `p<ms>` parts of a model name such as `bench-d20-n64-p20`. */
export function behaviourFor(model: string, defaults: Behaviour): Behaviour {
  const out = { ...defaults };
  for (const part of model.split('-')) {
    const m = /^([dnp])(\d+)$/.exec(part);
    if (m === null) continue;
    const value = Number(m[2]);
    if (m[1] === 'd') out.delayMs = value;
    else if (m[1] === 'n') out.chunks = Math.max(1, value);
    else out.paceMs = value;
  }
  return out;
}

function completionBody(model: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      id: 'chatcmpl-bench',
      object: 'chat.completion',
      created: 1_764_000_000,
      model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello! This is a short benchmark answer.' },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 },
    }),
  );
}

function deltaEvent(model: string, i: number): Buffer {
  const delta = i === 0 ? { role: 'assistant', content: 'tok' } : { content: ` tok${i}` };
  return Buffer.from(
    `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_764_000_000, model, choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`,
  );
}

function finalEvents(model: string, chunks: number): Buffer {
  const last = {
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: 1_764_000_000,
    model,
    choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
    usage: { prompt_tokens: 12, completion_tokens: chunks, total_tokens: 12 + chunks },
  };
  return Buffer.from(`data: ${JSON.stringify(last)}\n\ndata: [DONE]\n\n`);
}

export interface UpstreamOptions {
  defaults: Behaviour;
  /** When set, requests must carry `Authorization: Bearer <key>` (as vLLM's --api-key). */
  key?: string;
}

/** The request handler; exported so a test could drive it without a socket. */
export function createHandler(options: UpstreamOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const expectedAuth = options.key === undefined ? undefined : `Bearer ${options.key}`;
  // Bodies are rebuilt per model name only once: the stand-in must cost almost nothing.
  const bodies = new Map<string, Buffer>();
  const cached = (key: string, make: () => Buffer): Buffer => {
    let buf = bodies.get(key);
    if (buf === undefined) {
      buf = make();
      if (bodies.size < 1_000) bodies.set(key, buf);
    }
    return buf;
  };

  return function handle(req, res) {
    const path = req.url ?? '/';
    if (req.method === 'GET' && (path === '/health' || path === '/')) {
      res.writeHead(200, { 'content-length': '0' }).end();
      return;
    }
    if (expectedAuth !== undefined && req.headers.authorization !== expectedAuth) {
      res
        .writeHead(401, { 'content-type': 'application/json' })
        .end('{"object":"error","message":"bad key","type":"invalid_request_error","code":401}');
      return;
    }
    if (req.method === 'GET' && path.endsWith('/models')) {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end('{"object":"list","data":[{"id":"bench","object":"model","owned_by":"bench"}]}');
      return;
    }
    if (req.method !== 'POST' || !path.endsWith('/chat/completions')) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"object":"error","message":"not found"}');
      return;
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      const model = MODEL.exec(text)?.[1] ?? 'bench';
      const b = behaviourFor(model, options.defaults);
      if (STREAM.test(text)) return stream(res, model, b, cached);
      const body = cached(`c:${model}`, () => completionBody(model));
      const send = () =>
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
      if (b.delayMs > 0) setTimeout(send, b.delayMs);
      else send();
    });
  };
}

function stream(
  res: ServerResponse,
  model: string,
  b: Behaviour,
  cached: (key: string, make: () => Buffer) => Buffer,
): void {
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  res.on('close', () => {
    closed = true;
    if (timer !== undefined) clearTimeout(timer);
  });
  const start = performance.now() + b.delayMs;
  let i = 0;
  const tick = (): void => {
    if (closed) return;
    if (i === 0) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const event = cached(`e:${model}:${i}`, () => deltaEvent(model, i));
    i++;
    if (i >= b.chunks) {
      // The final usage event and [DONE] ride with the last delta, so a stream has exactly
      // `chunks` timed events and `chunks - 1` gaps of `pace` each.
      res.end(Buffer.concat([event, cached(`f:${model}`, () => finalEvents(model, b.chunks))]));
      return;
    }
    res.write(event);
    // Scheduled against the stream's start, not the previous tick, so timer lateness does not
    // accumulate into the pace the clients measure.
    timer = setTimeout(tick, Math.max(0, start + i * b.paceMs - performance.now()));
  };
  timer = setTimeout(tick, b.delayMs);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      key: { type: 'string' },
      delay: { type: 'string', default: '0' },
      chunks: { type: 'string', default: '64' },
      pace: { type: 'string', default: '20' },
      'exit-with-stdin': { type: 'boolean', default: false },
    },
  });
  const defaults = {
    delayMs: Number(values.delay),
    chunks: Number(values.chunks),
    paceMs: Number(values.pace),
  };
  const server = createServer(
    { noDelay: true, keepAliveTimeout: 65_000 },
    createHandler({ defaults, ...(values.key === undefined ? {} : { key: values.key }) }),
  );
  // Thousands of held streams: no per-request or header timeout may cut them.
  server.requestTimeout = 0;
  server.maxConnections = 100_000;
  server.listen(Number(values.port), values.host, () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
  // --exit-with-stdin: the harness owns this process; when its stdin pipe closes (harness gone, even by SIGKILL),
  // stop instead of lingering as an orphan.
  if (values['exit-with-stdin']) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
