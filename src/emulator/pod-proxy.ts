import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PodStore } from './pods.js';

/*
 * The emulator's stand-in for RunPod's HTTP proxy (`https://{podId}-{port}.proxy.runpod.net`).
 *
 * One loopback server serves every pod under a path prefix, so the pod-URL template stays a plain
 * string substitution: `http://127.0.0.1:<P>/proxy/{podId}-{port}`. A request to
 * `/proxy/abc123-8000/v1/models?x=1` reaches pod abc123's vLLM stand-in as `/v1/models?x=1`.
 * Like the real proxy it has no authentication of its own and answers 502 while nothing listens
 * on the port (pod not RUNNING, model still loading, wrong port, unknown pod).
 */

const ROUTE = /^\/proxy\/([a-z0-9]+)-(\d{1,5})(\/.*)?$/i;

export interface PodProxyOptions {
  /**
   * Cloudflare's limit in front of RunPod's pod URLs: a request whose origin sends no response
   * byte for this long is answered 524 (docs/runpod-contract.md: 100 s). Default 100 000 ms; tests shorten
   * it (`EMULATOR_PROXY_IDLE_LIMIT` seconds for `runpod-llm emulator`). 0 disables it.
   */
  idleLimitMs?: number;
}

/** Cloudflare's 100 s proxy read timeout (docs: pods/configuration/expose-ports). */
export const DEFAULT_PROXY_IDLE_LIMIT_MS = 100_000;

export function createPodProxyHandler(
  store: PodStore,
  options: PodProxyOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const idleLimitMs = options.idleLimitMs ?? DEFAULT_PROXY_IDLE_LIMIT_MS;
  if (!(idleLimitMs >= 0)) throw new TypeError(`idleLimitMs must be >= 0, got ${idleLimitMs}`);
  return (req, res) => {
    if (idleLimitMs > 0) enforceIdleLimit(req, res, idleLimitMs);
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const pathname = q === -1 ? raw : raw.slice(0, q);
    const search = q === -1 ? '' : raw.slice(q);
    const match = ROUTE.exec(pathname);
    if (match === null) return badGateway(res);
    const standin = store.standinFor(match[1] ?? '', Number(match[2]));
    if (standin === undefined) return badGateway(res);
    standin.handler(req, res, `${match[3] ?? '/'}${search}`);
  };
}

/** What RunPod's proxy (Cloudflare) answers while the pod's port has no listener. */
function badGateway(res: ServerResponse): void {
  const body =
    '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>';
  res.writeHead(502, { 'content-type': 'text/html', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/**
 * Cloudflare's read timeout, on the response the stand-in writes: no byte within the limit of
 * the request (or of the previous byte) ends it. Before the headers that is a 524 with
 * Cloudflare's kind of page, and the stand-in's later answer goes nowhere, as vLLM's does behind
 * the real proxy (it keeps generating for nobody). After the headers (a stream gone quiet) the
 * connection is cut: no status can be sent any more.
 */
function enforceIdleLimit(req: IncomingMessage, res: ServerResponse, limitMs: number): void {
  const writeHead = res.writeHead.bind(res);
  const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(expire, limitMs);
    timer.unref();
  };
  const expire = (): void => {
    if (res.writableEnded || res.destroyed) return;
    timedOut = true;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = cloudflare524(req.headers.host ?? 'proxy.runpod.net');
    writeHead(524, {
      'content-type': 'text/html; charset=UTF-8',
      'content-length': String(Buffer.byteLength(body)),
      server: 'cloudflare',
      'cf-ray': `${randomBytes(8).toString('hex')}-IAD`,
      connection: 'close',
    });
    end(body);
  };
  // Only this response object is wrapped: the stand-in keeps calling the usual methods.
  res.writeHead = ((...args: Parameters<ServerResponse['writeHead']>) => {
    if (timedOut) return res;
    arm();
    return writeHead(...args);
  }) as ServerResponse['writeHead'];
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (timedOut) return true;
    arm();
    return write(chunk, ...rest);
  }) as ServerResponse['write'];
  res.end = ((...args: unknown[]) => {
    clearTimeout(timer);
    if (timedOut) return res;
    return end(...args);
  }) as ServerResponse['end'];
  res.once('close', () => clearTimeout(timer));
  arm();
}

/** The shape of Cloudflare's 524 page (title and the error code the way it shows them). */
function cloudflare524(host: string): string {
  const safeHost = host.replace(/[^\w.:-]/g, '');
  return `<!DOCTYPE html>
<html lang="en-US">
<head><title>${safeHost} | 524: A timeout occurred</title><meta charset="UTF-8" /></head>
<body>
<div id="cf-error-details">
<h1><span>A timeout occurred</span> <span>Error code 524</span></h1>
<p>The origin web server timed out responding to this request.</p>
<p>Cloudflare was able to complete a TCP connection to the origin server, but did not receive a timely HTTP response.</p>
</div>
</body>
</html>
`;
}
