import type { RunPodClient } from '../runpod/client.js';
import { RunPodError } from '../runpod/errors.js';
import type { CpuOffer, PodLogLine, ProbeApi } from './doctor-live.js';

/**
 * The probe's RunPod calls: pods through the client (its idempotent create, retries and
 * redaction), the CPU catalog and the log stream read here (the client has no call for them).
 */
export function probeApiFor(client: RunPodClient, http: { fetch: typeof globalThis.fetch; apiUrl: string; apiKey: string }): ProbeApi {
  const base = http.apiUrl.replace(/\/+$/, '');
  const headers = { authorization: `Bearer ${http.apiKey}`, 'user-agent': 'runpod-llm-manager (doctor)' };
  const withLogs = client as RunPodClient & { getPodLogs?: (id: string, o: { source?: 'container' | 'system'; tail?: number; timeLimitMs?: number }) => Promise<PodLogLine[]> };
  return {
    createPod: (req) => client.createPod(req),
    getPod: (id) => client.getPod(id),
    deletePod: (id) => client.deletePod(id),
    listPods: () => client.listPods(),
    podLogs: (id, options) => (withLogs.getPodLogs !== undefined ? withLogs.getPodLogs(id, { ...options, timeLimitMs: 5_000 }) : readLogBackfill(http.fetch, `${base}/v2/pods/${encodeURIComponent(id)}/logs`, headers, options)),
    async cpuOffers(): Promise<CpuOffer[]> {
      const res = await http.fetch(`${base}/v2/catalog/cpus?include=AVAILABILITY&product=POD`, { headers: { ...headers, accept: 'application/json' }, signal: AbortSignal.timeout(15_000) });
      const text = await res.text();
      if (res.status !== 200) throw new RunPodError(res.status === 401 ? 'RUNPOD_AUTH' : 'RUNPOD_UNAVAILABLE', `RunPod answered the CPU catalog with ${res.status}`, { hint: 'run `runpod-llm doctor` (without --live) to see why' });
      const cpus = (JSON.parse(text) as { cpus?: unknown }).cpus;
      if (!Array.isArray(cpus)) throw new RunPodError('RUNPOD_BAD_RESPONSE', 'the CPU catalog is not in the shape of the spec');
      const offers: CpuOffer[] = [];
      for (const c of cpus as Array<{ id?: unknown; vcpu?: { min?: unknown }; price?: { securePerVcpu?: unknown }; availability?: unknown }>) {
        const perVcpu = Number(c.price?.securePerVcpu);
        const min = Math.max(2, Number(c.vcpu?.min) || 2);
        if (typeof c.id !== 'string' || !Number.isFinite(perVcpu) || c.availability === 'NONE') continue;
        offers.push({ id: c.id, vcpuCount: min, pricePerHr: Math.round(perVcpu * min * 10_000) / 10_000 });
      }
      return offers;
    },
  };
}

/** The backfill of an SSE log stream: events until none came for 700 ms, at most 5 s. */
async function readLogBackfill(fetcher: typeof globalThis.fetch, url: string, headers: Record<string, string>, options: { source?: string; tail: number }): Promise<PodLogLine[]> {
  const u = new URL(url);
  u.searchParams.set('tail', String(options.tail));
  if (options.source !== undefined) u.searchParams.set('source', options.source);
  const controller = new AbortController();
  const overall = setTimeout(() => controller.abort(), 5_000);
  let idle: NodeJS.Timeout | undefined;
  const lines: PodLogLine[] = [];
  try {
    const res = await fetcher(u, { headers: { ...headers, accept: 'text/event-stream' }, signal: controller.signal });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new RunPodError(res.status === 404 ? 'RUNPOD_NOT_FOUND' : 'RUNPOD_UNAVAILABLE', `RunPod answered the pod's logs with ${res.status}`);
    }
    const reader = res.body?.getReader();
    if (reader === undefined) return lines;
    const decoder = new TextDecoder();
    let buffer = '';
    const arm = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(), 700);
    };
    arm();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        for (let cut = buffer.indexOf('\n\n'); cut !== -1; cut = buffer.indexOf('\n\n')) {
          const data = buffer.slice(0, cut).split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
          buffer = buffer.slice(cut + 2);
          try {
            const e = JSON.parse(data) as { ts?: unknown; source?: unknown; line?: unknown };
            if (typeof e.line === 'string') lines.push({ ts: String(e.ts ?? ''), source: String(e.source ?? ''), line: e.line.slice(0, 2_000) });
          } catch {
            // not an event we know
          }
          if (lines.length >= options.tail) return lines;
        }
        arm();
      }
    } catch {
      // the idle or overall limit ended the read: what came is the answer
    }
    return lines;
  } catch (err) {
    if (err instanceof RunPodError) throw err;
    if (controller.signal.aborted) return lines;
    throw new RunPodError('RUNPOD_UNAVAILABLE', `RunPod's log stream could not be read (${(err as Error).message})`);
  } finally {
    clearTimeout(overall);
    clearTimeout(idle);
    controller.abort();
  }
}
