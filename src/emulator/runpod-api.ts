import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { CloudSchema, PodActionRequestSchema } from '../runpod/schemas.js';
import type { PodLedger } from './billing.js';
import { FaultRequestSchema, type Faults } from './faults.js';
import { toApiCpuType, type EmulatorCpu } from './cpu-catalog.js';
import { toApiGpuType, type EmulatorGpu } from './gpu-catalog.js';
import type { PodStore } from './pods.js';
import { ProblemError, sendJson, sendProblem, validationProblem as validation } from './problem.js';
import { RateWindows } from './rate-windows.js';

/*
 * The RunPod REST v2 API subset this tool uses, as an HTTP handler: `/v2/pods` (list, create),
 * `/v2/pods/{id}` (get, delete), `/v2/pods/{id}/action`, `/v2/catalog/gpus`,
 * `/v2/billing/pods`, plus the emulator's admin route `/_emulator/faults`. Bodies and statuses
 * follow openapi-v2.json (tests validate them against its schemas); errors are problem+json.
 */

/** What the API handler works on. */
export interface RunPodApiDeps {
  store: PodStore;
  faults: Faults;
  apiKey: string;
  clock: Clock;
  catalog: readonly EmulatorGpu[];
  cpuCatalog: readonly EmulatorCpu[];
  ledger: PodLedger;
  /** Answer 429 when the spec's example quotas are exceeded (headers are always sent). */
  enforceRateLimit: boolean;
  logger: Logger;
  /** Pending slow-fault timers, cleared on close. */
  timers: Set<NodeJS.Timeout>;
}

type Reply = { status: number; body?: unknown };

const MAX_BODY = 1024 * 1024;
const POD_PATH = /^\/v2\/pods\/([^/]+)(\/action|\/logs)?$/;

