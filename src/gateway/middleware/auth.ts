import { hash, timingSafeEqual } from 'node:crypto';

/*
 * Bearer-key check in constant time. Keys are compared as SHA-256 digests, so the comparison
 * has a fixed length (no length oracle) and every configured key is compared on every call (no
 * early exit that would tell which key came close).
 */

/** The outcome of one bearer-key check. */
export type AuthResult =
  { ok: true; keyId: string } | { ok: false; reason: 'missing' | 'scheme' | 'invalid' };

/**
 * A verifier for the configured keys: SHA-256 digests compared in constant time, every key on every call.
 *
 * @example
 *   const verify = createKeyVerifier(['k_live_0123456789abcdef']);
 *   verify('Bearer k_live_0123456789abcdef'); // { ok: true, keyId: 'key_1a2b3c' }
 */
export function createKeyVerifier(
  keys: readonly string[],
): (authorization: string | undefined) => AuthResult {
  const digests = keys.map((key) => digest(key));
  const ids = digests.map((d) => `key_${d.toString('hex').slice(0, 6)}`);
  return (authorization) => {
    if (authorization === undefined || authorization === '') return { ok: false, reason: 'missing' };
    const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(authorization);
    if (match?.[1] === undefined) return { ok: false, reason: 'scheme' };
    const presented = digest(match[1]);
    let found = -1;
    for (let i = 0; i < digests.length; i++) {
      // Bitwise accumulate, no short-circuit: the loop takes the same time whichever key matches.
      if (timingSafeEqual(presented, digests[i] as Buffer)) found = i;
    }
    return found >= 0 ? { ok: true, keyId: ids[found] as string } : { ok: false, reason: 'invalid' };
  };
}

/** One-shot SHA-256 (no Hash object per call); always 32 bytes, so timingSafeEqual never throws. */
function digest(value: string): Buffer {
  return hash('sha256', value, 'buffer');
}
