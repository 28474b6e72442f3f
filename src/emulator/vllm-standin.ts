import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  vllmCompletion,
  vllmEmbeddings,
  type GenerationPlan,
  planChat,
  planCompletion,
} from './vllm-generate.js';
import { ResponsesStore } from './vllm-responses.js';
import {
  chatPromptTokens,
  contextCheck,
  requestedMaxTokens,
  rerank,
  score,
  type VllmAnswer,
  WordTokenizer,
} from './vllm-routes.js';
import { scriptedToolTurn } from './vllm-tool-calls.js';

/*
 * A stand-in for the vLLM OpenAI server running on a pod (`vllm serve --api-key K`).
 *
 * It behaves like vLLM where our code can tell the difference:
 * - before the model is loaded nothing listens, and RunPod's proxy answers 502;
 * - `/health` is 200 with an empty body once up, 503 when the engine died;
 * - `--api-key` guards only paths under `/v1` (401 `{"error":"Unauthorized"}`), while vLLM's
 *   other routes (`/invocations`, `/tokenize`, `/pause`, `/metrics`, …) stay open, as in vLLM;
 * - chat/completions/embeddings answer in OpenAI shapes, streaming as SSE `data:` events ending
 *   with `data: [DONE]`, with a usage chunk when `stream_options.include_usage` is set;
 * - errors use vLLM's `{"object":"error","message","type","param","code"}`.
 *
 * Faults let tests provoke what real pods do: hang, die or stall mid-stream, answer slowly.
 */

/** How to start the stand-in. */
export interface VllmStandinOptions {
  /** Served model name (`--served-model-name`). */
  model: string;
  /** `--api-key`; when absent, /v1 is open as in vLLM without a key. */
  apiKey?: string;
  maxModelLen?: number;
  /** False: the server is still loading (answers 502 like RunPod's proxy). Default true. */
  loaded?: boolean;
  /** Pause between streamed chunks, ms (default 0). */
  chunkDelayMs?: number;
  /** Upper bound of generated tokens when the request sets no max_tokens (default 8). */
  chunks?: number;
  host?: string;
}

export type VllmFault =
  | { kind: 'none' }
  /** Accept the request and never answer. */
  | { kind: 'hang' }
  /** Wait before sending the response headers. */
  | { kind: 'delay'; ms: number }
  /**
   * Each answer takes `ms` to generate, as on a real GPU: a stream's events are spread over it
   * (bytes keep flowing), a non-streamed answer comes whole at the end (nothing before).
   */
  | { kind: 'generation_time'; ms: number }
  /** Send `afterChunks` SSE events, then destroy the socket. */
  | { kind: 'die_mid_stream'; afterChunks: number }
  /** Send `afterChunks` SSE events, then keep the connection open and silent. */
  | { kind: 'stall_mid_stream'; afterChunks: number }
  /** Answer every /v1 request with this status and body. */
  | { kind: 'status'; status: number; body: string; contentType?: string };

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export type ToolTurns = 'scripted' | 'generated';

export interface VllmStandinHandler {
  /** Serves one request; `path` is the path as the pod sees it (a prefix already removed). */
  handler(req: IncomingMessage, res: ServerResponse, path: string): void;
  setLoaded(loaded: boolean): void;
  setHealthy(healthy: boolean): void;
  setFault(fault: VllmFault): void;
  /**
   * How a chat with `tools` is answered: `scripted` (default) as a coding agent's model does,
   * one call of the read-like tool and, after the tool result, `Read N bytes.`; `generated`: the
   * generator's text followed by a call of each offered tool (at most two), with logprobs and
   * generation-time faults applied, for tests of how answers are assembled.
   */
  setToolTurns(mode: ToolTurns): void;
  /** Every request received, newest last (bounded to the last 1,000). */
  readonly requests: RecordedRequest[];
  /** Counts of requests whose client went away before the response ended. */
  readonly stats: { aborted: number; completed: number; inFlight: number };
}

