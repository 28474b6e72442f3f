/*
 * The state schema as an ordered list of migrations. Migration `i` (0-based) brings the database
 * from `PRAGMA user_version = i` to `i + 1`. Never edit a released migration: append a new one.
 *
 * Design notes (written with replicas and wake-on-request in mind):
 * - `runpod_llm_meta` is the marker table: a SQLite file without it is someone else's database
 *   and we refuse to touch it.
 * - Several pods per run (replicas) and several routes per model are plain rows: nothing assumes
 *   "the" pod. `pods.replaces_pod_id` chains a recreated pod to the one it replaced.
 * - `usage` is keyed by scope (`*` = all routes, else a route id) so per-route load data for
 *   balancing fits without a new table.
 * - `wake_requests` lets a gateway (which never holds the RunPod key) ask the manager for a pod;
 *   a partial unique index keeps at most one pending request however many gateways race.
 * - `routes_meta.version` is bumped by triggers on every routes change, so a gateway can poll one
 *   integer per second instead of re-reading the table.
 */

/** The table that marks a SQLite file as this tool's state. */
export const MARKER_TABLE = 'runpod_llm_meta';
export const APP_MARKER = 'runpod-llm-manager';

export const MIGRATIONS: readonly string[] = [
  // 1: initial schema
  `
  CREATE TABLE ${MARKER_TABLE} (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  INSERT INTO ${MARKER_TABLE} (key, value) VALUES ('app', '${APP_MARKER}');

  CREATE TABLE runs (
    run_id           TEXT PRIMARY KEY,
    started_at       INTEGER NOT NULL,
    runtime_limit_ms INTEGER,
    budget_usd       REAL,
    config           TEXT NOT NULL DEFAULT '{}',
    ended_at         INTEGER,
    end_reason       TEXT
  );
  CREATE INDEX runs_active ON runs (ended_at, started_at);

  CREATE TABLE pods (
    pod_id           TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    run_id           TEXT REFERENCES runs (run_id),
    gpu_type_id      TEXT NOT NULL,
    gpu_count        INTEGER NOT NULL CHECK (gpu_count >= 1),
    cloud            TEXT NOT NULL CHECK (cloud IN ('SECURE', 'COMMUNITY')),
    cost_per_hr      REAL NOT NULL CHECK (cost_per_hr >= 0),
    model            TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    ready_at         INTEGER,
    desired          TEXT NOT NULL CHECK (desired IN ('running', 'stopped', 'terminated')),
    runtime_limit_ms INTEGER,
    idle_limit_ms    INTEGER,
    idle_action      TEXT CHECK (idle_action IN ('stop', 'terminate')),
    budget_usd       REAL,
    restarts         INTEGER NOT NULL DEFAULT 0,
    replaces_pod_id  TEXT,
    api_key          TEXT NOT NULL,
    accrued_until    INTEGER,
    ended_at         INTEGER,
    end_reason       TEXT
  );
  CREATE INDEX pods_active ON pods (ended_at, run_id);

  CREATE TABLE routes (
    route_id   TEXT PRIMARY KEY,
    pod_id     TEXT,
    base_url   TEXT NOT NULL CHECK (base_url LIKE '%/v1'),
    api_key    TEXT NOT NULL,
    model      TEXT NOT NULL,
    ready      INTEGER NOT NULL DEFAULT 0 CHECK (ready IN (0, 1)),
    weight     INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 0),
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE routes_meta (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
  );
  INSERT INTO routes_meta (id, version) VALUES (1, 0);
  CREATE TRIGGER routes_ins AFTER INSERT ON routes
    BEGIN UPDATE routes_meta SET version = version + 1 WHERE id = 1; END;
  CREATE TRIGGER routes_upd AFTER UPDATE ON routes
    BEGIN UPDATE routes_meta SET version = version + 1 WHERE id = 1; END;
  CREATE TRIGGER routes_del AFTER DELETE ON routes
    BEGIN UPDATE routes_meta SET version = version + 1 WHERE id = 1; END;

  CREATE TABLE usage (
    scope           TEXT PRIMARY KEY,
    last_request_at INTEGER,
    requests        INTEGER NOT NULL DEFAULT 0,
    tokens_in       INTEGER NOT NULL DEFAULT 0,
    tokens_out      INTEGER NOT NULL DEFAULT 0
  );

  CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    action  TEXT NOT NULL,
    reason  TEXT,
    pod_id  TEXT,
    details TEXT
  );
  CREATE INDEX audit_pod ON audit (pod_id, id);

  CREATE TABLE spend (
    pod_id    TEXT NOT NULL,
    day_start INTEGER NOT NULL,
    run_id    TEXT,
    usd       REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (pod_id, day_start)
  );
  CREATE INDEX spend_day ON spend (day_start);
  CREATE INDEX spend_run ON spend (run_id);

  CREATE TABLE wake_requests (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    requested_at      INTEGER NOT NULL,
    last_requested_at INTEGER NOT NULL,
    requests          INTEGER NOT NULL DEFAULT 1,
    cleared_at        INTEGER
  );
  CREATE UNIQUE INDEX wake_one_pending ON wake_requests ((cleared_at IS NULL)) WHERE cleared_at IS NULL;
  `,
  // 2: the pod-side guard and waking.
  // guard: the guard version in front of the pod's vLLM; NULL = unguarded (every pod before
  // this migration was). starting_since: when the pod was last asked to start (created, or
  // started again after a stop): readiness timeouts count from here, not from its creation.
  `
  ALTER TABLE pods ADD COLUMN guard TEXT;
  ALTER TABLE pods ADD COLUMN starting_since INTEGER;
  UPDATE pods SET starting_since = created_at;
  `,
  // 3: what `doctor --live` found out about the live API: one row per question, the
  // latest answer wins. `up` reads json_start_command to pick its recipe.
  `
  CREATE TABLE verdicts (
    name       TEXT PRIMARY KEY CHECK (name IN ('json_start_command', 'self_stop')),
    value      TEXT NOT NULL CHECK (value IN ('honoured', 'not_honoured', 'unknown')),
    checked_at INTEGER NOT NULL,
    detail     TEXT
  );
  `,
  // 4: what the watchdog remembers of a pod between passes (restarts in place, zero-GPU pods): the last uptime
  // RunPod reported (a smaller one later means the container restarted), consecutive failed
  // health checks of a routed pod, and consecutive polls with zero GPUs. One row per active pod.
  `
  CREATE TABLE pod_watch (
    pod_id         TEXT PRIMARY KEY,
    uptime_s       INTEGER,
    uptime_at      INTEGER,
    health_fails   INTEGER NOT NULL DEFAULT 0,
    zero_gpu_polls INTEGER NOT NULL DEFAULT 0
  );
  `,
];
