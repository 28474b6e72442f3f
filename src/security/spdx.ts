import { CATEGORY_RANK, canonicalId, categoryOf, type LicenseCategory } from './license-table.js';

/*
 * SPDX licence expressions (SPDX spec, annex D): `MIT`, `(MIT OR Apache-2.0)`,
 * `Apache-2.0 AND MIT`, `GPL-2.0-or-later WITH Classpath-exception-2.0`, `LicenseRef-x`.
 * Precedence: WITH binds tighter than AND, which binds tighter than OR; operators are
 * case-insensitive in practice (npm accepts `or`).
 */

/** A parsed SPDX licence expression. */
export type SpdxNode =
  | { kind: 'license'; id: string; exception?: string }
  | { kind: 'and' | 'or'; left: SpdxNode; right: SpdxNode };

export class SpdxSyntaxError extends Error {}

/**
 * @example
 *   parseSpdx('(MIT OR Apache-2.0)'); // { kind: 'or', left: { kind: 'license', id: 'MIT' }, right: ... }
 */
export function parseSpdx(expression: string): SpdxNode {
  const tokens = expression.match(/\(|\)|[^\s()]+/g) ?? [];
  let pos = 0;
  const peek = (): string | undefined => tokens[pos];
  const upper = (): string | undefined => peek()?.toUpperCase();
  const fail = (why: string): never => {
    throw new SpdxSyntaxError(`not an SPDX expression (${why}): ${expression}`);
  };
  function primary(): SpdxNode {
    const token = peek();
    if (token === undefined) return fail('ends too early');
    if (token === '(') {
      pos++;
      const inner = or();
      if (peek() !== ')') fail('missing ")"');
      pos++;
      return inner;
    }
    if (token === ')' || ['AND', 'OR', 'WITH'].includes(token.toUpperCase())) fail(`unexpected "${token}"`);
    if (!/^[A-Za-z0-9.+:-]+$/.test(token)) fail(`"${token}" is not a licence id`);
    pos++;
    if (upper() === 'WITH') {
      pos++;
      const exception = peek();
      if (exception === undefined || !/^[A-Za-z0-9.:-]+$/.test(exception)) fail('WITH needs an exception id');
      pos++;
      return { kind: 'license', id: token, exception: exception as string };
    }
    return { kind: 'license', id: token };
  }
  function and(): SpdxNode {
    let left = primary();
    while (upper() === 'AND') {
      pos++;
      left = { kind: 'and', left, right: primary() };
    }
    return left;
  }
  function or(): SpdxNode {
    let left = and();
    while (upper() === 'OR') {
      pos++;
      left = { kind: 'or', left, right: and() };
    }
    return left;
  }
  const node = or();
  if (pos !== tokens.length) fail(`unexpected "${peek() ?? ''}"`);
  return node;
}

/**
 * The category a user of the package is bound by: the most permissive branch of an OR (the
 * user may choose it), the strictest part of an AND (all of them apply).
 */
export function expressionCategory(node: SpdxNode): LicenseCategory {
  if (node.kind === 'license') return categoryOf(node.id);
  const left = expressionCategory(node.left);
  const right = expressionCategory(node.right);
  const pick = node.kind === 'or' ? Math.min : Math.max;
  return CATEGORY_RANK[left] === pick(CATEGORY_RANK[left], CATEGORY_RANK[right]) ? left : right;
}

/**
 * Whether a policy allows the expression: an OR needs one allowed branch, an AND all parts.
 * A licence `WITH` an exception is allowed when the licence is (exceptions only grant more).
 * `allowed` holds canonical ids or lower-cased names.
 */
export function expressionAllowed(node: SpdxNode, allowed: ReadonlySet<string>): boolean {
  if (node.kind === 'license') return allowed.has((canonicalId(node.id) ?? node.id).toLowerCase());
  if (node.kind === 'or')
    return expressionAllowed(node.left, allowed) || expressionAllowed(node.right, allowed);
  return expressionAllowed(node.left, allowed) && expressionAllowed(node.right, allowed);
}

/** Licence ids in the expression, in order. */
export function licenseIds(node: SpdxNode): string[] {
  return node.kind === 'license' ? [node.id] : [...licenseIds(node.left), ...licenseIds(node.right)];
}