export interface VllmStandin extends VllmStandinHandler {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Routes real vLLM serves without checking `--api-key` (vllm/entrypoints/openai/api_server.py). */
const OPEN_ROUTES = new Set([
  '/ping',
  '/version',
  '/load',
  '/metrics',
  '/tokenize',
  '/detokenize',
  '/invocations',
  '/pooling',
  '/classify',
  '/score',
  '/rerank',
  '/pause',
  '/resume',
  '/is_paused',
  '/update_weights',
  '/sleep',
  '/wake_up',
  '/is_sleeping',
  '/reset_prefix_cache',
  '/collective_rpc',
  '/server_info',
  '/start_profile',
  '/stop_profile',
  '/scale_elastic_ep',
]);

const MAX_RECORDED = 1000;

export function createVllmStandinHandler(options: VllmStandinOptions): VllmStandinHandler {
  let loaded = options.loaded ?? true;
  let healthy = true;
  let fault: VllmFault = { kind: 'none' };
  let toolTurns: ToolTurns = 'scripted';
  const requests: RecordedRequest[] = [];
  const stats = { aborted: 0, completed: 0, inFlight: 0 };
  const maxModelLen = options.maxModelLen ?? 8192;
  // --- vLLM's other routes (vllm-routes.ts) ---
  const responsesStore = new ResponsesStore();
  const tokenizer = new WordTokenizer();
  const send = (res: ServerResponse, answer: VllmAnswer): void => {
    if (answer.sse === undefined) return sendJson(res, answer.status, answer.json);
    res.writeHead(answer.status, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
    });
    for (const frame of answer.sse) res.write(frame);
    res.end();
  };
  /** vLLM's other routes under /v1; undefined: not one of them. */
  const v1Extra = (
    method: string,
    path: string,
    parsed: Record<string, unknown> | undefined,
    query?: URLSearchParams,
  ): VllmAnswer | undefined => {
    const id = /^\/v1\/responses\/([\w.-]+)(\/cancel)?$/.exec(path);
    if (id !== null && method === 'GET' && id[2] === undefined)
      return responsesStore.retrieve(id[1] as string, query);
    if (id !== null && method === 'POST' && id[2] !== undefined)
      return responsesStore.cancel(id[1] as string);
    if (parsed === undefined) return undefined;
    if (path === '/v1/responses') return responsesStore.create(parsed, options.model, maxModelLen);
    if (path === '/v1/rerank') return rerank(parsed, options.model);
    if (path === '/v1/score') return score(parsed, options.model);
    if (path === '/v1/chat/completions')
      return (
        contextCheck(chatPromptTokens(parsed), requestedMaxTokens(parsed), maxModelLen) ??
        (toolTurns === 'scripted' ? scriptedToolTurn(parsed, options.model) : undefined)
      );
    return undefined;
  };
  /** vLLM refuses a prompt over max_model_len before generating. */
  const overContext = (plan: GenerationPlan, parsed: Record<string, unknown>): VllmAnswer | undefined =>
    contextCheck(plan.promptTokens, requestedMaxTokens(parsed), maxModelLen);
  // --- end of vLLM's other routes ---

