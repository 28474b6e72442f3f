import { Pool, request } from 'undici';
import { chatBody, runStream } from './load.js';
import type { PerSystem } from './results.js';
import type { Target } from './systems.js';

/**
 * Before measuring, each system must answer one chat request and one complete stream. A system
 * that cannot is left out of the run with the reason, rather than measured as a column of errors.
 */
export async function checkTargets(
  targets: Target[],
  unavailable: PerSystem<string>,
  log: (line: string) => void,
): Promise<Target[]> {
  const ok: Target[] = [];
  for (const target of targets) {
    try {
      const res = await request(target.origin + target.path, {
        method: 'POST',
        headers: target.headers,
        body: chatBody('bench-d0'),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200 || !text.includes('chat.completion'))
        throw new Error(`chat answered ${res.statusCode}: ${text.slice(0, 160)}`);
      const pool = new Pool(target.origin, { connections: 1 });
      const stream = await runStream(pool, target, chatBody('bench-d0-n4-p5', { stream: true }), 4).finally(
        () => pool.destroy(),
      );
      if (!stream.ok) throw new Error(`stream failed: ${stream.error ?? 'unknown'}`);
      ok.push(target);
    } catch (err) {
      unavailable[target.name] = `failed the sanity check: ${(err as Error).message}`;
      log(`${target.name} left out: ${unavailable[target.name] ?? ''}`);
    }
  }
  for (const target of ok) await warmUp(target);
  log(`systems ready and warmed up: ${ok.map((t) => t.name).join(', ')}`);
  return ok;
}

/**
 * A few thousand requests and a few streams before anything is measured, so no workload pays
 * for JIT compilation, first connections or lazily built structures; whichever workload runs
 * first (`--only`) then sees the same warm system as in a full run.
 */
export async function warmUp(target: Target): Promise<void> {
  const pool = new Pool(target.origin, { connections: 16 });
  const body = chatBody('bench-d0');
  let left = 3_000;
  const until = performance.now() + 2_000;
  try {
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (left-- > 0 && performance.now() < until) {
          const res = await pool.request({
            path: target.path,
            method: 'POST',
            headers: target.headers,
            body,
          });
          await res.body.dump();
        }
      }),
    );
    await Promise.all(
      Array.from({ length: 16 }, () =>
        runStream(pool, target, chatBody('bench-d0-n16-p1', { stream: true }), 16),
      ),
    );
  } catch {
    // a system that fails here fails its workloads visibly; warming up is best effort
  } finally {
    await pool.destroy();
  }
}
