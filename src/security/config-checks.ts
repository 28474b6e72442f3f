import { X509Certificate } from 'node:crypto';
import { type Dirent, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isLoopback } from '../config/rules.js';
import type { Config } from '../config/schema.js';

/*
 * Checks of the configuration the gateway runs with, and of the machine around it. Each
 * returns one report item; none of them changes anything.
 */

/** The outcome of one check. */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'unavailable' | 'skip';

export interface ReportItem {
  id: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn/fail. */
  fix?: string;
}

/** What the process checks need to know about this machine (injected by tests). */
export interface MachineFacts {
  /** Effective uid of this process (undefined where the platform has none). */
  uid: number | undefined;
  /** Reads a small file (for /proc); throws like fs does. */
  readFile: (path: string) => Buffer;
  /** True when the pid is alive. */
  alive: (pid: number) => boolean;
  now: () => number;
}

export const realMachine: MachineFacts = {
  uid: typeof process.getuid === 'function' ? process.getuid() : undefined,
  readFile: (path) => readFileSync(path),
  alive: (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  },
  now: () => Date.now(),
};

export function checkAuth(config: Config): ReportItem {
  if (config.auth === 'keys') {
    const source =
      config.api_keys.length > 0
        ? `${config.api_keys.length} configured key(s)`
        : 'the generated key on loopback';
    return { id: 'gateway.auth', status: 'pass', detail: `bearer keys required (${source})` };
  }
  return {
    id: 'gateway.auth',
    status: isLoopback(config.proxy_host) ? 'warn' : 'fail',
    detail: `auth is "none" on ${config.proxy_host}: any local process, a web page included, can use the model`,
    fix: 'remove GATEWAY_AUTH=none (a key is generated on loopback) or set GATEWAY_API_KEYS',
  };
}

export function checkTls(config: Config, machine: MachineFacts): ReportItem {
  const id = 'gateway.tls';
  if (!config.use_https) {
    return isLoopback(config.proxy_host)
      ? {
          id,
          status: 'pass',
          detail: `plain HTTP on loopback (${config.proxy_host}): traffic never leaves this machine`,
        }
      : {
          id,
          status: 'warn',
          detail: `plain HTTP on ${config.proxy_host}: gateway keys and prompts cross the network in clear text`,
          fix: 'set USE_HTTPS=true with SSL_CERT and SSL_KEY, or bind to 127.0.0.1 behind a TLS proxy',
        };
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(machine.readFile(config.ssl_cert ?? ''));
  } catch (err) {
    return {
      id,
      status: 'fail',
      detail: `TLS is on but the certificate ${config.ssl_cert ?? '(unset)'} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      fix: 'point SSL_CERT to a PEM certificate',
    };
  }
  let keyMode: number | undefined;
  try {
    keyMode = config.ssl_key === undefined ? undefined : modeOf(config.ssl_key);
  } catch (err) {
    return {
      id,
      status: 'fail',
      detail: `TLS is on but the private key ${config.ssl_key ?? ''} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      fix: 'point SSL_KEY to a PEM private key',
    };
  }
  const daysLeft = Math.floor((Date.parse(cert.validTo) - machine.now()) / 86_400_000);
  if (daysLeft < 0)
    return {
      id,
      status: 'fail',
      detail: `TLS certificate expired on ${cert.validTo}`,
      fix: 'renew the certificate',
    };
  if (keyMode !== undefined && (keyMode & 0o077) !== 0) {
    return {
      id,
      status: 'fail',
      detail: `TLS private key ${config.ssl_key ?? ''} is readable by others (mode ${octal(keyMode)})`,
      fix: `chmod 600 ${config.ssl_key ?? ''}`,
    };
  }
  if (daysLeft < 30)
    return {
      id,
      status: 'warn',
      detail: `TLS on; the certificate expires in ${daysLeft} day(s) (${cert.validTo})`,
      fix: 'renew the certificate',
    };
  return {
    id,
    status: 'pass',
    detail: `TLS on; certificate for ${cert.subject.replace(/\n/g, ', ')} valid until ${cert.validTo}`,
  };
}

export function checkCors(config: Config): ReportItem {
  const origins = config.allowed_origins;
  if (origins.length === 0)
    return { id: 'gateway.cors', status: 'pass', detail: 'no browser origin may call the gateway' };
  const remote = origins.filter((o) => !isLoopback(new URL(o).hostname.replace(/^\[|\]$/g, '')));
  const plain = remote.filter((o) => o.startsWith('http:'));
  if (plain.length > 0) {
    return {
      id: 'gateway.cors',
      status: 'warn',
      detail: `origins over plain HTTP on other hosts may call the gateway: ${plain.join(', ')}`,
      fix: 'allow only https:// origins or localhost (ALLOWED_ORIGINS)',
    };
  }
  return {
    id: 'gateway.cors',
    status: 'pass',
    detail: `exact allow-list, GET/POST only: ${origins.join(', ')}`,
  };
}

export function checkRateLimit(config: Config): ReportItem {
  const perSecond = config.rate_limit_requests / config.rate_limit_window;
  const detail = `${config.rate_limit_requests} requests per ${config.rate_limit_window} s per client IP without a valid key, ${config.key_rate_limit_requests} per key (sliding window)`;
  if (perSecond > 10)
    return {
      id: 'gateway.rate_limit',
      status: 'warn',
      detail: `${detail}: over 10 per second barely slows key guessing`,
      fix: 'lower RATE_LIMIT_REQUESTS or raise RATE_LIMIT_WINDOW',
    };
  return { id: 'gateway.rate_limit', status: 'pass', detail };
}

/**
 * The state directory is 0700 and everything in it 0600 (directories 0700): it holds the
 * gateway key and the per-pod keys. Walks at most three levels and 2,000 entries.
 */
export function checkStatePermissions(home: string): ReportItem {
  const id = 'state.permissions';
  let mode: number;
  try {
    mode = modeOf(home);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { id, status: 'skip', detail: `${home} does not exist yet (created 0700 on first use)` };
    return {
      id,
      status: 'fail',
      detail: `cannot inspect ${home} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    };
  }
  const loose: string[] = [];
  if ((mode & 0o077) !== 0) loose.push(`${home} (${octal(mode)}, want 0700)`);
  let seen = 0;
  const walk = (dir: string, depth: number): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (++seen > 2000) return;
      const path = join(dir, entry.name);
      if (entry.isSymbolicLink()) continue;
      const m = modeOf(path);
      if (entry.isDirectory()) {
        if ((m & 0o077) !== 0) loose.push(`${path} (${octal(m)}, want 0700)`);
        if (depth < 3) walk(path, depth + 1);
      } else if ((m & 0o077) !== 0) loose.push(`${path} (${octal(m)}, want 0600)`);
    }
  };
  walk(home, 1);
  if (loose.length > 0) {
    return {
      id,
      status: 'fail',
      detail: `readable by other users: ${loose.slice(0, 5).join('; ')}${loose.length > 5 ? ` and ${loose.length - 5} more` : ''}`,
      fix: `chmod 700 ${home} and chmod 600 the files in it`,
    };
  }
  return {
    id,
    status: 'pass',
    detail: `${home} is 0700 and its ${seen} entr${seen === 1 ? 'y is' : 'ies are'} private`,
  };
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}
