/**
 * Schema migrations of the SQLite store. The list is append-only: a released migration is never
 * edited or renumbered, because databases in the field record which versions they have applied.
 * A schema change is a new entry with the next version.
 */
import { FormatTooNewError, StoreNotFoundError, schemaBehindError } from "../../core/errors.js";
import type { SqliteDatabase } from "./sqlite-store.js";

/** Table names for one table prefix. */
export interface TableNames {
  migrations: string;
  checkpoints: string;
  outputs: string;
  leases: string;
  runs: string;
  runKeys: string;
  changes: string;
  feed: string;
  meta: string;
}

/** One schema change. */
export interface Migration {
  /** Position in the history, from 1, without gaps. */
  version: number;
  /** Short description, recorded in the migrations table. */
  name: string;
  /** The SQL to run, for the given table names. */
  sql(tables: TableNames): string;
}

/** Table names for a prefix; the prefix must already be validated, since it lands in SQL. */
export function tableNames(prefix: string): TableNames {
  return {
    migrations: `${prefix}migrations`,
    checkpoints: `${prefix}checkpoints`,
    outputs: `${prefix}outputs`,
    leases: `${prefix}leases`,
    runs: `${prefix}runs`,
    runKeys: `${prefix}run_keys`,
    changes: `${prefix}changes`,
    feed: `${prefix}feed`,
    meta: `${prefix}meta`,
  };
}

/** Every migration, oldest first. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "checkpoints and outputs",
    // The run index also carries the tie-breakers (timestamp, id) so that both the oldest-first
    // listing and the newest-first "latest" lookup are served in index order, with no sort step.
    sql: (t) => `
      CREATE TABLE ${t.checkpoints} (
        checkpoint_id TEXT NOT NULL PRIMARY KEY,
        pipeline_id TEXT NOT NULL,
        pipeline_name TEXT NOT NULL,
        stage_name TEXT NOT NULL,
        stage_index INTEGER NOT NULL,
        sequence INTEGER NOT NULL,
        timestamp TEXT NOT NULL,
        status TEXT NOT NULL,
        checksum TEXT NOT NULL,
        data_size INTEGER NOT NULL,
        error_message TEXT NULL,
        resume_count INTEGER NOT NULL,
        parent_checkpoint_id TEXT NULL,
        parent_checksum TEXT NULL,
        format_version INTEGER NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX ${t.checkpoints}_run_sequence
        ON ${t.checkpoints} (pipeline_id, sequence DESC, timestamp DESC, checkpoint_id DESC);
      CREATE INDEX ${t.checkpoints}_timestamp ON ${t.checkpoints} (timestamp);
      CREATE TABLE ${t.outputs} (
        pipeline_id TEXT NOT NULL,
        hash TEXT NOT NULL,
        body TEXT NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (pipeline_id, hash)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: "run leases",
    // One row per run ever leased; a released lease keeps its row so tokens are never reused.
    sql: (t) => `
      CREATE TABLE ${t.leases} (
        pipeline_id TEXT NOT NULL PRIMARY KEY,
        owner TEXT NOT NULL,
        token INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: "runs by pipeline name",
    // One row per run: what `listRuns` answers from, and the run's head (its last checkpoint
    // written) for checks of lost history. The partial index serves "unfinished runs" without
    // reading the finished ones. Backfilled from the checkpoints already stored.
    sql: (t) => `
      CREATE TABLE ${t.runs} (
        pipeline_id TEXT NOT NULL PRIMARY KEY,
        pipeline_name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        finished INTEGER NOT NULL,
        last_sequence INTEGER NULL,
        last_checkpoint_id TEXT NULL,
        last_checksum TEXT NULL
      ) WITHOUT ROWID;
      CREATE INDEX ${t.runs}_by_name ON ${t.runs} (pipeline_name, created_at DESC, pipeline_id DESC);
      CREATE INDEX ${t.runs}_unfinished ON ${t.runs} (pipeline_name, created_at DESC, pipeline_id DESC)
        WHERE finished = 0;
      ${recomputeRuns(t, "")};
    `,
  },
  {
    version: 4,
    name: "retention tombstones on run heads",
    // What retention removed from a run (up to which sequence, when), so that validation tells
    // retention from lost history.
    sql: (t) => `
      ALTER TABLE ${t.runs} ADD COLUMN pruned_through INTEGER NULL;
      ALTER TABLE ${t.runs} ADD COLUMN pruned_at TEXT NULL;
    `,
  },
  {
    version: 5,
    name: "run key records",
    // One row per encrypted run: its data key wrapped by a key-encryption key (opaque text).
    // A table of its own, so no listing of runs ever sees a run that has only a key.
    sql: (t) => `
      CREATE TABLE ${t.runKeys} (
        pipeline_id TEXT NOT NULL PRIMARY KEY,
        record TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 6,
    name: "change feed and meta values",
    // AUTOINCREMENT: a position is never handed out twice, even after trimming removed the
    // newest rows' predecessors. The one-row feed table holds the feed's random id (a cursor of
    // another database is told apart) and the highest position retention removed. A database
    // migrated here has no changes for its older history: the feed starts now.
    sql: (t) => `
      CREATE TABLE ${t.changes} (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        pipeline_id TEXT NOT NULL,
        pipeline_name TEXT NOT NULL,
        checkpoint_id TEXT NULL,
        sequence INTEGER NULL,
        at TEXT NOT NULL
      );
      CREATE TABLE ${t.feed} (
        singleton INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
        feed_id TEXT NOT NULL,
        trimmed_through INTEGER NOT NULL
      );
      INSERT INTO ${t.feed} (singleton, feed_id, trimmed_through) VALUES (1, lower(hex(randomblob(8))), 0);
      CREATE TABLE ${t.meta} (
        key TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
];

/**
 * `INSERT OR REPLACE` of the runs rows recomputed from the checkpoints, for every run or (with
 * a `WHERE` on `pipeline_id`) one: created and named by the first checkpoint, finished by a
 * `pipeline_complete` one, headed by the newest. Also what `rebuildIndexes` runs.
 */
