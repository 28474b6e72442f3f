import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AppError } from '../../src/shared/errors.js';
import { acquireLock, LOCK_FILE, readLock } from '../../src/state/lock.js';
import { tempHome } from './helpers.js';

function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  assert.ok(child.pid !== undefined);
  return child.pid;
}

function writeLock(home: string, content: string): void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileSync(join(home, LOCK_FILE), content, { mode: 0o600 });
}

describe('manager lock', () => {
  it('creates manager.lock 0600 with pid, start time and command; release removes it', () => {
    const t = tempHome();
    const release = acquireLock(t.home, 'up');
    const path = join(t.home, LOCK_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(t.home).mode & 0o777, 0o700);
    const info = readLock(t.home);
    assert.equal(info?.pid, process.pid);
    assert.equal(info?.command, 'up');
    assert.ok(!Number.isNaN(Date.parse(info?.started_at ?? '')));
    release();
    release();
    assert.equal(existsSync(path), false);
    assert.equal(readLock(t.home), null);
    t.cleanup();
  });

  it('refuses a second acquisition while held', () => {
    const t = tempHome();
    const release = acquireLock(t.home, 'up');
    assert.throws(
      () => acquireLock(t.home, 'watch'),
      (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.code, 'STATE_LOCKED');
        assert.match(err.message, new RegExp(`pid ${process.pid}, \`up\` since`));
        return true;
      },
    );
    release();
    acquireLock(t.home, 'watch')();
    t.cleanup();
  });

  it('recovers a stale lock whose process is dead', () => {
    const t = tempHome();
    const pid = deadPid();
    writeLock(t.home, JSON.stringify({ pid, started_at: '2026-01-01T00:00:00.000Z', command: 'up' }));
    const release = acquireLock(t.home, 'watch');
    assert.equal(readLock(t.home)?.pid, process.pid);
    assert.deepEqual(readdirSync(t.home), [LOCK_FILE], 'no stale leftovers');
    release();
    t.cleanup();
  });

  it('refuses a lock held by a live process, and keeps it', async () => {
    const t = tempHome();
    const child = spawn(process.execPath, ['-e', 'setTimeout(()=>{},5000)'], { stdio: 'ignore' });
    try {
      assert.ok(child.pid !== undefined);
      const content = JSON.stringify({
        pid: child.pid,
        started_at: '2026-11-25T10:00:00.000Z',
        command: 'up',
      });
      writeLock(t.home, content);
      assert.throws(
        () => acquireLock(t.home, 'up'),
        (err: unknown) => {
          assert.ok(err instanceof AppError);
          assert.equal(err.code, 'STATE_LOCKED');
          assert.equal(
            err.message,
            `another runpod-llm manager is running (pid ${child.pid}, \`up\` since 2026-11-25T10:00:00.000Z)`,
          );
          assert.ok(err.hint?.includes(LOCK_FILE));
          return true;
        },
      );
      assert.equal(readLock(t.home)?.pid, child.pid);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      t.cleanup();
    }
  });

  it('treats a fresh empty lock as being written, and an old unreadable one as stale', () => {
    const t = tempHome();
    writeLock(t.home, '');
    assert.throws(
      () => acquireLock(t.home, 'up'),
      (err: unknown) => err instanceof AppError && err.code === 'STATE_LOCKED',
    );
    const old = new Date(Date.now() - 60_000);
    writeLock(t.home, 'garbage');
    utimesSync(join(t.home, LOCK_FILE), old, old);
    acquireLock(t.home, 'up')();
    t.cleanup();
  });

  it('never removes a lock it does not own on release', () => {
    const t = tempHome();
    const release = acquireLock(t.home, 'up');
    const other = JSON.stringify({ pid: deadPid(), started_at: 'x', command: 'down' });
    writeLock(t.home, other);
    release();
    assert.equal(readLock(t.home)?.command, 'down');
    t.cleanup();
  });
});
