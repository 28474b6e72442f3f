/**
 * Security headers as data: option → header → default. OWASP's current advice where it differs
 * from the original Python tool: `X-XSS-Protection: 0` (the old XSS auditor could be abused to leak data and is
 * gone from browsers; CSP is the protection), `X-Frame-Options: DENY` (helmet's default is
 * SAMEORIGIN). HSTS only over TLS: over plain HTTP browsers ignore it and it would only mislead.
 */
export const API_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'x-xss-protection': '0',
  'referrer-policy': 'strict-origin-when-cross-origin',
  'permissions-policy':
    'accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), usb=(), browsing-topics=()',
  'cross-origin-opener-policy': 'same-origin',
  // API answers are data, never a document: nothing may load or frame them.
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  // API responses are private and per-request; streams override with no-cache.
  'cache-control': 'no-store',
};

export const HSTS_HEADER = { 'strict-transport-security': 'max-age=31536000; includeSubDomains' } as const;

/** The headers for every response of a gateway served over `tls` or plain HTTP. */
export function securityHeaders(tls: boolean): Readonly<Record<string, string>> {
  return Object.freeze(tls ? { ...API_SECURITY_HEADERS, ...HSTS_HEADER } : { ...API_SECURITY_HEADERS });
}