export function recomputeRuns(t: TableNames, where: string): string {
  const c = t.checkpoints;
  const pick = (order: string) =>
    `(SELECT checkpoint_id FROM ${c} WHERE pipeline_id = r.pipeline_id ORDER BY ${order} LIMIT 1)`;
  return `INSERT OR REPLACE INTO ${t.runs}
      (pipeline_id, pipeline_name, created_at, finished, last_sequence, last_checkpoint_id, last_checksum)
    SELECT r.pipeline_id, CAST(f.pipeline_name AS TEXT), CAST(f.timestamp AS TEXT),
      EXISTS (SELECT 1 FROM ${c} WHERE pipeline_id = r.pipeline_id AND stage_name = 'pipeline_complete'),
      l.sequence, l.checkpoint_id, l.checksum
    FROM (SELECT DISTINCT pipeline_id FROM ${c} ${where}) AS r
    JOIN ${c} AS f ON f.checkpoint_id = ${pick("sequence, timestamp, checkpoint_id")}
    JOIN ${c} AS l ON l.checkpoint_id = ${pick("sequence DESC, timestamp DESC, checkpoint_id DESC")}`;
}

/** The schema version this code writes and expects. */
export const LATEST_VERSION = MIGRATIONS.length;

/**
 * The oldest schema a read-only open reads: version 6 only adds the change feed and meta
 * values, which reading runs does not need, so upgrading cairn does not make every read-only
 * command on an existing database ask for `cairn migrate` first.
 */
export const READABLE_VERSION = 5;

/** The first version with the change feed and meta tables. */
export const FEED_VERSION = 6;

/**
 * Applies the migrations the database lacks, each in its own immediate transaction, and returns
 * the versions applied (empty when the schema is current). Each version is re-checked inside its
 * write lock, so processes that start together do not apply the same migration twice.
 */
export function applyMigrations(db: SqliteDatabase, tables: TableNames, now = () => new Date()): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS ${tables.migrations} (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const maxVersion = db.prepare(`SELECT MAX(version) AS v FROM ${tables.migrations}`).safeIntegers(false);
  const isApplied = db.prepare(`SELECT 1 FROM ${tables.migrations} WHERE version = ?`);
  const record = db.prepare(`INSERT INTO ${tables.migrations} (version, name, applied_at) VALUES (?, ?, ?)`);

  // Refuse a schema written by a newer cairn rather than read or write it with old assumptions.
  const current = (maxVersion.get() as { v: number | null } | undefined)?.v ?? 0;
  if (current > LATEST_VERSION) {
    throw new FormatTooNewError("store schema", tables.migrations, current, LATEST_VERSION);
  }

  const applied: number[] = [];
  for (const migration of MIGRATIONS) {
    const apply = db.transaction(() => {
      if (isApplied.get(migration.version) !== undefined) return false;
      db.exec(migration.sql(tables));
      record.run(migration.version, migration.name, now().toISOString());
      return true;
    });
    if (apply.immediate()) applied.push(migration.version);
  }
  return applied;
}

/** Every version recorded in the migrations table, ascending (empty before the first setup). */
export function recordedVersions(db: SqliteDatabase, tables: TableNames): number[] {
  const rows = db
    .prepare(`SELECT version FROM ${tables.migrations} ORDER BY version`)
    .safeIntegers(false)
    .all() as { version: number }[];
  return rows.map((r) => Number(r.version));
}

/**
 * For a read-only open: the database holds a cairn store whose schema this cairn reads, checked
 * without creating or migrating anything; returns its version (at least `READABLE_VERSION`).
 * No migrations table is `StoreNotFoundError`.
 */
export function checkReadable(db: SqliteDatabase, tables: TableNames, location: string): number {
  const found = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
    .get(tables.migrations);
  if (found === undefined)
    throw new StoreNotFoundError(location, `no ${tables.migrations} table in the database`);
  const current = recordedVersions(db, tables).at(-1) ?? 0;
  if (current > LATEST_VERSION) {
    throw new FormatTooNewError("store schema", tables.migrations, current, LATEST_VERSION);
  }
  if (current < READABLE_VERSION) throw schemaBehindError(location, current, LATEST_VERSION);
  return current;
}
