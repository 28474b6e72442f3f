/**
 * One HTTP request whose status is all that matters (body discarded, redirects not followed),
 * within a time limit: `{ status }`, or `{ error }` naming why there was none (`ECONNREFUSED`,
 * `no answer within 5000 ms`, …). For checks that must report a failure, never throw it.
 *
 * @example
 *   const r = await probeStatus(fetch, `${podUrl}/runpod-llm/lease`, { method: 'POST', headers }, 5_000);
 *   if ('status' in r && r.status === 204) …
 */
export async function probeStatus(
  fetcher: typeof globalThis.fetch,
  url: string,
  init: Omit<RequestInit, 'signal' | 'redirect'>,
  timeoutMs: number,
): Promise<{ status: number } | { error: string }> {
  try {
    const res = await fetcher(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return { status: res.status };
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'TimeoutError') return { error: `no answer within ${timeoutMs} ms` };
    return { error: (err as { cause?: { code?: string } }).cause?.code ?? name };
  }
}
