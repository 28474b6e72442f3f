import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PodStore } from './pods.js';

/**
 * The emulator's stand-in for RunPod's HTTP proxy (`https://{podId}-{port}.proxy.runpod.net`).
 *
 * One loopback server serves every pod under a path prefix, so the pod-URL template stays a plain
 * string substitution: `http://127.0.0.1:<P>/proxy/{podId}-{port}`. A request to
 * `/proxy/abc123-8000/v1/models?x=1` reaches pod abc123's vLLM stand-in as `/v1/models?x=1`.
 * Like the real proxy it has no authentication of its own and answers 502 while nothing listens
 * on the port (pod not RUNNING, model still loading, wrong port, unknown pod).
 */
export const POD_PROXY_PREFIX = '/proxy/';

const ROUTE = /^\/proxy\/([a-z0-9]+)-(\d{1,5})(\/.*)?$/i;

export function createPodProxyHandler(store: PodStore): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
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
  const body = '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>';
  res.writeHead(502, { 'content-type': 'text/html', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}
