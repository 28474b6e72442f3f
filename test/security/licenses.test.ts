import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { installedTree } from '../../src/security/installed-tree.js';
import { categoryOf } from '../../src/security/license-table.js';
import { checkLicenses, type LicenseReport } from '../../src/security/licenses.js';
import {
  expressionAllowed,
  expressionCategory,
  parseSpdx,
  SpdxSyntaxError,
} from '../../src/security/spdx.js';
import { isAppError } from '../../src/shared/errors.js';
import { makeProject, REPO } from './fixture-project.js';

/** SECURITY.md "Licence policy". */
describe('SPDX expressions', () => {
  it('parses ids, OR, AND, WITH and parentheses with AND binding tighter than OR', () => {
    assert.deepEqual(parseSpdx('MIT'), { kind: 'license', id: 'MIT' });
    assert.deepEqual(parseSpdx('(MIT OR Apache-2.0)'), {
      kind: 'or',
      left: { kind: 'license', id: 'MIT' },
      right: { kind: 'license', id: 'Apache-2.0' },
    });
    assert.deepEqual(parseSpdx('MIT OR Apache-2.0 AND GPL-3.0-only'), {
      kind: 'or',
      left: { kind: 'license', id: 'MIT' },
      right: {
        kind: 'and',
        left: { kind: 'license', id: 'Apache-2.0' },
        right: { kind: 'license', id: 'GPL-3.0-only' },
      },
    });
    assert.deepEqual(parseSpdx('GPL-2.0-or-later WITH Classpath-exception-2.0'), {
      kind: 'license',
      id: 'GPL-2.0-or-later',
      exception: 'Classpath-exception-2.0',
    });
    assert.equal(parseSpdx('(mit or isc)').kind, 'or');
  });

  it('refuses what is not an expression', () => {
    for (const bad of ['', 'MIT/X11', '(MIT', 'MIT OR', 'AND MIT', 'Apache 2.0 License', 'MIT WITH'])
      assert.throws(() => parseSpdx(bad), SpdxSyntaxError, bad);
  });

  it('an OR is as permissive as its best branch, an AND as strict as its worst part', () => {
    const cases: Array<[string, string]> = [
      ['MIT', 'permissive'],
      ['(MIT OR GPL-3.0-only)', 'permissive'],
      ['(MIT AND GPL-3.0-only)', 'strong-copyleft'],
      ['LGPL-2.1-only', 'weak-copyleft'],
      ['MPL-2.0', 'weak-copyleft'],
      ['GPL-2.0+', 'strong-copyleft'],
      ['GPL-3.0', 'strong-copyleft'],
      ['AGPL-3.0-or-later', 'strong-copyleft'],
      ['Frobnicate-1.0', 'unknown'],
      ['(Frobnicate-1.0 OR ISC)', 'permissive'],
      ['(Frobnicate-1.0 AND ISC)', 'unknown'],
      ['(LGPL-3.0-only OR GPL-3.0-only)', 'weak-copyleft'],
    ];
    for (const [expression, category] of cases)
      assert.equal(expressionCategory(parseSpdx(expression)), category, expression);
    assert.equal(categoryOf('mit'), 'permissive', 'ids are case-insensitive');
  });

  it('a policy allows an OR when one branch is allowed and an AND only when all parts are', () => {
    const allow = new Set(['mit', 'isc']);
    assert.equal(expressionAllowed(parseSpdx('(MIT OR GPL-3.0-only)'), allow), true);
    assert.equal(expressionAllowed(parseSpdx('(MIT AND GPL-3.0-only)'), allow), false);
    assert.equal(expressionAllowed(parseSpdx('(MIT AND ISC)'), allow), true);
    assert.equal(
      expressionAllowed(parseSpdx('GPL-2.0-only WITH Classpath-exception-2.0'), new Set(['gpl-2.0-only'])),
      true,
    );
  });
});

