import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway npm project on disk: a root package.json and installed packages under
 * node_modules (only their package.json files), enough for `npm sbom` and the licence walk.
 *
 * @example
 *   const dir = makeProject({ name: 'app', version: '1.0.0', dependencies: { a: '1' } }, { a: { name: 'a', version: '1.0.0', license: 'MIT' } });
 */
export function makeProject(
  root: Record<string, unknown>,
  installed: Record<string, Record<string, unknown>> = {},
): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sec-project-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify(root, null, 2));
  for (const [path, manifest] of Object.entries(installed)) {
    const pkgDir = join(
      dir,
      'node_modules',
      ...path.split('/node_modules/').flatMap((p, i) => (i === 0 ? [p] : ['node_modules', p])),
    );
    mkdirSync(pkgDir, { recursive: true });
    writeFileSync(join(pkgDir, 'package.json'), JSON.stringify(manifest));
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The repository root (the project the commands must work on). */
export const REPO = join(import.meta.dirname, '..', '..');
