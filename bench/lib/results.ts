import type { SystemName } from './systems.js';

/** How long and how often each workload runs. */
export interface Plan {
  quick: boolean;
  latency: { rounds: number; requests: number; warmup: number };
  throughput: {
    runs: number;
    stepMs: number;
    warmupMs: number;
    wrkSeconds: number;
    wrkConnections: number;
    /** First constant-rate step as a fraction of the closed-loop peak; each next step × factor. */
    startFraction: number;
    factor: number;
    /** Bisection steps between the last pass and the first failure. */
    bisect: number;
    /** Most constant-rate steps per system and run (climb and bisection together). */
    maxSteps: number;
  };
  streaming: { rounds: number; streams: number; concurrency: number; chunks: number; paceMs: number };
  held: { runs: number; levels: number[] };
  cache: { seconds: number; connections: number };
  soak: { seconds: number };
}

export function makePlan(quick: boolean, overrides: { soakSeconds?: number; runs?: number }): Plan {
  const runs = (n: number) => overrides.runs ?? n;
  return quick
    ? {
        quick,
        latency: { rounds: runs(3), requests: 1_000, warmup: 200 },
        throughput: {
          runs: runs(1),
          stepMs: 2_000,
          warmupMs: 500,
          wrkSeconds: 3,
          wrkConnections: 512,
          startFraction: 0.8,
          factor: 1.25,
          bisect: 1,
          maxSteps: 6,
        },
        streaming: { rounds: runs(2), streams: 16, concurrency: 16, chunks: 64, paceMs: 20 },
        held: { runs: runs(1), levels: [128, 512, 1024] },
        cache: { seconds: 3, connections: 64 },
        soak: { seconds: overrides.soakSeconds ?? 20 },
      }
    : {
        quick,
        latency: { rounds: runs(5), requests: 5_000, warmup: 500 },
        throughput: {
          runs: runs(3),
          stepMs: 10_000,
          warmupMs: 2_000,
          wrkSeconds: 10,
          wrkConnections: 512,
          startFraction: 0.5,
          factor: 1.2,
          bisect: 2,
          maxSteps: 8,
        },
        streaming: { rounds: runs(3), streams: 64, concurrency: 8, chunks: 64, paceMs: 20 },
        held: { runs: runs(3), levels: [128, 512, 1024] },
        cache: { seconds: 10, connections: 64 },
        soak: { seconds: overrides.soakSeconds ?? 600 },
      };
}

export type PerSystem<T> = Partial<Record<SystemName, T>>;

export interface LatencyRound {
  p50: number;
  p99: number;
  /** CPU the proxy (for direct: the upstream) spent per request, µs. */
  cpuUs: number;
  errors: number;
  cacheHits: number;
  /** Streamed, c=1: request sent → first SSE event, ms (absent in runs before 2026-12-03). */
  ttftP50?: number;
  ttftP99?: number;
  ttftErrors?: number;
}

export interface ThroughputStep {
  rate: number;
  achievedRate: number;
  p50: number;
  p99: number;
  errorRate: number;
  pass: boolean;
  /** Why the step failed: p99, errors, queue growing, or the generator could not offer the rate. */
  reason?: string;
}

export interface ThroughputRun {
  /** Highest offered rate that passed; a lower bound when `boundBy` is set. */
  maxRate: number;
  /** Set when the search stopped before a failure: the generator could not offer more, or the step budget ran out. */
  boundBy?: 'generator' | 'steps';
  wrkRps: number;
  wrkP99: number;
  wrkErrors: number;
  /** CPU per request during the closed-loop run (saturated), µs. */
  wrkCpuUs: number;
  steps: ThroughputStep[];
}

export interface StreamingRound {
  ttftP50: number;
  ttftP99: number;
  gapP50: number;
  gapP99: number;
  failed: number;
  streams: number;
}

export interface HeldRun {
  level: number;
  /** Streams with a gap between deltas > 2 × pace. */
  stalled: number;
  /** Streams whose first event took > 2 × pace (queued before the upstream saw them). */
  lateStart: number;
  failed: number;
  gapP99: number;
  ttftP99: number;
  /** Peak RSS of the proxy's process tree during the level, MB. */
  rssMb: number;
  /** CPU per SSE event relayed, µs. */
  cpuUsPerEvent: number;
}

export interface CacheResult {
  available: boolean;
  note: string;
  hitRps?: number;
  hitP99?: number;
  hitErrors?: number;
  helloRps?: number;
  helloP99?: number;
}

export interface SoakResult {
  seconds: number;
  rate: number;
  streamsHeld: number;
  sent: number;
  errors: number;
  streamFailures: number;
  p99: number;
  rssStartMb: number;
  rssEndMb: number;
  rssPeakMb: number;
  /** RSS growth from after warm-up to the end. */
  growth: number;
}

export interface Results {
  meta: {
    date: string;
    command: string;
    commit: string;
    dirty: boolean;
    node: string;
    machine: string;
    loadBefore: string;
    loadAfter: string;
    quick: boolean;
    gatewayBuild: string;
    durationS: number;
    notes: string[];
  };
  available: PerSystem<boolean>;
  /** Each proxy's RSS (process tree) once started and warmed up, MB. */
  rssIdle: PerSystem<number>;
  unavailable: PerSystem<string>;
  latency: PerSystem<LatencyRound[]>;
  throughput: PerSystem<ThroughputRun[]>;
  streaming: PerSystem<StreamingRound[]>;
  held: PerSystem<HeldRun[]>;
  /**
   * Diagnostic: our gateway again with a wide upstream pool, run when the default pool made
   * streams wait (late starts), to separate the pool limit from the relay's own cost.
   */
  heldWide: { connections: number; runs: HeldRun[] } | undefined;
  cache: CacheResult | undefined;
  soak: SoakResult | undefined;
  plan: Plan;
}
