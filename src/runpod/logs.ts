import { errorFromResponse, redact, unavailableError } from './errors.js';
import type { Transport } from './http.js';

/** One pod log line as `GET /v2/pods/{id}/logs` sends it (`data: {"ts","source","line"}`). */
export interface PodLogLine {
  ts: string;
  source: string;
  line: string;
}

/** A log line longer than this is cut: lines are evidence to show, not data to keep. */
const MAX_LINE = 2_000;

/**
 * Reads the backfill of a pod's log stream (Server-Sent Events that stay open to follow the
 * log): every `data:` event until no line came for `idleMs`, or `timeLimitMs` in all, or
 * `maxLines`; then the stream is closed. Bounded in time and size whatever the server does.
 * Failures are RunPodErrors like every other call (the key redacted).
 */
export async function readPodLogs(
  transport: Transport,
  path: string,
  query: Record<string, string | undefined>,
  limits: { timeLimitMs: number; idleMs: number; maxLines: number },
): Promise<PodLogLine[]> {
  const { options } = transport;
  const url = new URL(options.baseUrl + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  const operation = `GET ${path.replace(/\/v2\/pods\/[^/]+/, '/v2/pods/{id}')}`;
  const controller = new AbortController();
  const overall = setTimeout(() => controller.abort(), limits.timeLimitMs);
  const lines: PodLogLine[] = [];
  try {
    let response: Response;
    try {
      response = await options.fetch(url, {
        headers: {
          authorization: `Bearer ${options.apiKey}`,
          accept: 'text/event-stream',
          'user-agent': 'runpod-llm-manager',
        },
        signal: controller.signal,
      });
    } catch (err) {
      throw unavailableError(
        operation,
        controller.signal.aborted ? 'timeout' : 'network',
        limits.timeLimitMs,
        err,
        transport.secrets,
      );
    }
    if (response.status !== 200) {
      const body = await response.text().catch(() => '');
      throw errorFromResponse({ status: response.status, body, operation }, transport.secrets);
    }
    // The fetch types leave a body's chunks as `any`; a fetch body carries bytes.
    const reader = (response.body as ReadableStream<Uint8Array> | null)?.getReader();
    if (reader === undefined) return lines;
    const decoder = new TextDecoder();
    let buffer = '';
    let idle: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(), limits.idleMs);
    };
    armIdle();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut = buffer.indexOf('\n\n');
        while (cut !== -1) {
          const event = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = event
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          const parsed = parseEvent(data, transport.secrets);
          if (parsed !== undefined) lines.push(parsed);
          if (lines.length >= limits.maxLines) return lines;
          cut = buffer.indexOf('\n\n');
        }
        if (buffer.length > 1_000_000) return lines; // no event boundary in a megabyte: not a log stream
        armIdle();
      }
    } catch {
      // Aborted by the idle or overall limit: what was read is the answer.
    } finally {
      clearTimeout(idle);
      controller.abort();
    }
    return lines;
  } finally {
    clearTimeout(overall);
  }
}

function parseEvent(data: string, secrets: readonly string[]): PodLogLine | undefined {
  if (data === '') return undefined;
  try {
    const value = JSON.parse(data) as { ts?: unknown; source?: unknown; line?: unknown };
    if (typeof value.line !== 'string') return undefined;
    return {
      ts: typeof value.ts === 'string' ? value.ts : '',
      source: typeof value.source === 'string' ? value.source : '',
      line: redact(value.line, secrets).slice(0, MAX_LINE),
    };
  } catch {
    return undefined;
  }
}
