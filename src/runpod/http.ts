import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { errorFromResponse, unavailableError } from './errors.js';

/*
 * One RunPod HTTP exchange with the retry policy RunPod's docs give for v2 (createPod's
 * "Which failures are worth retrying" table): 429 → wait `Retry-After`, then retry; 5xx and
 * no-answer → retry with bounded exponential backoff and jitter; every other 4xx → fail now.
 * Whether a 5xx may be retried is the caller's choice: a create that failed may still have
 * created the pod (docs/runpod-contract.md), so creates pass `retryUncertain: false`.
 */

/** Waits; injected so tests run in simulated time. */
export type Sleep = (ms: number) => Promise<void>;

export interface TransportOptions {
  baseUrl: string;
  apiKey: string;
  fetch: typeof globalThis.fetch;
  clock: Clock;
  sleep: Sleep;
  /** Retries after the first attempt. */
  retries: number;
  timeoutMs: number;
  /** A 429 asking to wait longer than this fails at once (the caller decides, not a silent hang). */
  maxRetryAfterMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  random: () => number;
  logger: Logger;
}

export interface CallOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** Retry 5xx and no-answer failures (the request may have been applied). */
  retryUncertain: boolean;
  /** Set to true once an attempt failed in a way that may have been applied. */
  uncertain?: { value: boolean };
}

export interface RawResponse {
  status: number;
  text: string;
  operation: string;
}

export interface Transport {
  call(method: string, path: string, options: CallOptions): Promise<RawResponse>;
  /** The delay before retry number `attempt` (0-based), jittered. */
  readonly backoffMs: (attempt: number) => number;
  readonly secrets: readonly string[];
  readonly options: TransportOptions;
}

/**
 * The wait an IETF `RateLimit` header asks for: the longest `t` (seconds to reset) among windows
 * with nothing remaining (`r=0`), or undefined when every window has room. Structured-field list,
 * e.g. `"minute";r=0;t=12, "hour";r=2950;t=3000`.
 */
export function rateLimitWaitMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  let wait: number | undefined;
  for (const member of header.split(',')) {
    const params = new Map(
      member
        .split(';')
        .slice(1)
        .map((p) => p.trim().split('=') as [string, string]),
    );
    const r = Number(params.get('r'));
    const t = Number(params.get('t'));
    if (params.has('r') && r <= 0 && Number.isFinite(t) && t >= 0) wait = Math.max(wait ?? 0, t * 1000);
  }
  return wait;
}

export function createTransport(options: TransportOptions): Transport {
  const secrets = [options.apiKey];
  // Set when RunPod's RateLimit header said a window is used up: no request before this time.
  let notBefore = 0;

  function backoffMs(attempt: number): number {
    const ceiling = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** attempt);
    // "Equal jitter": never less than half the step, so retries stay spaced out while several
    // managers that failed together do not retry in lockstep.
    return Math.round(ceiling / 2 + options.random() * (ceiling / 2));
  }

  /** Retry-After is delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
  function retryAfterMs(value: string | null): number | undefined {
    if (value === null || value.trim() === '') return undefined;
    if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
    const date = Date.parse(value);
    return Number.isNaN(date) ? undefined : Math.max(0, date - options.clock.now());
  }

  async function once(
    method: string,
    url: URL,
    operation: string,
    body: unknown,
  ): Promise<{ response: Response; text: string }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), options.timeoutMs);
    try {
      const headers: Record<string, string> = {
        authorization: `Bearer ${options.apiKey}`,
        accept: 'application/json, application/problem+json',
        'user-agent': 'runpod-llm-manager',
      };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const init: RequestInit = { method, headers, signal: controller.signal };
      if (body !== undefined) init.body = JSON.stringify(body);
      const response = await options.fetch(url, init);
      const text = await response.text();
      return { response, text };
    } catch (err) {
      const reason = controller.signal.aborted ? 'timeout' : 'network';
      throw unavailableError(operation, reason, options.timeoutMs, err, secrets);
    } finally {
      clearTimeout(timer);
    }
  }

  async function call(method: string, path: string, callOptions: CallOptions): Promise<RawResponse> {
    const url = new URL(options.baseUrl + path);
    for (const [k, v] of Object.entries(callOptions.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, v);
    const operation = `${method} ${path}`;
    // Quota used up (the last answer's RateLimit said so): wait for the window, or fail now when
    // that is longer than we wait for a Retry-After. Nothing is sent that would only earn a 429.
    const quotaWait = notBefore - options.clock.now();
    if (quotaWait > 0) {
      if (quotaWait > options.maxRetryAfterMs) {
        throw errorFromResponse(
          {
            status: 429,
            body: '{"detail":"RunPod request quota used up (RateLimit header)"}',
            operation,
            retryAfterMs: quotaWait,
          },
          secrets,
        );
      }
      options.logger.debug({ operation, delayMs: quotaWait }, 'runpod quota used up, waiting for the window');
      await options.sleep(quotaWait);
      notBefore = 0;
    }
    for (let attempt = 0; ; attempt++) {
      const canRetry = attempt < options.retries;
      let result: { response: Response; text: string };
      try {
        result = await once(method, url, operation, callOptions.body);
      } catch (err) {
        if (callOptions.uncertain !== undefined) callOptions.uncertain.value = true;
        if (!(canRetry && callOptions.retryUncertain)) throw err;
        const delay = backoffMs(attempt);
        options.logger.debug(
          { operation, attempt, delayMs: delay, reason: (err as Error).message },
          'runpod retry',
        );
        await options.sleep(delay);
        continue;
      }
      const { response, text } = result;
      const status = response.status;
      const quota = rateLimitWaitMs(response.headers.get('ratelimit'));
      notBefore = quota === undefined ? 0 : options.clock.now() + quota;
      if (status >= 200 && status < 300) return { status, text, operation };

      const wait = retryAfterMs(response.headers.get('retry-after'));
      const failure = {
        status,
        body: text,
        operation,
        ...(wait === undefined ? {} : { retryAfterMs: wait }),
      };
      if (status === 429) {
        // A 429 was refused before any work was done, so it is safe to retry even for a create.
        const delay = wait ?? quota ?? backoffMs(attempt);
        notBefore = 0; // this wait covers it
        if (!canRetry || delay > options.maxRetryAfterMs) throw errorFromResponse(failure, secrets);
        options.logger.debug({ operation, attempt, status, delayMs: delay }, 'runpod rate limited, waiting');
        await options.sleep(delay);
        continue;
      }
      if (status >= 500) {
        if (callOptions.uncertain !== undefined) callOptions.uncertain.value = true;
        if (canRetry && callOptions.retryUncertain) {
          const delay = backoffMs(attempt);
          options.logger.debug({ operation, attempt, status, delayMs: delay }, 'runpod retry');
          await options.sleep(delay);
          continue;
        }
      }
      throw errorFromResponse(failure, secrets);
    }
  }

  return { call, backoffMs, secrets, options };
}

/** Real sleep for production; tests inject one that records the delay and returns at once. */
export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
