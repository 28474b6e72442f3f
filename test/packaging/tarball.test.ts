import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

/*
 * The package as a user gets it: `npm pack` (which runs prepare: a clean build of dist/), then
 * `npm install -g` of the tarball into a temporary prefix — a real install, better-sqlite3
 * compiled from source, dependencies from the npm cache where it has them (--prefer-offline) —
 * then the installed `runpod-llm` run from a directory that is not the repository.
 */

const REPO = join(import.meta.dirname, '../..');
const OWN = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { name: string; version: string };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to its end (no shell), with a hard limit; output captured. */
function run(
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** This environment without what the outer `npm test` adds about *this* package and script. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^npm_(package|lifecycle)_/.test(k) && k !== 'INIT_CWD'),
  );
}

describe('the packed tarball, installed globally', () => {
  let tmp: string;
  let tarball: string;
  let prefix: string;
  let elsewhere: string;
  let cliEnv: NodeJS.ProcessEnv;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tarball-'));
    prefix = join(tmp, 'prefix');
    elsewhere = join(tmp, 'elsewhere');
    mkdirSync(elsewhere);
    mkdirSync(join(tmp, 'home'), { mode: 0o700 });
    // What a user's shell would have: PATH with the prefix's bin first, a HOME, nothing secret;
    // npm (for the security checks) asks a closed port, never the real registry.
    cliEnv = {
      PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`,
      HOME: join(tmp, 'home'),
      RUNPOD_LLM_HOME: join(tmp, 'home', '.runpod-llm'),
      npm_config_registry: 'http://127.0.0.1:1/',
      npm_config_cache: join(tmp, 'npm-cache'),
      npm_config_update_notifier: 'false',
    };
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it(
    'npm pack: dist with the CLI, the guard and the dashboard, the shrinkwrap, no sources or maps',
    { timeout: 5 * 60_000 },
    async (t) => {
      const res = await run('npm', ['pack', '--json', '--pack-destination', tmp], {
        cwd: REPO,
        env: npmEnv(),
        timeoutMs: 5 * 60_000,
      });
      assert.equal(res.code, 0, res.stderr);
      t.diagnostic(`npm pack (prepare: clean build) took ${(res.ms / 1000).toFixed(1)} s`);
      const json = JSON.parse(res.stdout.slice(res.stdout.indexOf('[\n'))) as Array<{
        filename: string;
        files: Array<{ path: string; mode: number }>;
      }>;
      const packed = json[0];
      assert.ok(packed !== undefined);
      tarball = join(tmp, packed.filename);
      assert.ok(existsSync(tarball));
      const files = packed.files.map((f) => f.path);
      for (const needed of [
        'package.json',
        'npm-shrinkwrap.json',
        'LICENSE',
        'README.md',
        'dist/cli/main.js',
        'dist/guard/guard.py',
        'dist/guard/recipe.js',
        'dist/gateway/dashboard/assets/index.html',
        'dist/gateway/dashboard/assets/app.js',
        'dist/gateway/dashboard/assets/app.css',
      ]) {
        assert.ok(files.includes(needed), `${needed} is not in the tarball`);
      }
      assert.deepEqual(
        files.filter(
          (f) =>
            /^(src|test|bench|scripts|node_modules)\//.test(f) ||
            f.endsWith('.map') ||
            f === 'package-lock.json',
        ),
        [],
      );
      // prepack's shrinkwrap copy is gone from the repository again (postpack).
      assert.equal(existsSync(join(REPO, 'npm-shrinkwrap.json')), false);
    },
  );

  it(
    'npm install -g --prefix <tmp> <tarball>: a real install, bin linked',
    { timeout: 25 * 60_000 },
    async (t) => {
      assert.ok(tarball !== undefined, 'no tarball: the pack step failed');
      const args = [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--allow-scripts=better-sqlite3',
        tarball,
      ];
      // JOBS=max: node-gyp compiles SQLite and the binding side by side on a multi-core machine.
      const res = await run('npm', args, {
        cwd: tmp,
        env: { ...npmEnv(), JOBS: 'max' },
        timeoutMs: 25 * 60_000,
      });
      assert.equal(res.code, 0, res.stderr);
      t.diagnostic(
        `npm install -g of the tarball (better-sqlite3 compiled from source) took ${(res.ms / 1000).toFixed(1)} s`,
      );
      assert.ok(existsSync(join(prefix, 'bin', 'runpod-llm')));
      const installed = join(prefix, 'lib', 'node_modules', OWN.name);
      assert.ok(
        existsSync(
          join(installed, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'),
        ),
        'better-sqlite3 was not built',
      );
      assert.equal(
        existsSync(join(installed, 'node_modules', 'typescript')),
        false,
        'devDependencies were installed',
      );
    },
  );

  it('runpod-llm --version, from another directory, prints the package.json version', async () => {
    const res = await run(join(prefix, 'bin', 'runpod-llm'), ['--version'], {
      cwd: elsewhere,
      env: cliEnv,
      timeoutMs: 60_000,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `${OWN.version}\n`);
  });

  it(
    'runpod-llm demo, from another directory: the whole flow, and nothing left running',
    { timeout: 5 * 60_000 },
    async () => {
      const res = await run(join(prefix, 'bin', 'runpod-llm'), ['demo', '--speed', '10'], {
        cwd: elsewhere,
        env: cliEnv,
        timeoutMs: 4 * 60_000,
      });
      assert.equal(res.code, 0, res.stdout + res.stderr);
      assert.match(res.stdout, /streamed chat with /);
      assert.match(res.stdout, /PASS {2}1 running pod\(s\) refuse \/invocations and \/tokenize/);
      assert.match(res.stdout, /pods left on the \(emulated\) RunPod: 0/);
      assert.match(res.stdout, /^Done in [\d.]+ s\./m);
      // The installed CLI started its gateway and watchdog as detached processes of its own
      // (from the installed entry), and stopped them; the demo's state directory is gone.
      const pids = [...res.stderr.matchAll(/^(gateway|watchdog): started \(pid (\d+)/gm)].map((m) =>
        Number(m[2]),
      );
      assert.equal(pids.length, 2, res.stderr);
      for (const pid of pids)
        assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `pid ${pid} still running`);
      const home = /RUNPOD_LLM_HOME=(\S+)/.exec(res.stdout)?.[1];
      assert.ok(home !== undefined && home.startsWith(tmpdir()));
      assert.equal(existsSync(home), false);
    },
  );

  it(
    "runpod-llm security report --json, from another directory: the installed package's supply chain and this machine's settings",
    { timeout: 5 * 60_000 },
    async () => {
      const advisories = join(REPO, 'test/fixtures/audit/advisories/clean.json');
      const res = await run(
        join(prefix, 'bin', 'runpod-llm'),
        ['security', 'report', '--json', '--advisories', advisories],
        { cwd: elsewhere, env: cliEnv, timeoutMs: 4 * 60_000 },
      );
      assert.equal(res.code, 0, res.stdout + res.stderr);
      const report = JSON.parse(res.stdout) as {
        tool: { version: string };
        project: { name: string; version: string };
        items: Array<{ id: string; status: string; detail: string }>;
        summary: { fail: number };
      };
      assert.deepEqual(report.project, { name: OWN.name, version: OWN.version });
      assert.equal(report.tool.version, OWN.version);
      const item = (id: string) => report.items.find((i) => i.id === id);
      assert.equal(item('supply.sbom')?.status, 'pass', item('supply.sbom')?.detail);
      assert.match(
        item('supply.audit')?.detail ?? '',
        /^\d+ dependencies checked against the offline advisory list/,
      );
      assert.equal(item('supply.licenses')?.status, 'pass', item('supply.licenses')?.detail);
      assert.equal(item('gateway.auth')?.status, 'pass');
      assert.equal(item('state.permissions')?.status, 'skip');
      assert.equal(report.summary.fail, 0);
      assert.ok(existsSync(join(elsewhere, 'security-report.json')));
      // The SBOM of the installed copy: production components only, as installed.
      const sbom = await run(join(prefix, 'bin', 'runpod-llm'), ['security', 'sbom'], {
        cwd: elsewhere,
        env: cliEnv,
        timeoutMs: 2 * 60_000,
      });
      assert.equal(sbom.code, 0, sbom.stderr);
      const bom = JSON.parse(sbom.stdout) as { components: Array<{ name: string; scope?: string }> };
      const names = new Set(bom.components.map((c) => c.name));
      for (const dep of ['fastify', 'better-sqlite3', 'undici', 'commander']) assert.ok(names.has(dep), dep);
      assert.equal(names.has('typescript'), false);
    },
  );
});
