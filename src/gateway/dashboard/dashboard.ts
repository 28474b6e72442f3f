import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

/*
 * `GET /dashboard`: one page, its script and its style, served from files shipped in the
 * package (no CDN, no inline code), under a CSP that allows nothing but this origin. The page
 * needs no key to load; it asks for the gateway key and sends it as a header to
 * `/metrics?format=json`. Only these three fixed names are served: no path from the URL ever
 * reaches the filesystem.
 */

const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSETS = [
  ['/dashboard', 'index.html', 'text/html; charset=utf-8'],
  ['/dashboard/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/dashboard/app.css', 'app.css', 'text/css; charset=utf-8'],
] as const;

export function registerDashboard(app: FastifyInstance): void {
  const dir = new URL('./assets/', import.meta.url);
  for (const [path, file, type] of ASSETS) {
    const body = readFileSync(new URL(file, dir));
    app.get(path, { config: { kind: 'public', label: 'dashboard' } }, async (_request, reply) =>
      reply
        .header('content-security-policy', DASHBOARD_CSP)
        .header('cache-control', 'no-cache')
        .type(type)
        .send(body),
    );
  }
  // Browsers ask for it on their own; an empty answer beats a 404 in every console.
  app.get('/favicon.ico', { config: { kind: 'public', label: 'dashboard' } }, async (_request, reply) =>
    reply.code(204).send(),
  );
}
