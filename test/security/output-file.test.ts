import assert from 'node:assert/strict';
import {
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../src/cli/program.js';
import { checkExplicitOutput, writeExplicitOutput } from '../../src/security/output-file.js';
import { isAppError } from '../../src/shared/errors.js';
import { ownPackage, ownVersion, PACKAGE_NAME } from '../../src/shared/own-package.js';
import { REPO } from './fixture-project.js';

/**
 * A path the user typed: checked before the content is made, and written without a window in
 * which a link planted after the check is followed or a file created since is overwritten.
 */
describe('explicit output files', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'output-file-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const refused = (why: RegExp) => (err: unknown) =>
    isAppError(err) && err.code === 'CLI_USAGE_OUTPUT' && why.test(err.message);

  it('a symlink planted after the check is neither followed nor replaced', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'keep me');
    for (const force of [false, true]) {
      const target = checkExplicitOutput(join(dir, `late-${force}.json`), '/', force);
      symlinkSync(victim, target);
      assert.throws(() => writeExplicitOutput(target, 'new', force), refused(/symbolic link/));
      assert.ok(lstatSync(target).isSymbolicLink());
      assert.equal(readFileSync(victim, 'utf8'), 'keep me');
    }
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  it('a file created after the check is not overwritten without force', () => {
    const target = checkExplicitOutput(join(dir, 'raced.json'), '/', false);
    writeFileSync(target, 'theirs');
    assert.throws(() => writeExplicitOutput(target, 'ours', false), refused(/already exists/));
    assert.equal(readFileSync(target, 'utf8'), 'theirs');
  });

  it('a directory at the target, or a file where its directory should be, is refused', () => {
    assert.throws(() => checkExplicitOutput(dir, '/', true), refused(/is a directory/));
    writeFileSync(join(dir, 'plain'), '');
    assert.throws(
      () => checkExplicitOutput(join(dir, 'plain', 'x.json'), '/', false),
      refused(/is not a directory/),
    );
  });
});

describe('ownPackage', () => {
  it("finds this tool's package.json from a module's location, not the working directory", () => {
    const own = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
    };
    assert.equal(own.name, PACKAGE_NAME);
    assert.deepEqual(ownPackage(), { dir: REPO, version: own.version });
    assert.deepEqual(ownPackage(join(REPO, 'dist/cli/commands/security.js')), {
      dir: REPO,
      version: own.version,
    });
    assert.equal(ownVersion(), own.version);
  });

  it("runpod-llm --version prints it (not npm's environment: none here)", async () => {
    let out = '';
    const io = {
      stdout: new Writable({
        write: (c: Buffer, _e, cb) => {
          out += c.toString();
          cb();
        },
      }),
      stderr: new Writable({ write: (_c, _e, cb) => cb() }),
      env: {},
      signal: new AbortController().signal,
      isTTY: false,
    };
    assert.equal(await runCli(['--version'], io), 0);
    assert.equal(out, `${ownVersion()}\n`);
    assert.notEqual(ownVersion(), 'unknown');
  });

  it('skips package.json files of other packages on the way up', () => {
    const inner = join(REPO, 'node_modules/commander/lib/command.js');
    assert.equal(ownPackage(inner).dir, REPO);
    assert.throws(
      () => ownPackage(join(tmpdir(), 'x', 'y.js')),
      /cannot find the package\.json of runpod-llm-manager above/,
    );
  });
});
