import assert from 'node:assert/strict';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { AppError } from '../../src/shared/errors.js';
import { openState, SCHEMA_VERSION, STATE_FILE } from '../../src/state/db.js';
import { listReadyRoutes, upsertRoute } from '../../src/state/routes.js';
import { tempHome } from './helpers.js';

const mode = (path: string): number => statSync(path).mode & 0o777;

function assertStateError(fn: () => unknown, code: string, path: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AppError, `expected AppError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.ok(err.message.includes(path), `message names the file: ${err.message}`);
    assert.ok(err.hint !== undefined && err.hint.length > 0);
    return true;
  });
}

describe('openState', () => {
  it('creates the home 0700 and state.db, -wal and -shm 0600 whatever the umask', () => {
    const t = tempHome();
    const previous = process.umask(0o000);
    try {
      const state = openState({ home: t.home });
      upsertRoute(state, {
        routeId: 'r',
        podId: null,
        baseUrl: 'http://127.0.0.1:9/v1',
        apiKey: 'k',
        model: 'm',
      });
      assert.equal(mode(t.home), 0o700);
      for (const file of [STATE_FILE, `${STATE_FILE}-wal`, `${STATE_FILE}-shm`]) {
        assert.equal(mode(join(t.home, file)), 0o600, file);
      }
      assert.equal(state.sql.pragma('journal_mode', { simple: true }), 'wal');
      assert.ok(Number(state.sql.pragma('busy_timeout', { simple: true })) > 0);
      state.close();
    } finally {
      process.umask(previous);
      t.cleanup();
    }
  });

  it('tightens an existing home directory to 0700', () => {
    const t = tempHome();
    mkdirSync(t.home, { mode: 0o755 });
    chmodSync(t.home, 0o755);
    openState({ home: t.home }).close();
    assert.equal(mode(t.home), 0o700);
    t.cleanup();
  });

  it('migrates an empty file to the current schema, and reopening changes nothing', () => {
    const t = tempHome();
    mkdirSync(t.home, { mode: 0o700 });
    closeSync(openSync(join(t.home, STATE_FILE), 'w', 0o600));
    const state = openState({ home: t.home });
    assert.equal(state.sql.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    const tables = state.sql
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all();
    for (const table of [
      'audit',
      'pods',
      'routes',
      'runs',
      'spend',
      'usage',
      'wake_requests',
      'runpod_llm_meta',
    ]) {
      assert.ok(tables.includes(table), table);
    }
    state.close();
    const again = openState({ home: t.home });
    assert.equal(again.sql.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    again.close();
    t.cleanup();
  });

  it('refuses a file that is not SQLite (STATE_CORRUPT) and leaves its bytes unchanged', () => {
    const t = tempHome();
    mkdirSync(t.home, { mode: 0o700 });
    const path = join(t.home, STATE_FILE);
    const bytes = Buffer.from('this is my shopping list, not a database\n'.repeat(20));
    writeFileSync(path, bytes, { mode: 0o600 });
    assertStateError(() => openState({ home: t.home }), 'STATE_CORRUPT', path);
    assert.deepEqual(readFileSync(path), bytes);
    t.cleanup();
  });

  it('refuses a SQLite header over garbage pages (STATE_CORRUPT), file unchanged', () => {
    const t = tempHome();
    mkdirSync(t.home, { mode: 0o700 });
    const path = join(t.home, STATE_FILE);
    const bytes = Buffer.alloc(8192, 0xab);
    Buffer.from('SQLite format 3\u0000', 'latin1').copy(bytes);
    writeFileSync(path, bytes, { mode: 0o600 });
    assertStateError(() => openState({ home: t.home }), 'STATE_CORRUPT', path);
    assert.deepEqual(readFileSync(path), bytes);
    t.cleanup();
  });

  it('refuses a SQLite database that is not ours (STATE_FOREIGN), file unchanged', () => {
    const t = tempHome();
    mkdirSync(t.home, { mode: 0o700 });
    const path = join(t.home, STATE_FILE);
    const other = new Database(path);
    other.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hello')");
    other.close();
    const bytes = readFileSync(path);
    assertStateError(() => openState({ home: t.home }), 'STATE_FOREIGN', path);
    assertStateError(() => openState({ home: t.home, readonly: true }), 'STATE_FOREIGN', path);
    assert.deepEqual(readFileSync(path), bytes);
    t.cleanup();
  });

  it('refuses a state written by a newer version (STATE_TOO_NEW), file unchanged', () => {
    const t = tempHome();
    openState({ home: t.home }).close();
    const path = join(t.home, STATE_FILE);
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.pragma('wal_checkpoint(TRUNCATE)');
    raw.close();
    const bytes = readFileSync(path);
    assertStateError(() => openState({ home: t.home }), 'STATE_TOO_NEW', path);
    assert.deepEqual(readFileSync(path), bytes);
    t.cleanup();
  });

  it('mustExist (the gateway) creates nothing and writes to an existing state', () => {
    const t = tempHome();
    assertStateError(
      () => openState({ home: t.home, mustExist: true }),
      'STATE_MISSING',
      join(t.home, STATE_FILE),
    );
    assert.equal(existsSync(t.home), false);
    openState({ home: t.home }).close();
    const gateway = openState({ home: t.home, mustExist: true });
    upsertRoute(gateway, {
      routeId: 'r',
      podId: null,
      baseUrl: 'http://127.0.0.1:9/v1',
      apiKey: 'k',
      model: 'm',
    });
    gateway.close();
    t.cleanup();
  });

  it('read-only mode reads what a writer wrote, cannot write, and needs an existing state', () => {
    const t = tempHome();
    assertStateError(
      () => openState({ home: t.home, readonly: true }),
      'STATE_MISSING',
      join(t.home, STATE_FILE),
    );
    const writer = openState({ home: t.home });
    const reader = openState({ home: t.home, readonly: true });
    upsertRoute(writer, {
      routeId: 'r1',
      podId: 'p1',
      baseUrl: 'https://p1-8000.proxy.runpod.net/v1',
      apiKey: 'k',
      model: 'm',
      ready: true,
    });
    assert.deepEqual(
      listReadyRoutes(reader).map((r) => r.routeId),
      ['r1'],
    );
    assert.throws(
      () =>
        upsertRoute(reader, { routeId: 'r2', podId: null, baseUrl: 'http://x/v1', apiKey: 'k', model: 'm' }),
      /readonly/,
    );
    reader.close();
    writer.close();
    t.cleanup();
  });
});
