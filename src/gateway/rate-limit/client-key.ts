import { isIPv4, isIPv6 } from 'node:net';

/**
 * The limiter key of a client address. IPv6 clients are grouped by their /64: one host usually
 * owns a whole /64 and can rotate through it freely, so limiting single addresses would not
 * limit anyone. IPv4-mapped IPv6 addresses count as the IPv4 address.
 */
export function clientKey(ip: string): string {
  // Fast path: an IPv4 address has no colon (spares isIPv6's long regular expression per request).
  if (!ip.includes(':')) return ip;
  if (ip.startsWith('::ffff:') && isIPv4(ip.slice(7))) return ip.slice(7);
  if (!isIPv6(ip)) return ip;
  return `${expandIPv6(ip).slice(0, 4).join(':')}::/64`;
}

export function expandIPv6(ip: string): string[] {
  const clean = ip.split('%')[0] as string;
  const [left = '', right] = clean.split('::');
  const head = left === '' ? [] : left.split(':');
  const tail = right === undefined || right === '' ? [] : right.split(':');
  const fill = right === undefined ? [] : Array<string>(8 - head.length - tail.length).fill('0');
  return [...head, ...fill, ...tail].map((group) => group.toLowerCase().replace(/^0+(?=.)/, ''));
}
