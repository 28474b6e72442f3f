import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type GpuOffer, planGpus, worstCaseCost } from '../../src/lifecycle/gpu-choice.js';

const catalog: GpuOffer[] = [
  {
    id: 'NVIDIA GeForce RTX 4090',
    name: 'RTX 4090',
    memoryGb: 24,
    securePrice: 0.69,
    communityPrice: 0.34,
    availability: 'HIGH',
  },
  {
    id: 'NVIDIA A40',
    name: 'A40',
    memoryGb: 48,
    securePrice: 0.4,
    communityPrice: null,
    availability: 'MEDIUM',
  },
  {
    id: 'NVIDIA RTX A6000',
    name: 'RTX A6000',
    memoryGb: 48,
    securePrice: 0.49,
    communityPrice: 0.33,
    availability: 'LOW',
  },
  {
    id: 'NVIDIA L40S',
    name: 'L40S',
    memoryGb: 48,
    securePrice: 0.86,
    communityPrice: 0.79,
    availability: 'NONE',
  },
  {
    id: 'NVIDIA A100 80GB PCIe',
    name: 'A100 80GB',
    memoryGb: 80,
    securePrice: 1.64,
    communityPrice: 1.19,
    availability: 'HIGH',
    maxCount: 8,
  },
  {
    id: 'NVIDIA H100 80GB HBM3',
    name: 'H100 SXM',
    memoryGb: 80,
    securePrice: 2.99,
    communityPrice: 2.69,
    maxCount: 1,
  },
];

describe('planGpus from the catalog', () => {
  it('keeps enough VRAM and stock, cheapest first on the chosen cloud', () => {
    const secure = planGpus({ catalog, minVramGb: 40, cloud: 'SECURE', count: 1 });
    assert.deepEqual(
      secure.candidates.map((c) => [c.id, c.pricePerHr]),
      [
        ['NVIDIA A40', 0.4],
        ['NVIDIA RTX A6000', 0.49],
        ['NVIDIA A100 80GB PCIe', 1.64],
        ['NVIDIA H100 80GB HBM3', 2.99],
      ],
    );
    assert.deepEqual(secure.unknownIds, []);
    const community = planGpus({ catalog, minVramGb: 40, cloud: 'COMMUNITY', count: 1 });
    assert.deepEqual(
      community.candidates.map((c) => c.id),
      ['NVIDIA RTX A6000', 'NVIDIA A100 80GB PCIe', 'NVIDIA H100 80GB HBM3'],
    );
  });

  it('counts VRAM and price across the GPUs of the pod and respects maxCount', () => {
    const plan = planGpus({ catalog, minVramGb: 96, cloud: 'SECURE', count: 2 });
    assert.deepEqual(
      plan.candidates.map((c) => [c.id, c.pricePerHr, c.count]),
      [
        ['NVIDIA A40', 0.8, 2],
        ['NVIDIA RTX A6000', 0.98, 2],
        ['NVIDIA A100 80GB PCIe', 3.28, 2],
      ],
    );
  });

  it('returns no candidates when nothing fits', () => {
    assert.deepEqual(planGpus({ catalog, minVramGb: 500, cloud: 'SECURE', count: 1 }).candidates, []);
  });

  it('rejects a bad count or VRAM eagerly', () => {
    assert.throws(() => planGpus({ catalog, minVramGb: 10, cloud: 'SECURE', count: 0 }), TypeError);
    assert.throws(() => planGpus({ catalog, minVramGb: -1, cloud: 'SECURE', count: 1 }), TypeError);
  });
});

describe('planGpus from the user list', () => {
  it('keeps the user order, reports unknown ids, skips what the cloud does not offer, warns on risks', () => {
    const plan = planGpus({
      userGpuIds: ['NVIDIA L40S', 'NVIDIA H200', 'NVIDIA A40', 'NVIDIA GeForce RTX 4090', 'NVIDIA A40'],
      catalog,
      minVramGb: 40,
      cloud: 'COMMUNITY',
      count: 1,
    });
    assert.deepEqual(
      plan.candidates.map((c) => [c.id, c.pricePerHr, c.availability]),
      [
        ['NVIDIA L40S', 0.79, 'NONE'],
        ['NVIDIA GeForce RTX 4090', 0.34, 'HIGH'],
      ],
    );
    assert.deepEqual(plan.unknownIds, ['NVIDIA H200']);
    assert.deepEqual(plan.skipped, [{ id: 'NVIDIA A40', reason: 'not offered on the COMMUNITY cloud' }]);
    assert.equal(plan.warnings.length, 2);
    assert.match(plan.warnings[0] ?? '', /L40S: the catalog lists no stock/);
    assert.match(plan.warnings[1] ?? '', /RTX 4090: 24 GB VRAM is below the 40 GB/);
  });

  it('skips a type that cannot have that many GPUs per pod', () => {
    const plan = planGpus({
      userGpuIds: ['NVIDIA H100 80GB HBM3'],
      catalog,
      minVramGb: 80,
      cloud: 'SECURE',
      count: 2,
    });
    assert.deepEqual(plan.candidates, []);
    assert.deepEqual(plan.skipped, [
      { id: 'NVIDIA H100 80GB HBM3', reason: 'at most 1 per pod, 2 requested' },
    ]);
  });

  it('an empty user list means the catalog', () => {
    const plan = planGpus({ userGpuIds: [], catalog, minVramGb: 40, cloud: 'SECURE', count: 1 });
    assert.equal(plan.candidates[0]?.id, 'NVIDIA A40');
  });
});

describe('worstCaseCost', () => {
  it('is price × runtime, capped by the budget, or unbounded', () => {
    assert.deepEqual(worstCaseCost({ pricePerHr: 0.4, runtimeMs: 2 * 3_600_000, budget: 5 }), {
      usd: 0.8,
      boundBy: 'runtime',
    });
    assert.deepEqual(worstCaseCost({ pricePerHr: 2, runtimeMs: 8 * 3_600_000, budget: 5 }), {
      usd: 5,
      boundBy: 'budget',
    });
    assert.deepEqual(worstCaseCost({ pricePerHr: 2, runtimeMs: null, budget: 5 }), {
      usd: 5,
      boundBy: 'budget',
    });
    assert.deepEqual(worstCaseCost({ pricePerHr: 2, runtimeMs: 1_800_000, budget: null }), {
      usd: 1,
      boundBy: 'runtime',
    });
    assert.deepEqual(worstCaseCost({ pricePerHr: 2, runtimeMs: null, budget: null }), {
      usd: null,
      boundBy: null,
    });
  });
});
