import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/*
 * Cloudflare in front of RunPod's API, as far as the pod's self-stop meets it (docs/runpod-contract.md, "Pod-scoped
 * keys"): a request it blocks gets 403 with a plain-text "error code: 1010" body and never
 * reaches the API; every other request is passed to `apiUrl` unchanged. `block` decides by
 * User-Agent (the reported trigger is urllib's default one). Every User-Agent seen is recorded.
 */

/** A running Cloudflare stand-in and what it saw. */
export interface CloudflareFront {
  url: string;
  userAgents: (string | undefined)[];
  close(): Promise<void>;
}

export async function startCloudflareFront(
  apiUrl: string,
  block: (userAgent: string | undefined) => boolean,
): Promise<CloudflareFront> {
  const target = new URL(apiUrl);
  const userAgents: (string | undefined)[] = [];
  const server: Server = createServer((req, res) => {
    const ua = req.headers['user-agent'];
    userAgents.push(ua);
    if (block(ua)) {
      req.resume();
      res
        .writeHead(403, { 'content-type': 'text/plain; charset=UTF-8', server: 'cloudflare' })
        .end('error code: 1010');
      return;
    }
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    userAgents,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
