import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

/*
 * scripts/system-deps.sh, the one list of system programs the tests need, as `npm test` and
 * .ci/run run it — without changing this machine: each case runs the real script with a PATH
 * of its own (the real redis-server and python3 are not on it, CHROMIUM_PATH points at a file
 * that may or may not exist), a stand-in `id` for the uid and `uname` for the system, and a
 * stand-in `apt-get` that records its arguments and, on `install`, puts stand-ins of the
 * programs where the script looks for them. One case drops to the real `nobody` user.
 */

const REPO = join(import.meta.dirname, '../..');
const SCRIPT = join(REPO, 'scripts/system-deps.sh');
const BASH = '/bin/bash';
/** The ordinary tools the scripts use, linked into each fake PATH from the real one. */
const TOOLS = ['bash', 'mktemp', 'rm', 'tail', 'sed', 'dirname', 'chmod'];

interface Case {
  bin: string;
  aptLog: string;
  chromium: string;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('scripts/system-deps.sh', () => {
  let root: string;
  let n = 0;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'system-deps-'));
    chmodSync(root, 0o755);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  function realPath(tool: string): string {
    const found = spawnSync(BASH, ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    assert.ok(found.startsWith('/'), `${tool} is not on this machine's PATH`);
    return found;
  }

  /** A fresh fake system: a bin dir with the ordinary tools, and the given stand-ins. */
  function system(options: {
    uid?: number;
    uname?: string;
    apt?: 'ok' | 'fail' | 'none';
    present?: Array<'redis-server' | 'python3' | 'chromium'>;
  }): Case {
    const dir = join(root, `case-${++n}`);
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    chmodSync(dir, 0o755);
    for (const tool of TOOLS) symlinkSync(realPath(tool), join(bin, tool));
    const chromium = join(dir, 'chromium');
    const aptLog = join(dir, 'apt.log');
    const script = (name: string, body: string): void => {
      writeFileSync(join(bin, name), `#!${BASH}\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    if (options.uid === undefined) symlinkSync(realPath('id'), join(bin, 'id'));
    else script('id', `[ "$1" = -u ] && echo ${options.uid} || echo "uid=${options.uid}"`);
    script('uname', `echo ${options.uname ?? 'Linux'}`);
    const stand = (name: string): string =>
      `printf '#!${BASH}\\necho stand-in\\n' > '${name}' && chmod 755 '${name}'`;
    if (options.apt !== undefined && options.apt !== 'none') {
      script(
        'apt-get',
        [
          `echo "$*" >> '${aptLog}'`,
          options.apt === 'fail'
            ? 'if [ "$1" = install ]; then echo "E: Unable to locate package chromium" >&2; exit 100; fi'
            : `if [ "$1" = install ]; then ${stand(join(bin, 'redis-server'))}; ${stand(join(bin, 'python3'))}; ${stand(chromium)}; fi`,
          'exit 0',
        ].join('\n'),
      );
    }
    for (const program of options.present ?? []) {
      const path = program === 'chromium' ? chromium : join(bin, program);
      writeFileSync(path, `#!${BASH}\necho stand-in\n`);
      chmodSync(path, 0o755);
    }
    return { bin, aptLog, chromium };
  }

  function run(c: Case, file = SCRIPT): Run {
    const res = spawnSync(BASH, [file], {
      encoding: 'utf8',
      env: { PATH: c.bin, CHROMIUM_PATH: c.chromium, TMPDIR: root },
      timeout: 60_000,
    });
    return { code: res.status, stdout: res.stdout, stderr: res.stderr };
  }

  const aptCalls = (c: Case): string[] =>
    existsSync(c.aptLog) ? readFileSync(c.aptLog, 'utf8').trim().split('\n') : [];

  it('nothing missing: silent, exit 0, no apt-get', () => {
    const c = system({ uid: 0, apt: 'ok', present: ['redis-server', 'python3', 'chromium'] });
    assert.deepEqual(run(c), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(aptCalls(c), []);
  });

  it('root with apt-get: one line names the packages, apt-get update once, then install, and it goes on', () => {
    const c = system({ uid: 0, apt: 'ok' });
    const res = run(c);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(
      res.stdout,
      'npm test: installing the missing Debian packages: redis-server chromium python3 (apt-get, as root)\n',
    );
    assert.equal(res.stderr, '');
    assert.deepEqual(aptCalls(c), ['update -qq', 'install -y -qq redis-server chromium python3']);
    assert.ok(existsSync(c.chromium));
  });

  it('root with apt-get installs only what is missing', () => {
    const c = system({ uid: 0, apt: 'ok', present: ['python3', 'chromium'] });
    const res = run(c);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /packages: redis-server \(apt-get/);
    assert.deepEqual(aptCalls(c), ['update -qq', 'install -y -qq redis-server']);
  });

  it("root, but apt-get fails: exit 4 with apt-get's reason and the command", () => {
    const c = system({ uid: 0, apt: 'fail' });
    const res = run(c);
    assert.equal(res.code, 4);
    assert.match(
      res.stderr,
      /apt-get could not install redis-server chromium python3; its last lines:\n {2}E: Unable to locate package chromium\n/,
    );
    assert.match(res.stderr, /^fix: apt-get update && apt-get install -y redis-server chromium python3/m);
  });

  it('not root on Debian: stops at once with the sudo apt-get command (exit 3), installs nothing', () => {
    const c = system({ uid: 1000, apt: 'ok', present: ['python3'] });
    const res = run(c);
    assert.equal(res.code, 3);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /^npm test: missing redis-server chromium: /);
    assert.match(
      res.stderr,
      /\nfix: sudo apt-get update && sudo apt-get install -y redis-server chromium\n$/,
    );
    assert.deepEqual(aptCalls(c), []);
  });

  it('macOS: the brew command, Chromium as a cask with CHROMIUM_PATH (exit 3)', () => {
    const c = system({ uid: 501, uname: 'Darwin', apt: 'none' });
    const res = run(c);
    assert.equal(res.code, 3);
    assert.match(
      res.stderr,
      /\nfix: brew install redis python && brew install --cask chromium && export CHROMIUM_PATH=\/Applications\/Chromium\.app\/Contents\/MacOS\/Chromium\n$/,
    );
  });

  it('root without apt-get (another distribution): names the packages, exit 3', () => {
    const c = system({ uid: 0, apt: 'none', present: ['redis-server', 'chromium'] });
    const res = run(c);
    assert.equal(res.code, 3);
    assert.match(
      res.stderr,
      /\nfix: install python3 \(Debian package names\) with this system's package manager/,
    );
  });

  it('npm test (scripts/test.sh) as a non-root user stops before the type-check with exit 3', () => {
    const c = system({ uid: 1000, apt: 'ok' });
    symlinkSync(realPath('npx'), join(c.bin, 'npx'));
    const res = run(c, join(REPO, 'scripts/test.sh'));
    assert.equal(res.code, 3);
    assert.doesNotMatch(res.stdout, /type-check/);
    assert.match(
      res.stderr,
      /fix: sudo apt-get update && sudo apt-get install -y redis-server chromium python3/,
    );
  });

  it(
    'as the real nobody user (real id): the sudo command, exit 3',
    { skip: process.getuid?.() !== 0 ? 'needs root to run as nobody' : false },
    () => {
      const c = system({ apt: 'ok' });
      const copy = join(root, 'system-deps.sh');
      copyFileSync(SCRIPT, copy);
      chmodSync(copy, 0o755);
      const res = spawnSync(
        realPath('setpriv'),
        ['--reuid=65534', '--regid=65534', '--clear-groups', '--', BASH, copy],
        { encoding: 'utf8', env: { PATH: c.bin, CHROMIUM_PATH: c.chromium, TMPDIR: root }, timeout: 60_000 },
      );
      assert.equal(res.status, 3, res.stderr);
      assert.match(
        res.stderr,
        /\nfix: sudo apt-get update && sudo apt-get install -y redis-server chromium python3\n$/,
      );
      assert.deepEqual(aptCalls(c), []);
    },
  );
});
