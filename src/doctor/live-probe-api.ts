import type { RunPodClient } from '../runpod/client.js';
import { RunPodError } from '../runpod/errors.js';
import type { CpuOffer, ProbeApi } from './live-probe.js';

/**
 * The probe's RunPod calls: pods and logs through the client (its idempotent create, retries
 * and redaction), the CPU catalog read here (the client has no call for it).
 */
export function probeApiFor(
  client: RunPodClient,
  http: { fetch: typeof globalThis.fetch; apiUrl: string; apiKey: string },
): ProbeApi {
  const base = http.apiUrl.replace(/\/+$/, '');
  const headers = { authorization: `Bearer ${http.apiKey}`, 'user-agent': 'runpod-llm-manager (doctor)' };
  return {
    createPod: (req) => client.createPod(req),
    getPod: (id) => client.getPod(id),
    deletePod: (id) => client.deletePod(id),
    listPods: () => client.listPods(),
    podLogs: async (id, options) => {
      if (client.getPodLogs === undefined)
        throw new RunPodError('RUNPOD_UNAVAILABLE', 'this RunPod client cannot read pod logs');
      return client.getPodLogs(id, { ...options, timeLimitMs: 5_000 });
    },
    async cpuOffers(): Promise<CpuOffer[]> {
      const res = await http.fetch(`${base}/v2/catalog/cpus?include=AVAILABILITY&product=POD`, {
        headers: { ...headers, accept: 'application/json' },
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      if (res.status !== 200)
        throw new RunPodError(
          res.status === 401 ? 'RUNPOD_AUTH' : 'RUNPOD_UNAVAILABLE',
          `RunPod answered the CPU catalog with ${res.status}`,
          { hint: 'run `runpod-llm doctor` (without --live) to see why' },
        );
      const cpus = (JSON.parse(text) as { cpus?: unknown }).cpus;
      if (!Array.isArray(cpus))
        throw new RunPodError('RUNPOD_BAD_RESPONSE', 'the CPU catalog is not in the shape of the spec');
      const offers: CpuOffer[] = [];
      for (const c of cpus as Array<{
        id?: unknown;
        vcpu?: { min?: unknown; max?: unknown };
        price?: { securePerVcpu?: unknown };
        availability?: unknown;
      }>) {
        const perVcpu = Number(c.price?.securePerVcpu);
        // The spec: a power of two valid for the flavor; the smallest is the cheapest.
        const min = 2 ** Math.ceil(Math.log2(Math.max(2, Number(c.vcpu?.min) || 2)));
        const max = Number(c.vcpu?.max);
        if (Number.isFinite(max) && min > max) continue;
        if (typeof c.id !== 'string' || !Number.isFinite(perVcpu) || c.availability === 'NONE') continue;
        offers.push({ id: c.id, vcpuCount: min, pricePerHr: Math.round(perVcpu * min * 10_000) / 10_000 });
      }
      return offers;
    },
  };
}
