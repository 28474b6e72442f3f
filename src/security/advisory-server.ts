import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { AppError } from '../shared/errors.js';
import { SEVERITIES } from './audit-report.js';

/*
 * An offline advisory list served to npm on loopback, so `npm audit` itself (its version
 * matching, its report format) checks the tree against a file instead of the registry.
 *
 * The file has the format of the registry's bulk advisory endpoint
 * (`POST /-/npm/v1/security/advisories/bulk`), keyed by package name:
 *
 *   { "minimist": [ { "id": 1179, "title": "Prototype Pollution", "url": "https://github.com/advisories/GHSA-…",
 *                     "severity": "critical", "vulnerable_versions": "<0.2.4", "cwe": ["CWE-1321"],
 *                     "cvss": { "score": 9.8, "vectorString": "CVSS:3.1/…" } } ] }
 *
 * Package documents (used by npm to suggest fixes) are answered 404: offline, npm reports
 * "no fix known" rather than guessing.
 */

/** One advisory of the offline list, in the shape npm audit reads. */
export interface OfflineAdvisory {
  id: number | string;
  title?: string;
  url?: string;
  severity: string;
  vulnerable_versions: string;
  cwe?: string[];
  cvss?: { score: number; vectorString?: string | null };
}

export type AdvisoryList = Record<string, OfflineAdvisory[]>;

export interface AdvisoryServer {
  /** Registry URL to pass to npm (`--registry`). */
  url: string;
  /** How many bulk advisory requests npm made: 0 means nothing was checked. */
  bulkRequests(): number;
  close(): Promise<void>;
}

/** Reads and checks an advisory list file; a malformed file is a usage error (exit 2). */
export function readAdvisoryList(path: string): AdvisoryList {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new AppError(
      'CLI_USAGE_ADVISORIES',
      `cannot read the advisory list ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      {
        hint: 'pass a JSON file in the npm bulk advisory format ({"<package>": [{"id","severity","vulnerable_versions",...}]})',
      },
    );
  }
  const problem = (why: string): never => {
    throw new AppError('CLI_USAGE_ADVISORIES', `${path} is not an advisory list: ${why}`, {
      hint: 'see SECURITY.md, "Vulnerability audit", for the format',
    });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    problem('expected an object keyed by package name');
  const list: AdvisoryList = Object.create(null) as AdvisoryList;
  for (const [name, advisories] of Object.entries(raw as Record<string, unknown>)) {
    if (!Array.isArray(advisories)) problem(`"${name}" must map to an array of advisories`);
    (advisories as unknown[]).forEach((a, i) => {
      const adv = a as Partial<OfflineAdvisory> | null;
      if (typeof adv !== 'object' || adv === null) problem(`${name}[${i}] is not an object`);
      if (typeof adv?.id !== 'number' && typeof adv?.id !== 'string') problem(`${name}[${i}].id is missing`);
      if (!(SEVERITIES as readonly string[]).includes(String(adv?.severity)))
        problem(`${name}[${i}].severity must be one of ${SEVERITIES.join(', ')}`);
      if (typeof adv?.vulnerable_versions !== 'string' || adv.vulnerable_versions.trim() === '')
        problem(`${name}[${i}].vulnerable_versions must be a semver range`);
    });
    list[name] = advisories as OfflineAdvisory[];
  }
  return list;
}

/** @example const server = await startAdvisoryServer(list); npm audit --registry server.url … ; await server.close(); */
export async function startAdvisoryServer(list: AdvisoryList): Promise<AdvisoryServer> {
  let bulk = 0;
  const server = createServer((req, res) => {
    readBody(req).then(
      (body) => {
        if (req.method !== 'POST' || req.url?.split('?')[0] !== '/-/npm/v1/security/advisories/bulk') {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
          return;
        }
        bulk++;
        let wanted: Record<string, unknown>;
        try {
          wanted = JSON.parse(
            (req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString('utf8'),
          ) as Record<string, unknown>;
        } catch {
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad request"}');
          return;
        }
        const answer: AdvisoryList = {};
        for (const name of Object.keys(wanted))
          if (Object.hasOwn(list, name)) answer[name] = list[name] as OfflineAdvisory[];
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      },
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    bulkRequests: () => bulk,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: IncomingMessage, max = 64 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) req.destroy(new Error('too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
