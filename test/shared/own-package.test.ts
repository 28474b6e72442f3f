import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ownPackage, PACKAGE_NAME } from '../../src/shared/own-package.js';
import { AppError } from '../../src/shared/errors.js';
import { cli } from '../cli/cli-rig.js';

const REPO = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'own-package-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ownPackage', () => {
  it("reads the version of this tool's package.json above the running module, as installed copies lay it out", () => {
    const installed = join(dir, 'lib', 'node_modules', PACKAGE_NAME);
    mkdirSync(join(installed, 'dist', 'shared'), { recursive: true });
    writeFileSync(join(installed, 'package.json'), JSON.stringify({ name: PACKAGE_NAME, version: '7.8.9' }));
    // A project's own package.json nearer the module (another name) is not ours.
    writeFileSync(
      join(installed, 'dist', 'package.json'),
      JSON.stringify({ name: 'something-else', version: '0.0.1' }),
    );
    const module = pathToFileURL(join(installed, 'dist', 'shared', 'own-package.js')).href;
    assert.deepEqual(ownPackage(module), { dir: installed, version: '7.8.9' });
  });

  it('is a coded error (exit 9) when no package.json of this tool is above it', () => {
    const lone = join(dir, 'lone');
    mkdirSync(lone, { recursive: true });
    assert.throws(
      () => ownPackage(join(lone, 'x.js')),
      (err: unknown) => err instanceof AppError && err.code === 'CHECK_UNAVAILABLE_NO_PROJECT',
    );
  });

  it('runpod-llm --version prints package.json version, whatever the environment says', async () => {
    const own = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const run = await cli(['--version'], { npm_package_version: '0.0.0-not-this' });
    assert.deepEqual([run.code, run.stdout], [0, `${own.version}\n`]);
  });
});
