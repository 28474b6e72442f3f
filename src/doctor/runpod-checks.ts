import { join } from 'node:path';
import { readTextIfExists } from '../shared/secret-file.js';
import { podInstall } from '../state/install.js';
import { isOurPodName } from '../state/pods.js';
import type { Check, DoctorDeps, DoctorOptions } from './check.js';

/*
 * `runpod-llm doctor`'s RunPod checks: the API answers (a Cloudflare block told apart from a
 * refused key), the key is accepted, the catalog holds the configured GPU types, RateLimit
 * headers, and the clock against the API's Date. RunPod is asked with plain GETs, read raw so
 * the answer's headers can be read.
 */

/** What one raw GET to RunPod brought back. */
interface Answer {
  status: number;
  json: unknown;
  isJson: boolean;
  date: string | null;
  rateLimit: string | null;
  rateLimitPolicy: string | null;
  /** Local time halfway through the exchange (the best estimate of when the server wrote Date). */
  localAt: number;
  rttMs: number;
}

type Reply = Answer | { error: string };

/** How far apart the local clock and RunPod's may be: ok within 5 s, a warning up to 60 s. */
export const CLOCK_OK_MS = 5_000;

export const CLOCK_WARN_MS = 60_000;

async function runpodGet(deps: DoctorDeps, options: DoctorOptions, path: string): Promise<Reply> {
  const started = deps.clock.now();
  try {
    const res = await deps.fetch(`${options.apiUrl.replace(/\/+$/, '')}${path}`, {
      headers: {
        authorization: `Bearer ${options.apiKey ?? ''}`,
        accept: 'application/json',
        'user-agent': 'runpod-llm-manager (doctor)',
      },
      redirect: 'manual',
      signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    const ended = deps.clock.now();
    let json: unknown = null;
    let isJson = false;
    try {
      json = JSON.parse(text);
      isJson = typeof json === 'object' && json !== null;
    } catch {
      // not JSON (a Cloudflare page, a proxy's error)
    }
    return {
      status: res.status,
      json,
      isJson,
      date: res.headers.get('date'),
      rateLimit: res.headers.get('ratelimit'),
      rateLimitPolicy: res.headers.get('ratelimit-policy'),
      localAt: Math.round((started + ended) / 2),
      rttMs: ended - started,
    };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return {
      error:
        e.name === 'TimeoutError'
          ? `no answer within ${Math.round((deps.timeoutMs ?? 10_000) / 1000)} s`
          : (e.cause?.code ?? e.message),
    };
  }
}

export async function runpodChecks(deps: DoctorDeps, options: DoctorOptions): Promise<Check[]> {
  if (options.apiKey === undefined || options.apiKey.trim() === '') {
    return [
      {
        id: 'runpod_key',
        status: 'fail',
        summary: 'RUNPOD_API_KEY is not set: nothing on RunPod can be checked',
        fix: 'export RUNPOD_API_KEY=... (RunPod console → Settings → API Keys); no account? `runpod-llm demo`',
      },
    ];
  }
  const host = options.apiUrl;
  const pods = await runpodGet(deps, options, '/v2/pods');
  if ('error' in pods) {
    return [
      {
        id: 'runpod_api',
        status: 'fail',
        summary: `RunPod's API at ${host} did not answer: ${pods.error}`,
        fix: 'check the network (proxy, firewall, DNS) and RUNPOD_API_URL',
      },
    ];
  }
  const checks: Check[] = [];
  const reachable = (summary: string): void =>
    void checks.push({ id: 'runpod_api', status: 'ok', summary, data: { url: host, rttMs: pods.rttMs } });
  if (pods.status === 403 && !pods.isJson) {
    return [
      {
        id: 'runpod_api',
        status: 'fail',
        summary: `a 403 that is not RunPod's JSON came back from ${host}: something in front of the API (Cloudflare) blocked the request before the key was looked at`,
        fix: 'retry from another network or without the proxy/VPN; if it persists, tell RunPod support (Cloudflare error 1010)',
      },
    ];
  }
  if (pods.status === 401) {
    reachable(`RunPod's API answers (${host})`);
    checks.push({
      id: 'runpod_key',
      status: 'fail',
      summary: 'RunPod refused the key (401): it is wrong, expired or revoked',
      fix: 'create a key in the RunPod console (Settings → API Keys, read/write) and export RUNPOD_API_KEY',
    });
  } else if (pods.status === 403) {
    reachable(`RunPod's API answers (${host})`);
    checks.push({
      id: 'runpod_key',
      status: 'fail',
      summary: 'the key is valid but may not list pods (403)',
      fix: 'give the key read/write access to pods (a restricted key cannot manage them)',
    });
  } else if (pods.status === 429) {
    reachable(`RunPod's API answers (${host})`);
    checks.push({
      id: 'runpod_key',
      status: 'warn',
      summary: 'RunPod is rate-limiting this account right now (429): the key could not be checked',
      fix: 'wait a minute and run `runpod-llm doctor` again',
    });
  } else if (pods.status >= 500) {
    return [
      {
        id: 'runpod_api',
        status: 'fail',
        summary: `RunPod's API answers ${pods.status}: it is having trouble`,
        fix: 'try again in a few minutes; see https://uptime.runpod.io',
      },
    ];
  } else if (pods.status === 200) {
    reachable(`RunPod's API answers (${host}, ${pods.rttMs} ms)`);
    const list = Array.isArray(pods.json)
      ? pods.json
      : ((pods.json as { pods?: unknown } | null)?.pods ?? null);
    if (!Array.isArray(list)) {
      checks.push({
        id: 'runpod_key',
        status: 'fail',
        summary: 'the key was accepted but the pod list is not in the shape of the spec',
        fix: 'check RUNPOD_API_URL points at the v2 API (https://api.runpod.io)',
      });
    } else {
      // Read only: the install id as stored (doctor creates nothing).
      const install = readTextIfExists(join(options.home, 'install-id'))?.trim() ?? null;
      const ours = list.filter(
        (p) =>
          typeof p === 'object' &&
          p !== null &&
          isOurPodName(textOf((p as { name?: unknown }).name)) &&
          install !== null &&
          podInstall((p as { env?: Record<string, string> }).env, install) === 'ours',
      ).length;
      checks.push({
        id: 'runpod_key',
        status: 'ok',
        summary: `key accepted; the account has ${list.length} pod(s), ${ours} of them this install's`,
        data: { pods: list.length, ours },
      });
    }
  } else {
    reachable(`RunPod's API answers (${host})`);
    checks.push({
      id: 'runpod_key',
      status: 'fail',
      summary: `RunPod answered the pod list with ${pods.status}`,
      fix: 'check RUNPOD_API_URL (it must be the v2 API root)',
    });
  }

  const answers: Answer[] = [pods];
  if (pods.status === 200) {
    const gpus = await runpodGet(deps, options, '/v2/catalog/gpus');
    const cpus = await runpodGet(deps, options, '/v2/catalog/cpus');
    if (!('error' in gpus)) answers.push(gpus);
    if (!('error' in cpus)) answers.push(cpus);
    checks.push(catalogCheck(gpus, cpus, options.gpuTypes));
  }
  checks.push(rateLimitCheck(answers));
  checks.push(clockCheck(answers));
  return checks;
}

function catalogCheck(gpus: Reply, cpus: Reply, wanted: readonly string[]): Check {
  if ('error' in gpus || gpus.status !== 200) {
    return {
      id: 'catalog',
      status: 'fail',
      summary: `the GPU catalog could not be read (${'error' in gpus ? gpus.error : `HTTP ${gpus.status}`})`,
      fix: 'try again; `runpod-llm catalog` shows the same list',
    };
  }
  const list = (gpus.json as { gpus?: unknown } | null)?.gpus;
  const ids = Array.isArray(list) ? list.map((g) => textOf((g as { id?: unknown }).id)).filter(Boolean) : [];
  if (ids.length === 0)
    return {
      id: 'catalog',
      status: 'fail',
      summary: 'the GPU catalog is empty',
      fix: 'check RUNPOD_API_URL',
    };
  const missing = wanted.filter((id) => !ids.includes(id));
  const cpuList =
    !('error' in cpus) && cpus.status === 200 ? (cpus.json as { cpus?: unknown } | null)?.cpus : undefined;
  const cpuCount = Array.isArray(cpuList) ? cpuList.length : null;
  const data = { gpuTypes: ids.length, cpuTypes: cpuCount, missing };
  if (missing.length > 0) {
    return {
      id: 'catalog',
      status: 'fail',
      summary: `${ids.length} GPU types listed, but the configured ${missing.map((m) => JSON.stringify(m)).join(', ')} ${missing.length === 1 ? 'is' : 'are'} not among them`,
      fix: 'pick ids from `runpod-llm catalog` (gpu_types in runpod-llm.json or --gpu)',
      data,
    };
  }
  return {
    id: 'catalog',
    status: 'ok',
    summary: `${ids.length} GPU types${cpuCount === null ? '' : ` and ${cpuCount} CPU types`} listed${wanted.length > 0 ? `; the configured ${wanted.join(', ')} found` : ''}`,
    data,
  };
}

/** `RateLimit: "minute";r=59;t=60` (IETF draft): the remaining requests and reset of each policy. */
export function parseRateLimit(
  value: string,
): Array<{ policy: string; remaining: number | null; resetS: number | null }> {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => {
      const [name, ...params] = item.split(';').map((p) => p.trim());
      const get = (key: string): number | null => {
        const p = params.find((x) => x.startsWith(`${key}=`));
        const n = p === undefined ? NaN : Number(p.slice(key.length + 1));
        return Number.isFinite(n) ? n : null;
      };
      return { policy: (name ?? '').replace(/^"|"$/g, ''), remaining: get('r'), resetS: get('t') };
    });
}

function rateLimitCheck(answers: Answer[]): Check {
  const seen = answers.find((a) => a.rateLimit !== null);
  if (seen === undefined || seen.rateLimit === null) {
    return {
      id: 'rate_limit',
      status: 'warn',
      summary: 'RunPod sent no RateLimit headers: the client paces itself by Retry-After on 429 only',
      data: { seen: false },
    };
  }
  const last = answers.filter((a) => a.rateLimit !== null).at(-1) ?? seen;
  const limits = parseRateLimit(last.rateLimit ?? '');
  const low = limits.filter((l) => l.remaining !== null && l.remaining <= 1);
  const text = limits
    .map(
      (l) =>
        `${l.policy || 'quota'}: ${l.remaining ?? '?'} left${l.resetS === null ? '' : `, reset in ${l.resetS} s`}`,
    )
    .join('; ');
  const data = { seen: true, rateLimit: last.rateLimit, policy: last.rateLimitPolicy };
  if (low.length > 0)
    return {
      id: 'rate_limit',
      status: 'warn',
      summary: `RateLimit headers seen, and a quota is nearly used up (${text})`,
      fix: 'another tool or watchdog on this account is busy; the client waits when asked',
      data,
    };
  return { id: 'rate_limit', status: 'ok', summary: `RateLimit headers seen (${text})`, data };
}

function clockCheck(answers: Answer[]): Check {
  const dated = answers.filter((a) => a.date !== null && !Number.isNaN(Date.parse(a.date)));
  if (dated.length === 0)
    return { id: 'clock', status: 'warn', summary: 'RunPod sent no Date header: clock skew not measured' };
  // Date has one-second resolution: the smallest skew over the answers is the best estimate.
  const skews = dated.map((a) => a.localAt - Date.parse(a.date ?? ''));
  const skew = skews.reduce((best, s) => (Math.abs(s) < Math.abs(best) ? s : best));
  const abs = Math.abs(skew);
  const words = `${abs < 1_000 ? 'under 1 s' : `${(abs / 1000).toFixed(0)} s`}${abs < 1_000 ? '' : skew > 0 ? ' ahead of RunPod' : ' behind RunPod'}`;
  const data = { skewMs: skew };
  // Date is whole seconds, so up to 1 s (+ the round trip) is measurement, not skew.
  if (abs <= CLOCK_OK_MS) return { id: 'clock', status: 'ok', summary: `this clock is ${words}`, data };
  const fix =
    "turn on time sync (timedatectl set-ntp true; on macOS: System Settings → Date & Time → Set automatically): the pod guard's stop time is computed here";
  if (abs <= CLOCK_WARN_MS)
    return { id: 'clock', status: 'warn', summary: `this clock is ${words}`, fix, data };
  return {
    id: 'clock',
    status: 'fail',
    summary: `this clock is ${words}: runtime limits enforced on the pod would be off by as much`,
    fix,
    data,
  };
}

/** A field read from an untyped API answer: its text when it is a string, else empty. */
function textOf(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
