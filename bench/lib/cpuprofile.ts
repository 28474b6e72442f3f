/*
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) into the few views we need to find what
 * bounds the gateway: self time per function, time per package (our code, fastify, pino, undici,
 * node internals, GC), and inclusive time of our own functions.
 */

/** The parts of a V8 `.cpuprofile` this reader uses. */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    children?: number[];
  }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Row {
  name: string;
  where: string;
  category: string;
  ms: number;
  /** Share of busy (non-idle) time. */
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  selfTop: Row[];
  categories: Array<{ category: string; ms: number; share: number }>;
  oursInclusive: Row[];
}

/** Where a script lives, shortened: `fastify/lib/route.js`, `ours: gateway/hooks.js`, `node:internal/...`. */
export function locate(url: string, root: string): { where: string; category: string } {
  if (url === '') return { where: '', category: 'v8/native' };
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length);
    const parts = rest.split('/');
    const pkg = parts[0]?.startsWith('@') === true ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? rest);
    return { where: rest, category: pkg };
  }
  if (path.startsWith('node:')) return { where: path, category: 'node internals' };
  const rel = path.startsWith(root) ? path.slice(root.length) : path;
  const ours = /(?:^|\/)(?:bench\/out\/dist|dist|src)\/(.*)$/.exec(rel);
  if (ours !== null) return { where: ours[1] ?? rel, category: 'our code' };
  return { where: rel, category: 'other' };
}

const SPECIAL = new Set(['(garbage collector)', '(idle)', '(program)', '(root)']);

export function summarizeProfile(profile: CpuProfile, root: string, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  // A sample lasts until the next one; the last one gets the average interval.
  const avg = samples.length > 0 ? (profile.endTime - profile.startTime) / samples.length : 0;
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number;
    const dur = i + 1 < timeDeltas.length ? (timeDeltas[i + 1] as number) : avg;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dur));
  }
  const label = (id: number) => {
    const n = byId.get(id);
    const fn = n?.callFrame.functionName ?? '';
    const { where, category } = locate(n?.callFrame.url ?? '', root);
    const special = SPECIAL.has(fn);
    return {
      name: fn === '' ? '(anonymous)' : fn,
      where: where === '' ? '' : `${where}:${(n?.callFrame.lineNumber ?? 0) + 1}`,
      category: special ? fn : category,
    };
  };

  let totalUs = 0;
  let idleUs = 0;
  const selfAgg = new Map<string, Row>();
  const catAgg = new Map<string, number>();
  for (const [id, us] of selfUs) {
    totalUs += us;
    const l = label(id);
    if (l.category === '(idle)') {
      idleUs += us;
      continue;
    }
    const key = `${l.name}@${l.where}`;
    const row = selfAgg.get(key) ?? { ...l, ms: 0, share: 0 };
    row.ms += us / 1000;
    selfAgg.set(key, row);
    catAgg.set(l.category, (catAgg.get(l.category) ?? 0) + us / 1000);
  }
  const busyMs = (totalUs - idleUs) / 1000;
  const share = (ms: number) => (busyMs > 0 ? ms / busyMs : 0);

  // Inclusive time of our functions: a node's self time counts for every distinct our-code
  // function on its stack (once each, so recursion does not double it).
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, Row>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(cur);
      if (l.category !== 'our code') continue;
      const key = `${l.name}@${l.where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const row = incl.get(key) ?? { ...l, ms: 0, share: 0 };
      row.ms += us / 1000;
      incl.set(key, row);
    }
  }
  const finish = (rows: Iterable<Row>) =>
    [...rows]
      .map((r) => ({ ...r, share: share(r.ms) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top);
  return {
    totalMs: totalUs / 1000,
    busyMs,
    selfTop: finish(selfAgg.values()),
    categories: [...catAgg]
      .map(([category, ms]) => ({ category, ms, share: share(ms) }))
      .sort((a, b) => b.ms - a.ms),
    oursInclusive: finish(incl.values()),
  };
}

/** Markdown tables of a summary. */
export function profileMarkdown(
  title: string,
  s: ProfileSummary,
  topSelf = 20,
  topCats = 12,
  topOurs = 12,
): string {
  const pct = (f: number) => `${(f * 100).toFixed(1)} %`;
  const lines = [
    `#### ${title}`,
    '',
    `Busy ${(s.busyMs / 1000).toFixed(1)} s of ${(s.totalMs / 1000).toFixed(1)} s sampled (${pct(s.totalMs > 0 ? s.busyMs / s.totalMs : 0)}).`,
    '',
  ];
  lines.push('| where the CPU went (self time) | share of busy |', '|---|---:|');
  for (const c of s.categories.slice(0, topCats)) lines.push(`| ${c.category} | ${pct(c.share)} |`);
  lines.push('', '| top self-time functions | where | share |', '|---|---|---:|');
  for (const r of s.selfTop.slice(0, topSelf))
    lines.push(`| \`${r.name}\` | ${r.where === '' ? r.category : `\`${r.where}\``} | ${pct(r.share)} |`);
  lines.push('', '| our functions, inclusive | where | share |', '|---|---|---:|');
  for (const r of s.oursInclusive.slice(0, topOurs))
    lines.push(`| \`${r.name}\` | \`${r.where}\` | ${pct(r.share)} |`);
  return `${lines.join('\n')}\n`;
}