  function record(req: IncomingMessage, path: string, body: string): void {
    requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body });
    if (requests.length > MAX_RECORDED) requests.shift();
  }

  function handler(req: IncomingMessage, res: ServerResponse, path: string): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      record(req, path, body);
      stats.inFlight++;
      let counted = false;
      const done = (aborted: boolean): void => {
        if (counted) return;
        counted = true;
        stats.inFlight--;
        if (aborted) stats.aborted++;
        else stats.completed++;
      };
      res.on('finish', () => done(false));
      res.on('close', () => done(!res.writableFinished));
      route(req, res, path.split('?')[0] ?? path, body);
    });
  }

  function route(req: IncomingMessage, res: ServerResponse, path: string, body: string): void {
    if (!loaded) return sendText(res, 502, 'text/html', '<html><body>502 Bad Gateway</body></html>');
    if (path === '/health') {
      res.writeHead(healthy ? 200 : 503, { 'content-length': '0' });
      return void res.end();
    }
    if (OPEN_ROUTES.has(path)) return openRoute(res, path, body);
    if (!path.startsWith('/v1/')) return sendJson(res, 404, { detail: 'Not Found' });
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      return sendJson(res, 401, { error: 'Unauthorized' });
    }
    const current = fault;
    if (current.kind === 'hang') return;
    if (current.kind === 'status') {
      return sendText(res, current.status, current.contentType ?? 'application/json', current.body);
    }
    const answer = (): void => v1Route(req, res, path, body, current);
    if (current.kind === 'delay') setTimeout(answer, current.ms);
    else answer();
  }

  function v1Route(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    body: string,
    current: VllmFault,
  ): void {
    if (path === '/v1/models' && req.method === 'GET') {
      return sendJson(res, 200, {
        object: 'list',
        data: [
          {
            id: options.model,
            object: 'model',
            created: 1_700_000_000,
            owned_by: 'vllm',
            root: options.model,
            parent: null,
            max_model_len: maxModelLen,
          },
        ],
      });
    }
    if (path.startsWith('/v1/responses/'))
      return send(
        res,
        v1Extra(
          req.method ?? 'GET',
          path,
          undefined,
          new URL(req.url ?? '/', 'http://standin').searchParams,
        ) ?? {
          status: 405,
          json: { detail: 'Method Not Allowed' },
        },
      );
    if (req.method !== 'POST') return sendJson(res, 405, { detail: 'Method Not Allowed' });
    let parsed: Record<string, unknown>;
    try {
      const value: unknown = JSON.parse(body);
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new Error('not an object');
      parsed = value as Record<string, unknown>;
    } catch {
      return vllmError(res, 400, 'BadRequestError', 'Expecting value: line 1 column 1 (char 0)');
    }
    if (parsed.model !== undefined && parsed.model !== options.model) {
      return vllmError(
        res,
        404,
        'NotFoundError',
        `The model \`${typeof parsed.model === 'string' ? parsed.model : JSON.stringify(parsed.model)}\` does not exist.`,
        'model',
      );
    }
    const extra = v1Extra('POST', path, parsed);
    if (extra !== undefined) return send(res, extra);
    let plan: GenerationPlan | string;
    if (path === '/v1/chat/completions') plan = planChat(parsed, options.model, options.chunks ?? 8);
    else if (path === '/v1/completions') plan = planCompletion(parsed, options.model, options.chunks ?? 8);
    else if (path === '/v1/embeddings') {
      const result = vllmEmbeddings(parsed, options.model);
      return typeof result === 'string'
        ? vllmError(res, 400, 'BadRequestError', result)
        : sendJson(res, 200, result);
    } else return sendJson(res, 404, { detail: 'Not Found' });
    if (typeof plan === 'string') return vllmError(res, 400, 'BadRequestError', plan);
    const refused = overContext(plan, parsed);
    if (refused !== undefined) return send(res, refused);
    if (plan.stream) return streamPlan(res, plan, current);
    if (current.kind === 'generation_time') {
      setTimeout(() => void (res.destroyed || sendJson(res, 200, vllmCompletion(plan))), current.ms);
      return;
    }
    return sendJson(res, 200, vllmCompletion(plan));
  }

  function streamPlan(res: ServerResponse, plan: GenerationPlan, current: VllmFault): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const events = plan.events();
    let sent = 0;
    const delay =
      current.kind === 'generation_time'
        ? current.ms / Math.max(1, events.length)
        : (options.chunkDelayMs ?? 0);
    const next = (): void => {
      if (res.destroyed) return;
      if (
        (current.kind === 'die_mid_stream' || current.kind === 'stall_mid_stream') &&
        sent >= current.afterChunks
      ) {
        if (current.kind === 'die_mid_stream') res.socket?.destroy();
        return;
      }
      const event = events[sent];
      if (event === undefined) {
        res.end('data: [DONE]\n\n');
        return;
      }
      res.write(`data: ${JSON.stringify(event)}\n\n`);
      sent++;
      if (delay > 0) setTimeout(next, delay);
      else setImmediate(next);
    };
    next();
  }

  function openRoute(res: ServerResponse, path: string, body: string): void {
    switch (path) {
      case '/ping':
        return sendJson(res, 200, {});
      case '/version':
        return sendJson(res, 200, { version: '0.11.0' });
      case '/load':
        return sendJson(res, 200, { server_load: 0 });
      case '/metrics':
        return sendText(
          res,
          200,
          'text/plain; version=0.0.4',
          `vllm:num_requests_running{model_name="${options.model}"} 0.0\n`,
        );
      case '/tokenize':
      case '/detokenize':
      case '/rerank':
      case '/score': {
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(body) as Record<string, unknown>;
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
            throw new Error('not an object');
        } catch {
          return vllmError(res, 400, 'BadRequestError', 'invalid JSON');
        }
        if (path === '/tokenize') return send(res, tokenizer.tokenize(parsed, maxModelLen));
        if (path === '/detokenize') return send(res, tokenizer.detokenize(parsed));
        return send(res, path === '/rerank' ? rerank(parsed, options.model) : score(parsed, options.model));
      }
      case '/invocations': {
        // vLLM routes /invocations to the chat or completion handler by the body's shape.
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(body) as Record<string, unknown>;
        } catch {
          return vllmError(res, 400, 'BadRequestError', 'invalid JSON');
        }
        const plan = Array.isArray(parsed.messages)
          ? planChat(parsed, options.model, options.chunks ?? 8)
          : planCompletion(parsed, options.model, options.chunks ?? 8);
        if (typeof plan === 'string') return vllmError(res, 400, 'BadRequestError', plan);
        return sendJson(res, 200, vllmCompletion({ ...plan, stream: false }));
      }
      default:
        return sendJson(res, 200, {});
    }
  }

  return {
    handler,
    setLoaded: (value) => {
      loaded = value;
    },
    setHealthy: (value) => {
      healthy = value;
    },
    setFault: (value) => {
      fault = value;
    },
    setToolTurns: (mode) => {
      toolTurns = mode;
    },
    requests,
    stats,
  };
}

/**
 * Starts the stand-in on its own loopback port (port 0: the OS picks).
 *
 * @example
 *   const pod = await startVllmStandin({ model: 'qwen', apiKey: 'pod-key' });
 *   // ... fetch(`${pod.url}/v1/models`, { headers: { authorization: 'Bearer pod-key' } })
 *   await pod.close();
 */
export async function startVllmStandin(options: VllmStandinOptions): Promise<VllmStandin> {
  const standin = createVllmStandinHandler(options);
  const server: Server = createServer((req, res) => standin.handler(req, res, req.url ?? '/'));
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    ...standin,
    requests: standin.requests,
    stats: standin.stats,
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendText(res, status, 'application/json', JSON.stringify(value));
}

function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function vllmError(
  res: ServerResponse,
  status: number,
  type: string,
  message: string,
  param: string | null = null,
): void {
  sendJson(res, status, { object: 'error', message, type, param, code: status });
}
