import type { Cloud, GpuType } from '../../runpod/schemas.js';
import { EXIT } from '../exit-codes.js';
import { usd } from '../format.js';
import { type CliIo, line } from '../io.js';
import { loadManagerContext, runpodClient } from '../manager-context.js';
import type { CatalogFlags } from '../command-options.js';

export interface CatalogRow {
  id: string;
  name: string;
  memoryGb: number;
  securePerHr: number | null;
  communityPerHr: number | null;
  /** Stock on the chosen cloud (NONE/LOW/MEDIUM/HIGH). */
  stock: string | null;
  /** In the configured `gpu_types`. */
  configured: boolean;
}

/**
 * `runpod-llm catalog [--json] [--min-vram GB] [--cloud SECURE|COMMUNITY]`: GPU types with VRAM,
 * $/h on each cloud and stock, cheapest first; checks the configured GPU ids against it and
 * exits 2 when some are unknown (a typo would otherwise surface only at `up`).
 */
export async function runCatalogCommand(flags: CatalogFlags, io: CliIo): Promise<number> {
  const ctx = loadManagerContext(io, { 'manager.cloud': flags.cloud }, flags.config);
  const cloud: Cloud = ctx.config.manager.cloud;
  const gpus = await runpodClient(ctx, io.env).listGpuTypes({ includeAvailability: true, cloud });
  const configured = ctx.config.manager.gpu_types;
  const known = new Set(gpus.map((g) => g.id));
  const unknown = configured.filter((id) => !known.has(id));
  const rows = gpus
    .filter((g) => flags.minVram === undefined || g.memory >= flags.minVram)
    .map((g) => toRow(g, configured))
    .sort(
      (a, b) =>
        (price(a, cloud) ?? Infinity) - (price(b, cloud) ?? Infinity) ||
        b.memoryGb - a.memoryGb ||
        a.id.localeCompare(b.id),
    );

  if (flags.json === true) {
    line(io.stdout, JSON.stringify({ cloud, gpus: rows, unknownConfiguredIds: unknown }, null, 2));
  } else {
    const width = Math.max(4, ...rows.map((r) => r.id.length));
    line(io.stdout, `${'GPU id'.padEnd(width)}  VRAM    secure/h  community/h  stock (${cloud})`);
    for (const r of rows) {
      const cell = (v: number | null): string => (v === null ? '-' : usd(v));
      line(
        io.stdout,
        `${r.id.padEnd(width)}  ${`${r.memoryGb} GB`.padEnd(6)}  ${cell(r.securePerHr).padStart(8)}  ${cell(r.communityPerHr).padStart(11)}  ${r.stock ?? '?'}${r.configured ? '  (configured)' : ''}`,
      );
    }
  }
  if (unknown.length > 0) {
    line(
      io.stderr,
      `error: configured GPU type(s) unknown to RunPod: ${unknown.map((id) => JSON.stringify(id)).join(', ')}`,
    );
    line(
      io.stderr,
      'fix: use ids exactly as listed above in manager.gpu_types / RUNPOD_LLM_GPU_TYPES / --gpu',
    );
    return EXIT.USAGE;
  }
  return 0;
}

function toRow(g: GpuType, configured: readonly string[]): CatalogRow {
  return {
    id: g.id,
    name: g.name,
    memoryGb: g.memory,
    securePerHr: g.secure ? g.price.secure : null,
    communityPerHr: g.community ? g.price.community : null,
    stock: g.availability ?? null,
    configured: configured.includes(g.id),
  };
}

function price(r: CatalogRow, cloud: Cloud): number | null {
  return cloud === 'SECURE' ? r.securePerHr : r.communityPerHr;
}