describe('security licenses', () => {
  let project: ReturnType<typeof makeProject>;
  let report: LicenseReport;
  before(() => {
    project = makeProject(
      {
        name: 'fixture',
        version: '1.0.0',
        dependencies: {
          a: '*',
          b: '*',
          c: '*',
          d: '*',
          e: '*',
          f: '*',
          g: '*',
          h: '*',
          i: '*',
          k: '*',
          '@s/x': '*',
        },
        optionalDependencies: { opt: '*' },
        devDependencies: { devonly: '*' },
      },
      {
        a: { name: 'a', version: '1.0.0', license: 'MIT', dependencies: { k: '^2' } },
        'a/node_modules/k': { name: 'k', version: '2.0.0', license: 'BSD-3-Clause' },
        b: { name: 'b', version: '1.0.0', license: '(MIT OR GPL-3.0-only)' },
        c: { name: 'c', version: '1.0.0', license: 'GPL-3.0' },
        d: { name: 'd', version: '1.0.0', license: { type: 'ISC', url: 'https://example.com' } },
        e: { name: 'e', version: '1.0.0', licenses: [{ type: 'MIT' }, { type: 'Apache-2.0' }] },
        f: { name: 'f', version: '1.0.0' },
        g: { name: 'g', version: '1.0.0', license: 'UNLICENSED' },
        h: { name: 'h', version: '1.0.0', license: 'SEE LICENSE IN LICENSE.txt' },
        i: { name: 'i', version: '1.0.0', license: 'LGPL-2.1-only', peerDependencies: { a: '*' } },
        k: { name: 'k', version: '1.0.0', license: 'Apache-2.0' },
        '@s/x': { name: '@s/x', version: '0.1.0', license: 'BlueOak-1.0.0' },
        devonly: { name: 'devonly', version: '1.0.0', license: 'AGPL-3.0-only' },
      },
    );
    report = checkLicenses(project.dir);
  });
  after(() => project.remove());

  it('reads every installed production package, nested copies too, and no devDependency', () => {
    assert.deepEqual(report.packages.map((p) => `${p.name}@${p.version}`).sort(), [
      '@s/x@0.1.0',
      'a@1.0.0',
      'b@1.0.0',
      'c@1.0.0',
      'd@1.0.0',
      'e@1.0.0',
      'f@1.0.0',
      'g@1.0.0',
      'h@1.0.0',
      'i@1.0.0',
      'k@1.0.0',
      'k@2.0.0',
    ]);
    assert.equal(report.packages.find((p) => p.version === '2.0.0')?.path, 'node_modules/a/node_modules/k');
  });

  it('reads legacy licence fields: the {type} object and the licenses array (as OR)', () => {
    assert.equal(report.packages.find((p) => p.name === 'd')?.license, 'ISC');
    assert.equal(report.packages.find((p) => p.name === 'e')?.license, '(MIT OR Apache-2.0)');
  });

  it('names each violation with its package and why', () => {
    const why = Object.fromEntries(report.violations.map((v) => [v.name, v.reason]));
    assert.deepEqual(Object.keys(why).sort(), ['c', 'f', 'g', 'h', 'i']);
    assert.match(why.c ?? '', /GPL-3\.0 is strong copyleft, not in the allow-list/);
    assert.match(why.f ?? '', /no licence declared/);
    assert.match(why.g ?? '', /UNLICENSED/);
    assert.match(why.h ?? '', /custom licence file/);
    assert.match(why.i ?? '', /weak copyleft/);
    assert.deepEqual(report.counts, { permissive: 7, 'weak-copyleft': 1, 'strong-copyleft': 1, unknown: 3 });
  });

  it('takes an allow-list and reviewed package exceptions', () => {
    const custom = checkLicenses(project.dir, {
      allow: ['MIT', 'ISC', 'Apache-2.0', 'BSD-3-Clause', 'BlueOak-1.0.0', 'LGPL-2.1-only'],
      allowPackages: ['c', 'f@1.0.0', 'g@9.9.9'],
    });
    assert.deepEqual(custom.violations.map((v) => v.name).sort(), ['g', 'h']);
    const strict = checkLicenses(project.dir, { allow: ['ISC'] });
    assert.ok(strict.violations.some((v) => v.name === 'a'));
  });

  it('a missing required package makes the tree incomplete (exit 9); a missing optional one is skipped', () => {
    const broken = makeProject({
      name: 'broken',
      version: '1.0.0',
      dependencies: { gone: '*' },
      optionalDependencies: { alsoGone: '*' },
    });
    try {
      assert.throws(
        () => checkLicenses(broken.dir),
        (err: unknown) =>
          isAppError(err) && err.code === 'CHECK_UNAVAILABLE_TREE_INCOMPLETE' && /gone/.test(err.message),
      );
    } finally {
      broken.remove();
    }
  });

  it('on this project: every production dependency is under an allowed licence', () => {
    const own = checkLicenses(REPO);
    assert.deepEqual(own.violations, []);
    assert.equal(own.packages.length, installedTree(REPO).length);
    assert.ok(
      own.packages.some((p) => p.name === 'fastify') && !own.packages.some((p) => p.name === 'typescript'),
    );
  });
});