export function createRunPodApiHandler(
  deps: RunPodApiDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  const limits = new RateWindows(deps.clock);
  const keyDigest = sha256(deps.apiKey);

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const auth = req.headers.authorization;
    if (auth === undefined || !/^Bearer\s+\S/i.test(auth)) {
      return sendProblem(res, new ProblemError(401, 'missing bearer token'));
    }
    const token = auth.replace(/^Bearer\s+/i, '');
    const scopedPod = timingSafeEqual(sha256(token), keyDigest) ? undefined : deps.store.podForKey(token);
    if (!timingSafeEqual(sha256(token), keyDigest) && scopedPod === undefined) {
      return sendProblem(res, new ProblemError(401, 'invalid bearer token'));
    }
    // A pod-scoped key (RUNPOD_API_KEY inside a pod) reaches its own pod only: read it, stop it.
    if (scopedPod !== undefined) {
      const own = `/v2/pods/${scopedPod.id}`;
      const stop = method === 'POST' && path === `${own}/action`;
      if (!((method === 'GET' && path === own) || (stop && deps.faults.settings.podKeyCanStop))) {
        return sendProblem(
          res,
          new ProblemError(403, 'this pod-scoped API key cannot access the requested resource'),
        );
      }
    }
    const admin = path.startsWith('/_emulator/');
    if (!admin) limits.hit();
    const headers = admin ? {} : limits.headers();
    const limited = admin
      ? undefined
      : (deps.faults.takeRateLimit() ?? (deps.enforceRateLimit ? limits.exceeded() : undefined));
    if (limited !== undefined) {
      // The burst used up the minute window: the headers say so, as RunPod's would.
      const burst = {
        ...headers,
        RateLimit: headers.RateLimit?.replace(/^"minute";r=\d+;t=\d+/, `"minute";r=0;t=${limited}`) ?? '',
      };
      const problem = new ProblemError(429, 'rate limit exceeded for the minute window', {
        headers: { 'Retry-After': String(limited) },
      });
      return sendProblem(res, problem, burst);
    }
    if (!admin && method === 'GET' && /^\/v2\/pods\/[^/]+\/logs$/.test(path))
      return streamLogs(res, path, url.searchParams, headers);

    readBody(req)
      .then(async (text) => {
        // A slow create: the pod comes to exist only after the wait, whether or not the client still listens.
        const hold = !admin && method === 'POST' && path === '/v2/pods' ? deps.faults.takeSlowCreate() : 0;
        if (hold > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              deps.timers.delete(timer);
              resolve();
            }, hold);
            deps.timers.add(timer);
          });
        }
        let reply: Reply | ProblemError;
        try {
          reply = route(method, path, url.searchParams, text);
        } catch (err) {
          if (!(err instanceof ProblemError))
            deps.logger.error({ err, method, path }, 'emulator route failed');
          reply = err instanceof ProblemError ? err : new ProblemError(500, 'internal server error');
        }
        const send = (): void => {
          if (res.destroyed) return;
          if (reply instanceof ProblemError) return sendProblem(res, reply, headers);
          if (reply.body === undefined) {
            res.writeHead(reply.status, headers);
            return void res.end();
          }
          sendJson(res, reply.status, reply.body, headers);
        };
        // Slow answers are delayed after the work is done, as a timed-out create on RunPod may
        // still have created the pod.
        const delay = admin ? 0 : deps.faults.takeSlow(method, path);
        if (delay === 0) return send();
        const timer = setTimeout(() => {
          deps.timers.delete(timer);
          send();
        }, delay);
        deps.timers.add(timer);
      })
      .catch((err: unknown) =>
        sendProblem(
          res,
          err instanceof ProblemError ? err : new ProblemError(400, 'could not read the request body'),
          headers,
        ),
      );
  };

  function route(method: string, path: string, query: URLSearchParams, text: string): Reply {
    const { store } = deps;
    if (path === '/v2/pods') {
      if (method === 'GET')
        return {
          status: 200,
          body: { pods: [...store.list().map((p) => store.view(p)), ...store.foreignList()] },
        };
      if (method === 'POST') return { status: 201, body: store.view(store.create(json(text))) };
      throw notAllowed('GET, POST');
    }
    const pod = POD_PATH.exec(path);
    if (pod !== null) {
      const id = decodeURIComponent(pod[1] ?? '');
      if (pod[2] === '/logs') throw notAllowed('GET');
      const foreign = store.foreign(id);
      if (foreign !== undefined) {
        // Another tool's pod: answered, and every attempt to act on it recorded for the tests.
        if (method === 'GET' && pod[2] === undefined) return { status: 200, body: foreign };
        store.recordForeignAction(id, pod[2] === undefined ? method : foreignAction(text));
        return method === 'DELETE' ? { status: 204 } : { status: 200, body: foreign };
      }
      if (pod[2] !== undefined) {
        if (method !== 'POST') throw notAllowed('POST');
        const body = PodActionRequestSchema.safeParse(json(text));
        if (!body.success) throw validation(body.error);
        const updated = store.action(id, body.data.action);
        return updated === null ? { status: 204 } : { status: 200, body: store.view(updated) };
      }
      if (method === 'GET') return { status: 200, body: store.view(store.get(id)) };
      if (method === 'DELETE') {
        store.terminate(id);
        return { status: 204 };
      }
      throw notAllowed('GET, DELETE');
    }
    if (path === '/v2/catalog/gpus') {
      if (method !== 'GET') throw notAllowed('GET');
      return { status: 200, body: { gpus: catalog(query) } };
    }
    if (path === '/v2/catalog/cpus') {
      if (method !== 'GET') throw notAllowed('GET');
      const include = query.get('include');
      if (include !== null && include !== 'AVAILABILITY')
        throw new ProblemError(422, 'Request validation failed.', {
          errors: ['include: must be one of [AVAILABILITY]'],
        });
      if (include !== null && query.get('product') === null)
        throw new ProblemError(400, 'product is required with include=AVAILABILITY');
      return { status: 200, body: { cpus: deps.cpuCatalog.map((c) => toApiCpuType(c, include !== null)) } };
    }
    if (path === '/v2/billing/pods') {
      if (method !== 'GET') throw notAllowed('GET');
      return { status: 200, body: billing(query) };
    }
    if (path === '/_emulator/faults') return faultsRoute(method, text);
    throw new ProblemError(404, 'resource not found');
  }

  /**
   * `GET /v2/pods/{id}/logs`: Server-Sent Events, one `{ts,source,line}` per event with the
   * timestamp as the event id (the spec's `<ts>/<seq>` form). Backfill per `tail`/`since`, then
   * new lines as the pod produces them, until the client goes away.
   */
  function streamLogs(
    res: ServerResponse,
    path: string,
    query: URLSearchParams,
    headers: Record<string, string>,
  ): void {
    const id = decodeURIComponent(path.split('/')[3] ?? '');
    const source = query.get('source');
    const tailText = query.get('tail');
    const sinceText = query.get('since');
    const errors: string[] = [];
    if (source !== null && source !== 'container' && source !== 'system')
      errors.push('source: must be one of [container, system]');
    const tail = tailText === null ? 100 : Number(tailText);
    if (!Number.isInteger(tail) || tail < 0 || tail > 5000)
      errors.push('tail: must be an integer in 0..5000');
    const sinceMs = sinceText === null ? undefined : Date.parse(sinceText);
    if (sinceMs !== undefined && Number.isNaN(sinceMs)) errors.push('since: must be an RFC 3339 date-time');
    if (errors.length > 0)
      return sendProblem(res, new ProblemError(422, 'Request validation failed.', { errors }), headers);
    if (deps.store.foreign(id) !== undefined)
      return sendProblem(res, new ProblemError(403, 'pod not accessible'), headers);
    const filter = { ...(source === null ? {} : { source: source as 'container' | 'system' }) };
    let lines;
    try {
      lines = deps.store.logs(id, { ...filter, tail, ...(sinceMs === undefined ? {} : { sinceMs }) });
    } catch (err) {
      return sendProblem(
        res,
        err instanceof ProblemError ? err : new ProblemError(500, 'internal server error'),
        headers,
      );
    }
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders(); // an empty backfill must still answer at once
    let seq = 0;
    let sent = 0;
    const write = (l: { ts: number; source: string; line: string }): void => {
      seq += 1;
      const ts = new Date(l.ts).toISOString().replace('.000Z', 'Z');
      res.write(
        `id: ${ts}/${String(seq).padStart(12, '0')}\ndata: ${JSON.stringify({ ts, source: l.source, line: l.line })}\n\n`,
      );
    };
    for (const l of lines) write(l);
    // Follow: lines appended after the backfill, by position in the pod's (bounded) log.
    const all = (): Array<{ ts: number; source: string; line: string }> => {
      try {
        return deps.store.logs(id, { ...filter, sinceMs: 0 });
      } catch {
        return [];
      }
    };
    sent = all().length;
    const timer = setInterval(() => {
      const now = all();
      for (const l of now.slice(sent)) write(l);
      sent = now.length;
    }, LOG_POLL_MS);
    deps.timers.add(timer);
    res.on('close', () => {
      clearInterval(timer);
      deps.timers.delete(timer);
    });
  }

  function catalog(query: URLSearchParams): unknown[] {
    const include = query.get('include');
    const product = query.get('product');
    const availabilityParams = ['cloud', 'count'].filter((p) => query.has(p));
    if (include !== null && include.split(',').some((v) => v !== 'AVAILABILITY')) {
      throw new ProblemError(422, 'Request validation failed.', {
        errors: [`include: must be one of [AVAILABILITY]`],
      });
    }
    const withAvailability = include !== null;
    if (withAvailability && product === null)
      throw new ProblemError(400, 'product is required with include=AVAILABILITY');
    if (!withAvailability && (product !== null || availabilityParams.length > 0)) {
      throw new ProblemError(
        400,
        `${[...(product === null ? [] : ['product']), ...availabilityParams].join(', ')} valid only with include=AVAILABILITY`,
      );
    }
    const cloud = CloudSchema.safeParse(query.get('cloud') ?? 'SECURE');
    const count = z.coerce
      .number()
      .int()
      .min(1)
      .safeParse(query.get('count') ?? '1');
    if (!cloud.success)
      throw new ProblemError(422, 'Request validation failed.', {
        errors: ['cloud: must be one of [SECURE, COMMUNITY]'],
      });
    if (!count.success)
      throw new ProblemError(422, 'Request validation failed.', {
        errors: ['count: must be an integer >= 1'],
      });
    return deps.catalog.map((gpu) =>
      toApiGpuType(gpu, { includeAvailability: withAvailability, cloud: cloud.data, count: count.data }),
    );
  }

  function billing(query: URLSearchParams): unknown {
    const bucket = query.get('bucketSize') ?? 'day';
    if (!['hour', 'day', 'week', 'month', 'year'].includes(bucket)) {
      throw new ProblemError(422, 'Request validation failed.', {
        errors: ['bucketSize: must be one of [hour, day, week, month, year]'],
      });
    }
    if (bucket !== 'hour' && bucket !== 'day')
      throw new ProblemError(400, `bucketSize ${bucket} is not supported by the emulator (use hour or day)`);
    const time = (name: string): number | undefined => {
      const value = query.get(name);
      if (value === null) return undefined;
      const ms = Date.parse(value);
      if (Number.isNaN(ms))
        throw new ProblemError(422, 'Request validation failed.', {
          errors: [`${name}: must be an RFC 3339 date-time`],
        });
      return ms;
    };
    const startMs = time('startTime');
    const endMs = time('endTime');
    const podId = query.get('podId');
    deps.store.list(); // bills every live pod up to now
    return deps.ledger.report({
      bucketSize: bucket,
      now: deps.clock.now(),
      ...(podId === null ? {} : { podId }),
      ...(startMs === undefined ? {} : { startMs }),
      ...(endMs === undefined ? {} : { endMs }),
    });
  }

  function faultsRoute(method: string, text: string): Reply {
    if (method === 'GET') return { status: 200, body: deps.faults.settings };
    if (method === 'DELETE') {
      deps.faults.reset();
      return { status: 204 };
    }
    if (method !== 'POST') throw notAllowed('GET, POST, DELETE');
    const parsed = FaultRequestSchema.safeParse(json(text));
    if (!parsed.success) throw validation(parsed.error);
    const { reset, podDies, podHealth, podCrash, foreignPods, ...settings } = parsed.data;
    if (reset === true) deps.faults.reset();
    deps.faults.set(dropUndefined(settings));
    if (podDies !== undefined) deps.store.kill(podDies.podId, podDies.status);
    if (podCrash !== undefined) deps.store.crash(podCrash.podId, podCrash.loop ?? false);
    if (foreignPods !== undefined) deps.store.addForeign(foreignPods);
    if (podHealth !== undefined) {
      const pod = deps.store.get(podHealth.podId);
      if (pod.standin === undefined)
        throw new ProblemError(409, `pod ${pod.id} has no running vLLM (status ${pod.status})`);
      pod.standin.setHealthy(podHealth.healthy);
    }
    return { status: 200, body: deps.faults.settings };
  }
}

/** Live-stream interval for new log lines while a logs request stays open (wall time). */
const LOG_POLL_MS = 250;

/** The action a request on a foreign pod asked for, whatever its body (recorded, never applied). */
function foreignAction(text: string): string {
  try {
    return String((JSON.parse(text) as { action?: unknown }).action);
  } catch {
    return 'unparseable action';
  }
}

function json(text: string): unknown {
  if (text.trim() === '') throw new ProblemError(400, 'request body is required');
  try {
    return JSON.parse(text);
  } catch {
    throw new ProblemError(400, 'request body is not valid JSON');
  }
}

function notAllowed(allow: string): ProblemError {
  return new ProblemError(405, 'The requested method is not allowed for this path.', {
    headers: { Allow: allow },
  });
}

function dropUndefined<T extends object>(value: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new ProblemError(413, 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
