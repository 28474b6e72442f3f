/*
 * SPDX licence identifiers by what they ask of a project that ships them. The table covers the
 * licences found on npm in practice (and their deprecated spellings); anything else is
 * `unknown`, which the default policy refuses until a person has read it.
 *
 * - permissive: keep the notice (MIT, BSD, Apache-2.0, ISC, …);
 * - weak copyleft: changes to *that* component must be shared (LGPL, MPL, EPL, CDDL, …);
 * - strong copyleft: the whole work that includes it must be shared under it (GPL, AGPL, …).
 */

/** What a licence asks of a project that ships it. */
export type LicenseCategory = 'permissive' | 'weak-copyleft' | 'strong-copyleft' | 'unknown';

const PERMISSIVE = [
  '0BSD',
  'AFL-2.1',
  'AFL-3.0',
  'Apache-1.1',
  'Apache-2.0',
  'Artistic-2.0',
  'BlueOak-1.0.0',
  'BSD-1-Clause',
  'BSD-2-Clause',
  'BSD-2-Clause-Patent',
  'BSD-3-Clause',
  'BSD-3-Clause-Clear',
  'BSD-4-Clause',
  'BSL-1.0',
  'CC-BY-3.0',
  'CC-BY-4.0',
  'CC0-1.0',
  'curl',
  'ISC',
  'MIT',
  'MIT-0',
  'MIT-CMU',
  'NCSA',
  'PostgreSQL',
  'PSF-2.0',
  'Python-2.0',
  'Unicode-3.0',
  'Unicode-DFS-2016',
  'Unlicense',
  'UPL-1.0',
  'W3C',
  'WTFPL',
  'X11',
  'Zlib',
  'zlib-acknowledgement',
];
const WEAK_COPYLEFT = [
  'CDDL-1.0',
  'CDDL-1.1',
  'CPL-1.0',
  'EPL-1.0',
  'EPL-2.0',
  'LGPL-2.0-only',
  'LGPL-2.0-or-later',
  'LGPL-2.1-only',
  'LGPL-2.1-or-later',
  'LGPL-3.0-only',
  'LGPL-3.0-or-later',
  'MPL-1.1',
  'MPL-2.0',
  'MPL-2.0-no-copyleft-exception',
  'MS-RL',
  'OFL-1.1',
];
const STRONG_COPYLEFT = [
  'AGPL-1.0-only',
  'AGPL-1.0-or-later',
  'AGPL-3.0-only',
  'AGPL-3.0-or-later',
  'CC-BY-SA-3.0',
  'CC-BY-SA-4.0',
  'EUPL-1.1',
  'EUPL-1.2',
  'GPL-1.0-only',
  'GPL-1.0-or-later',
  'GPL-2.0-only',
  'GPL-2.0-or-later',
  'GPL-3.0-only',
  'GPL-3.0-or-later',
  'OSL-3.0',
  'RPL-1.5',
  'Sleepycat',
  'SSPL-1.0',
];

/** Deprecated SPDX ids still common in package.json files → their current id. */
const DEPRECATED: Record<string, string> = {
  'AGPL-1.0': 'AGPL-1.0-only',
  'AGPL-3.0': 'AGPL-3.0-only',
  'GPL-1.0': 'GPL-1.0-only',
  'GPL-1.0+': 'GPL-1.0-or-later',
  'GPL-2.0': 'GPL-2.0-only',
  'GPL-2.0+': 'GPL-2.0-or-later',
  'GPL-3.0': 'GPL-3.0-only',
  'GPL-3.0+': 'GPL-3.0-or-later',
  'LGPL-2.0': 'LGPL-2.0-only',
  'LGPL-2.0+': 'LGPL-2.0-or-later',
  'LGPL-2.1': 'LGPL-2.1-only',
  'LGPL-2.1+': 'LGPL-2.1-or-later',
  'LGPL-3.0': 'LGPL-3.0-only',
  'LGPL-3.0+': 'LGPL-3.0-or-later',
};

const CATEGORY = new Map<string, { id: string; category: LicenseCategory }>();
for (const [ids, category] of [
  [PERMISSIVE, 'permissive'],
  [WEAK_COPYLEFT, 'weak-copyleft'],
  [STRONG_COPYLEFT, 'strong-copyleft'],
] as const) {
  for (const id of ids) CATEGORY.set(id.toLowerCase(), { id, category });
}

/** The canonical spelling of a known SPDX id (case-insensitive; deprecated ids mapped), else undefined. */
export function canonicalId(id: string): string | undefined {
  const key = id.toLowerCase();
  const deprecated = Object.entries(DEPRECATED).find(([old]) => old.toLowerCase() === key)?.[1];
  if (deprecated !== undefined) return deprecated;
  const known = CATEGORY.get(key);
  if (known !== undefined) return known.id;
  // `X+` means "X or any later version": the category is X's.
  if (key.endsWith('+')) return CATEGORY.get(key.slice(0, -1))?.id;
  return undefined;
}

export function categoryOf(id: string): LicenseCategory {
  const canonical = canonicalId(id);
  return canonical === undefined ? 'unknown' : (CATEGORY.get(canonical.toLowerCase())?.category ?? 'unknown');
}

/** The default allow-list: every permissive licence in the table. */
export const DEFAULT_ALLOWED: readonly string[] = Object.freeze([...PERMISSIVE]);

/** Most to least permissive; `unknown` ranks as the strictest (it may be anything). */
export const CATEGORY_RANK: Record<LicenseCategory, number> = {
  permissive: 0,
  'weak-copyleft': 1,
  'strong-copyleft': 2,
  unknown: 3,
};
