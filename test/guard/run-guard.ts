import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The guard as the pod runs it: this machine's python3 on src/guard/guard.py. */
export const GUARD_PY = fileURLToPath(new URL('../../src/guard/guard.py', import.meta.url));

export interface RunningGuard {
  port: number;
  url: string;
  /** Everything the guard wrote to stderr so far, split into lines. */
  lines(): string[];
  /** Resolves with the first stderr line matching `pattern`; the guard logs a request after answering it. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts the guard on 127.0.0.1 with an OS-chosen port and resolves once it says it listens.
 * `args` are python3's (default: the guard's script).
 *
 * @example
 *   const guard = await startGuard({ GUARD_UPSTREAM: pod.url, GUARD_API_KEY: 'k'.repeat(20) });
 */
export async function startGuard(
  env: Record<string, string>,
  args: readonly string[] = [GUARD_PY],
): Promise<RunningGuard> {
  const child = spawn('python3', args, {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PYTHONDONTWRITEBYTECODE: '1',
      GUARD_LISTEN_HOST: '127.0.0.1',
      GUARD_LISTEN_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`guard did not start: ${stderr}`)), 10_000);
    const onData = (): void => {
      const match = /listening on [^:]+:(\d+)/.exec(stderr);
      if (match === null) return;
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      resolve(Number(match[1]));
    };
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`guard exited with ${String(code)}: ${stderr}`));
    });
  });
  const lines = (): string[] => stderr.split('\n').filter((l) => l !== '');
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    lines,
    waitForLine: async (pattern, timeoutMs = 5_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = lines().find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (Date.now() > deadline) throw new Error(`no guard line matched ${String(pattern)}:\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    close: () => stop(child),
  };
}

export function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The bytes exactly as received. */
  raw: string;
}

/**
 * Sends `request` byte for byte (no URL normalisation, unlike fetch) and reads until the server
 * closes; the request should say `Connection: close`, or the server answers with it.
 */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('raw request timed out')));
    socket.on('connect', () => socket.write(request));
    socket.on('data', (c: Buffer) => chunks.push(c));
    // The server may close with unread request bytes (a refused body): a reset after the answer is fine.
    socket.on('error', (err) => (chunks.length > 0 ? finish() : reject(err)));
    socket.on('end', () => finish());
    let done = false;
    function finish(): void {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(parseResponse(Buffer.concat(chunks).toString('latin1')));
    }
  });
}

export function parseResponse(raw: string): RawResponse {
  const split = raw.indexOf('\r\n\r\n');
  const head = split === -1 ? raw : raw.slice(0, split);
  const [statusLine = '', ...fields] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const field of fields) {
    const at = field.indexOf(':');
    headers[field.slice(0, at).trim().toLowerCase()] = field.slice(at + 1).trim();
  }
  let body = split === -1 ? '' : raw.slice(split + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  return { status: Number(statusLine.split(' ')[1]), headers, body, raw };
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (eol === -1 || Number.isNaN(size) || size === 0) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 4 + size);
  }
}

/** A request head (and optional body) with `Connection: close`. */
export function httpRequest(
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body = '',
): string {
  const fields = Object.entries({ host: 'pod', connection: 'close', ...headers }).map(
    ([k, v]) => `${k}: ${v}\r\n`,
  );
  return `${method} ${target} HTTP/1.1\r\n${fields.join('')}\r\n${body}`;
}
