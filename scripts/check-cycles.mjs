// npm run cycles (and the lint step of npm test): fails on any import cycle among the modules under the
// given folders (default src/). A cycle makes a module's exports undefined while its partner
// initialises, and ties two concerns into one: each concern has one owner, and owners import one way.
//
// Edges are static `import ... from` and `export ... from` of relative paths, type-only ones included
// (like `madge --circular`): a type cycle is still two modules that cannot be read or moved apart.
// Dynamic `import()` is not an edge: it runs after both modules have loaded.
// Output: one line per cycle, `a.ts -> b.ts -> a.ts`, each edge marked `(type)` when type-only.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');
const folders = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['src'];

/** Every .ts file under `dir` (declaration files excluded). */
function sources(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sources(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** `./x.js` as written under nodenext resolution → the `./x.ts` source, or undefined if outside the set. */
function resolveSpecifier(from, specifier, known) {
  if (!specifier.startsWith('.')) return undefined;
  const base = resolve(dirname(from), specifier);
  const candidates = [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => known.has(c));
}

/** Whether the declaration brings in types only (`import type`, `export type`, or every named one `type`). */
function typeOnly(node) {
  if (ts.isImportDeclaration(node)) {
    const clause = node.importClause;
    if (clause === undefined) return false; // side-effect import
    if (clause.isTypeOnly) return true;
    if (clause.name !== undefined) return false;
    const bindings = clause.namedBindings;
    return (
      bindings !== undefined &&
      ts.isNamedImports(bindings) &&
      bindings.elements.length > 0 &&
      bindings.elements.every((e) => e.isTypeOnly)
    );
  }
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return (
    clause !== undefined &&
    ts.isNamedExports(clause) &&
    clause.elements.length > 0 &&
    clause.elements.every((e) => e.isTypeOnly)
  );
}

const files = folders.flatMap((f) =>
  statSync(resolve(root, f)).isDirectory() ? sources(resolve(root, f)) : [],
);
const known = new Set(files);
/** file → Map(target file → type-only?) */
const graph = new Map();
for (const file of files) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  const edges = new Map();
  for (const node of source.statements) {
    if (!ts.isImportDeclaration(node) && !ts.isExportDeclaration(node)) continue;
    if (node.moduleSpecifier === undefined || !ts.isStringLiteral(node.moduleSpecifier)) continue;
    const target = resolveSpecifier(file, node.moduleSpecifier.text, known);
    if (target === undefined) continue;
    // Two declarations for the same module: the edge is a runtime one if either is.
    edges.set(target, (edges.get(target) ?? true) && typeOnly(node));
  }
  graph.set(file, edges);
}

// Tarjan's strongly connected components: every component with more than one module (or a module that
// imports itself) holds at least one cycle.
let index = 0;
const indices = new Map();
const lowlinks = new Map();
const stack = [];
const onStack = new Set();
const components = [];
function connect(v) {
  indices.set(v, index);
  lowlinks.set(v, index);
  index++;
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v).keys()) {
    if (!indices.has(w)) {
      connect(w);
      lowlinks.set(v, Math.min(lowlinks.get(v), lowlinks.get(w)));
    } else if (onStack.has(w)) lowlinks.set(v, Math.min(lowlinks.get(v), indices.get(w)));
  }
  if (lowlinks.get(v) === indices.get(v)) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v).has(v)) components.push(component);
  }
}
for (const file of [...graph.keys()].sort()) if (!indices.has(file)) connect(file);

/** One shortest cycle through `start` inside its component (breadth-first), as a list of files. */
function shortestCycle(start, members) {
  const previous = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of [...graph.get(v).keys()].sort()) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (previous.get(path[0]) !== undefined) path.unshift(previous.get(path[0]));
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

const rel = (f) => relative(root, f);
if (components.length === 0) {
  console.log(`cycles: none among ${files.length} modules in ${folders.join(', ')}`);
  process.exit(0);
}
const where = `${files.length} modules in ${folders.join(', ')}`;
console.error(`cycles: ${components.length} group(s) of modules import each other in a circle (${where}):`);
for (const component of components.sort((a, b) => b.length - a.length)) {
  const members = new Set(component);
  const start = [...component].sort()[0];
  const cycle = shortestCycle(start, members);
  const shown = cycle.map((f, i) =>
    i === 0 ? rel(f) : `${graph.get(cycle[i - 1]).get(f) ? '(type) ' : ''}${rel(f)}`,
  );
  console.error(`  ${shown.join(' -> ')}`);
  if (component.length > cycle.length - 1)
    console.error(
      `    (the same group also holds ${component
        .map(rel)
        .filter((f) => !cycle.map(rel).includes(f))
        .sort()
        .join(', ')})`,
    );
}
console.error(
  'fix: move what both sides need into a module that imports neither, or pass it in as a parameter',
);
process.exit(1);
