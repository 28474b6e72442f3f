// npm run build, and npm's `prepare` (run by `npm ci`, `npm install` in the repository and
// `npm pack`): a clean dist/ from src/ — compiled modules, plus the files tsc does not emit (the
// dashboard's page, script and style, and the pod-side guard that `guardedPodStart` reads beside
// its compiled module) — then a check that everything the installed CLI needs is there.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
// Clean: a module deleted from src/ must not live on in dist/ and in the published tarball.
rmSync(dist, { recursive: true, force: true });
// TypeScript 7 (native) compiles: the `typescript` package is 6.0.3 because typescript-eslint needs its
// JS API (see package.json); `typescript-7` is the compiler the project is type-checked with.
execFileSync(
  process.execPath,
  [join(root, 'node_modules/typescript-7/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
  { stdio: 'inherit' },
);
cpSync(join(root, 'src/gateway/dashboard/assets'), join(dist, 'gateway/dashboard/assets'), {
  recursive: true,
});
cpSync(join(root, 'src/guard/guard.py'), join(dist, 'guard/guard.py'));
chmodSync(join(dist, 'cli/main.js'), 0o755);

const needed = [
  'cli/main.js',
  'guard/guard.py',
  'gateway/dashboard/assets/index.html',
  'gateway/dashboard/assets/app.js',
  'gateway/dashboard/assets/app.css',
];
const missing = needed.filter((file) => !existsSync(join(dist, file)));
if (missing.length > 0) {
  console.error(`build: dist/ lacks ${missing.join(', ')}`);
  process.exit(1);
}

// `npm pack` / `npm publish` (prepare runs just before packing): the tarball carries the lockfile
// as npm-shrinkwrap.json, so an install gets exactly the tested dependency tree (and npm audit and
// npm sbom work on the installed copy). Written only after a good build, removed by postpack.
if (process.env.npm_command === 'pack' || process.env.npm_command === 'publish') {
  copyFileSync(join(root, 'package-lock.json'), join(root, 'npm-shrinkwrap.json'));
}
