import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const SCRIPT = join(import.meta.dirname, '../../scripts/check-cycles.mjs');

/** A folder of modules, `{ 'a.ts': "import ... from './b.js';" }`. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cycles-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

function check(dir: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, dir], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('scripts/check-cycles.mjs', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('passes a graph without cycles, dynamic imports and packages included', () => {
    const dir = project({
      'a.ts':
        "import { b } from './b.js';\nimport { join } from 'node:path';\nexport const a = b + join('x');\n",
      'b.ts': "export const b = 1;\nexport const later = () => import('./a.js');\n",
    });
    dirs.push(dir);
    const r = check(dir);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /cycles: none among 2 modules/);
  });

  it('fails on a cycle and prints it, marking type-only edges', () => {
    const dir = project({
      'a.ts': "import { b } from './sub/b.js';\nexport const a = b;\n",
      'sub/b.ts': "import type { C } from '../c.js';\nexport const b: C = 1;\n",
      'c.ts': "export { a } from './a.js';\nexport type C = number;\n",
    });
    dirs.push(dir);
    const r = check(dir);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /1 group\(s\)/);
    assert.match(r.out, /a\.ts -> \S*sub\/b\.ts -> \(type\) \S*c\.ts -> \S*a\.ts/);
  });

  it('fails on a module that imports itself', () => {
    const dir = project({
      'self.ts': "import { x as y } from './self.js';\nexport const x = 1;\nexport const z = y;\n",
    });
    dirs.push(dir);
    const r = check(dir);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /self\.ts -> \S*self\.ts/);
  });
});
