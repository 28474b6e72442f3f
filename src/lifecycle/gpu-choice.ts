/**
 * Which GPU types `up` tries, in order. RunPod v2 create places exactly one GPU type and never
 * falls back (docs/runpod-contract.md), so the fallback order is ours: the user's list as given, or the
 * catalog filtered by VRAM and stock, cheapest first.
 */

export type GpuCloud = 'SECURE' | 'COMMUNITY';
export type GpuAvailability = 'NONE' | 'LOW' | 'MEDIUM' | 'HIGH';

/** One GPU type from the catalog (`GET /v2/catalog/gpus`); the caller adapts the client's type. */
export interface GpuOffer {
  id: string;
  name: string;
  /** VRAM per GPU, GB. */
  memoryGb: number;
  /** USD/hour per GPU; null when not offered on that cloud. */
  securePrice: number | null;
  communityPrice: number | null;
  /** Stock, when the catalog was asked for it. */
  availability?: GpuAvailability;
  /** Most GPUs of this type one pod can have, when known. */
  maxCount?: number;
}

export interface GpuCandidate {
  id: string;
  name: string;
  memoryGb: number;
  count: number;
  /** USD/hour for the whole pod (per-GPU price × count). */
  pricePerHr: number;
  availability?: GpuAvailability;
}

export interface GpuPlan {
  /** In the order `up` should try them. */
  candidates: GpuCandidate[];
  /** User ids the catalog does not know. */
  unknownIds: string[];
  /** Known types left out, with why (not on this cloud, too few GPUs per pod). */
  skipped: { id: string; reason: string }[];
  /** Kept user choices that look risky (too little VRAM, no stock). */
  warnings: string[];
}

export interface PlanGpusInput {
  /** The user's ordered choice (`--gpu A --gpu B`); absent or empty: pick from the catalog. */
  userGpuIds?: readonly string[];
  catalog: readonly GpuOffer[];
  /** VRAM the model needs across the pod's GPUs (per-GPU memory × count). */
  minVramGb: number;
  cloud: GpuCloud;
  count: number;
}

/**
 * Orders the GPU types to try.
 *
 * A user list is honoured as given (they may know about stock we do not): unknown ids are
 * reported, types not offered on the chosen cloud skipped, and low VRAM or no stock only warned
 * about. Without a list: types with enough VRAM, not out of stock, offered on the cloud, cheapest
 * first (ties: more VRAM, then id, so the order is stable).
 *
 * @example
 *   const plan = planGpus({ catalog, minVramGb: 40, cloud: 'SECURE', count: 1 });
 *   plan.candidates[0] // { id: 'NVIDIA A40', pricePerHr: 0.4, ... }
 */
export function planGpus(input: PlanGpusInput): GpuPlan {
  const { catalog, minVramGb, cloud, count } = input;
  if (!Number.isInteger(count) || count < 1)
    throw new TypeError(`GPU count must be an integer >= 1, got ${count}`);
  if (!Number.isFinite(minVramGb) || minVramGb < 0)
    throw new TypeError(`minVramGb must be >= 0, got ${minVramGb}`);
  const byId = new Map(catalog.map((g) => [g.id, g]));
  const plan: GpuPlan = { candidates: [], unknownIds: [], skipped: [], warnings: [] };

  // `report`: explain a skipped user choice; catalog picks are filtered silently.
  const admit = (offer: GpuOffer, report: boolean): GpuCandidate | null => {
    const price = cloud === 'SECURE' ? offer.securePrice : offer.communityPrice;
    if (price === null || !Number.isFinite(price) || price <= 0) {
      if (report) plan.skipped.push({ id: offer.id, reason: `not offered on the ${cloud} cloud` });
      return null;
    }
    if (offer.maxCount !== undefined && offer.maxCount < count) {
      if (report)
        plan.skipped.push({ id: offer.id, reason: `at most ${offer.maxCount} per pod, ${count} requested` });
      return null;
    }
    const candidate: GpuCandidate = {
      id: offer.id,
      name: offer.name,
      memoryGb: offer.memoryGb,
      count,
      pricePerHr: price * count,
    };
    if (offer.availability !== undefined) candidate.availability = offer.availability;
    return candidate;
  };

  const userIds = (input.userGpuIds ?? []).filter((id, i, all) => all.indexOf(id) === i);
  if (userIds.length > 0) {
    for (const id of userIds) {
      const offer = byId.get(id);
      if (offer === undefined) {
        plan.unknownIds.push(id);
        continue;
      }
      const candidate = admit(offer, true);
      if (candidate === null) continue;
      if (offer.memoryGb * count < minVramGb) {
        plan.warnings.push(
          `${id}: ${offer.memoryGb * count} GB VRAM is below the ${minVramGb} GB the model needs`,
        );
      }
      if (offer.availability === 'NONE') plan.warnings.push(`${id}: the catalog lists no stock on ${cloud}`);
      plan.candidates.push(candidate);
    }
    return plan;
  }

  for (const offer of catalog) {
    if (offer.memoryGb * count < minVramGb || offer.availability === 'NONE') continue;
    const candidate = admit(offer, false);
    if (candidate !== null) plan.candidates.push(candidate);
  }
  plan.candidates.sort(
    (a, b) => a.pricePerHr - b.pricePerHr || b.memoryGb - a.memoryGb || a.id.localeCompare(b.id),
  );
  return plan;
}

export interface WorstCase {
  /** Most this run can cost; null when neither a runtime limit nor a budget bounds it. */
  usd: number | null;
  /** Which limit binds. */
  boundBy: 'runtime' | 'budget' | null;
}

/**
 * The most a run can cost under its limits, for `up --dry-run`: price × runtime, capped by the
 * budget (the watchdog terminates before the next check would pass it).
 *
 * @example
 *   worstCaseCost({ pricePerHr: 0.4, runtimeMs: 2 * 3_600_000, budget: 5 }) // { usd: 0.8, boundBy: 'runtime' }
 */
export function worstCaseCost(input: {
  pricePerHr: number;
  runtimeMs: number | null;
  budget: number | null;
}): WorstCase {
  const byRuntime = input.runtimeMs === null ? null : (input.pricePerHr * input.runtimeMs) / 3_600_000;
  if (input.budget !== null && (byRuntime === null || input.budget < byRuntime))
    return { usd: input.budget, boundBy: 'budget' };
  if (byRuntime !== null) return { usd: byRuntime, boundBy: 'runtime' };
  return { usd: null, boundBy: null };
}
