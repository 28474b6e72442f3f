import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { AppError } from '../shared/errors.js';
import { parseManifest, type ProjectManifest, readManifest } from './project.js';

/** One installed package: where it is and what its package.json says. */
export interface InstalledPackage {
  name: string;
  version: string;
  /** Directory relative to the project (`node_modules/a/node_modules/b`). */
  path: string;
  manifest: ProjectManifest;
}

export interface TreeOptions {
  /** Follow devDependencies of the project too (never of dependencies: npm installs none). */
  dev?: boolean;
}

/**
 * The project's installed dependency tree, read from the package.json files on disk the way
 * Node resolves them (the nearest `node_modules/<name>` walking up from the requiring package,
 * never above the project). Production by default: dependencies, optionalDependencies and
 * peerDependencies, transitively. A required package that is missing makes the tree
 * incomplete (exit 9); a missing optional one is skipped, as npm skips it.
 *
 * @example
 *   installedTree(process.cwd()).map((p) => `${p.name}@${p.version}`);
 */
export function installedTree(root: string, options: TreeOptions = {}): InstalledPackage[] {
  const rootManifest = readManifest(root);
  const rootReal = realpathSync(root);
  const found = new Map<string, InstalledPackage>();
  const queue: Array<{ from: string; manifest: ProjectManifest; isRoot: boolean }> = [
    { from: rootReal, manifest: rootManifest, isRoot: true },
  ];
  for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
    for (const { name, optional } of edges(item.manifest, item.isRoot && options.dev === true)) {
      const dir = resolvePackage(item.from, name, rootReal);
      if (dir === undefined) {
        if (optional) continue;
        throw new AppError(
          'CHECK_UNAVAILABLE_TREE_INCOMPLETE',
          `${name} (needed by ${item.isRoot ? 'the project' : item.manifest.name}) is not installed`,
          { hint: 'install the dependencies (`npm ci`)' },
        );
      }
      if (found.has(dir)) continue;
      const manifest = parseManifest(
        JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')),
        join(dir, 'package.json'),
      );
      found.set(dir, {
        name: manifest.name || name,
        version: manifest.version,
        path: relative(rootReal, dir) || '.',
        manifest,
      });
      queue.push({ from: dir, manifest, isRoot: false });
    }
  }
  return [...found.values()].sort((a, b) =>
    a.name === b.name ? a.path.localeCompare(b.path) : a.name < b.name ? -1 : 1,
  );
}

function edges(manifest: ProjectManifest, withDev: boolean): Array<{ name: string; optional: boolean }> {
  const out = new Map<string, boolean>();
  for (const name of Object.keys(manifest.dependencies)) out.set(name, false);
  for (const name of Object.keys(manifest.optionalDependencies)) out.set(name, true);
  // npm 7+ installs peers; optional ones only when something else brings them.
  for (const name of Object.keys(manifest.peerDependencies))
    if (!out.has(name)) out.set(name, manifest.peerOptional.has(name));
  if (withDev)
    for (const name of Object.keys(manifest.devDependencies)) if (!out.has(name)) out.set(name, false);
  return [...out].map(([name, optional]) => ({ name, optional }));
}

/** Node's lookup: `<dir>/node_modules/<name>`, then the parent directories', up to the project. */
function resolvePackage(from: string, name: string, root: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dir === root) return undefined;
    const parent = dirname(dir);
    // A linked package outside the project resolves from the project root next.
    dir = parent === dir || relative(root, parent).startsWith('..') ? root : parent;
  }
}
