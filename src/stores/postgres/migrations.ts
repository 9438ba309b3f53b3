/**
 * Schema migrations of the PostgreSQL store. The list is append-only: a released migration is
 * never edited or renumbered, because databases in the field record which versions they have
 * applied in `<schema>.<prefix>migrations`. A schema change is a new entry with the next version.
 */
import { FormatTooNewError, StoreNotFoundError, schemaBehindError } from "../../core/errors.js";
import { sha256 } from "../../core/record.js";
import { newFeedId } from "../../feed/cursor.js";
import type { PgQueryable } from "./driver.js";

/** Quoted, schema-qualified names for one schema and table prefix. */
export interface TableNames {
  /** The schema, quoted. */
  schema: string;
  migrations: string;
  checkpoints: string;
  outputs: string;
  leases: string;
  runs: string;
  runKeys: string;
  changes: string;
  feed: string;
  meta: string;
  /** The trigger function that notifies the feed's channel. */
  feedNotify: string;
  /** The NOTIFY channel of this schema and prefix's feed (a plain identifier, at most 27 bytes). */
  feedChannel: string;
  /** Quoted index name for `<prefix><suffix>` (indexes live in the table's schema). */
  index(suffix: string): string;
}

/** One schema change. */
export interface Migration {
  /** Position in the history, from 1, without gaps. */
  version: number;
  /** Short description, recorded in the migrations table. */
  name: string;
  /** The SQL to run (several statements), for the given table names. */
  sql(tables: TableNames): string;
}

/** Table names for a schema and prefix; both must already be validated as plain identifiers. */
export function tableNames(schema: string, prefix: string): TableNames {
  // Quoted so that the names are taken exactly as configured (no case folding).
  const q = (name: string) => `"${schema}"."${prefix}${name}"`;
  return {
    schema: `"${schema}"`,
    migrations: q("migrations"),
    checkpoints: q("checkpoints"),
    outputs: q("outputs"),
    leases: q("leases"),
    runs: q("runs"),
    runKeys: q("run_keys"),
    changes: q("changes"),
    feed: q("feed"),
    meta: q("meta"),
    feedNotify: q("feed_notify"),
    // Hashed: channel names are identifiers of at most 63 bytes, and schema plus prefix may exceed it.
    feedChannel: `cairn_feed_${sha256(`${schema}.${prefix}`).slice(0, 16)}`,
    index: (suffix) => `"${prefix}${suffix}"`,
  };
}

/** Every migration, oldest first. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "checkpoints, outputs and run leases",
    // - Ids are COLLATE "C" so that ORDER BY is byte order whatever the database's locale: the
    //   same order as `compareStored`, and the same on every server.
    // - `body` is the exact canonical text the checksum covers; the JSONB columns are a copy for
    //   queries, never read back (NULL when the body holds what JSONB refuses, such as \u0000).
    // - The run index carries the tie-breakers (timestamp, id) so both the oldest-first listing
    //   and the newest-first "latest" lookup read the index in order, with no sort step.
    // - A lease row is kept after release so that tokens are never reused.
    sql: (t) => `
      CREATE TABLE ${t.checkpoints} (
        checkpoint_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        pipeline_id TEXT COLLATE "C" NOT NULL,
        pipeline_name TEXT NOT NULL,
        stage_name TEXT COLLATE "C" NOT NULL,
        stage_index INTEGER NOT NULL,
        sequence INTEGER NOT NULL,
        timestamp TIMESTAMPTZ NOT NULL,
        status TEXT NOT NULL,
        checksum TEXT NOT NULL,
        data_size BIGINT NOT NULL,
        error_message TEXT NULL,
        resume_count INTEGER NOT NULL,
        parent_checkpoint_id TEXT COLLATE "C" NULL,
        parent_checksum TEXT NULL,
        format_version INTEGER NOT NULL,
        completed_stages JSONB NULL,
        pending_stages JSONB NULL,
        state_data JSONB NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX ${t.index("checkpoints_run_sequence")}
        ON ${t.checkpoints} (pipeline_id, sequence DESC, timestamp DESC, checkpoint_id DESC);
      CREATE INDEX ${t.index("checkpoints_timestamp")} ON ${t.checkpoints} (timestamp);
      CREATE TABLE ${t.outputs} (
        pipeline_id TEXT COLLATE "C" NOT NULL,
        hash TEXT COLLATE "C" NOT NULL,
        body TEXT NOT NULL,
        size BIGINT NOT NULL,
        PRIMARY KEY (pipeline_id, hash)
      );
      CREATE TABLE ${t.leases} (
        pipeline_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        owner TEXT NOT NULL,
        token BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: "lz4 compression of bodies where the server supports it",
    // lz4 compresses and decompresses several times faster than the default pglz; servers built
    // without it (or older than 14) keep pglz, which is only slower.
    sql: (t) => `
      DO $$
      BEGIN
        IF EXISTS (SELECT 1 FROM pg_settings
                   WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
          EXECUTE 'ALTER TABLE ${t.checkpoints} ALTER COLUMN body SET COMPRESSION lz4';
          EXECUTE 'ALTER TABLE ${t.outputs} ALTER COLUMN body SET COMPRESSION lz4';
        END IF;
      END
      $$;
    `,
  },
  {
    version: 3,
    name: "runs by pipeline name",
    // One row per run: what `listRuns` answers from, and the run's head (its newest checkpoint),
    // which every write checks and moves under the row's lock: the atomic `expectedTip` check.
    // The partial index serves "unfinished runs" without reading the finished ones. created_at
    // keeps milliseconds only, as the timestamps cairn writes, so it reads back as the exact
    // ISO string of the run's first checkpoint and cursors compare exactly. fillfactor leaves
    // room on each page, so the update of a run's head every write stays a HOT update.
    sql: (t) => `
      CREATE TABLE ${t.runs} (
        pipeline_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        pipeline_name TEXT COLLATE "C" NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        finished BOOLEAN NOT NULL,
        last_sequence INTEGER NULL,
        last_checkpoint_id TEXT COLLATE "C" NULL,
        last_checksum TEXT NULL
      ) WITH (fillfactor = 70);
      CREATE INDEX ${t.index("runs_by_name")}
        ON ${t.runs} (pipeline_name, created_at DESC, pipeline_id DESC);
      CREATE INDEX ${t.index("runs_unfinished")}
        ON ${t.runs} (pipeline_name, created_at DESC, pipeline_id DESC) WHERE NOT finished;
      ${recomputeRuns(t, "")};
    `,
  },
  {
    version: 4,
    name: "retention tombstones on run heads",
    // What retention removed from a run (up to which sequence, when), so that validation tells
    // retention from lost history. Nullable columns without a default: no table rewrite.
    sql: (t) => `
      ALTER TABLE ${t.runs} ADD COLUMN pruned_through INTEGER NULL, ADD COLUMN pruned_at TEXT NULL;
    `,
  },
  {
    version: 5,
    name: "run key records",
    // One row per encrypted run: its data key wrapped by a key-encryption key (opaque text). A
    // table of its own, so no listing of runs sees a run that has only a key.
    sql: (t) => `
      CREATE TABLE ${t.runKeys} (
        pipeline_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        record TEXT NOT NULL
      );
    `,
  },
  {
    version: 6,
    name: "change feed and meta values",
    // - Positions come from the one-row feed table's counter, moved by each writing transaction
    //   as its last step and held until it commits: positions are then in commit order, so a
    //   reader never sees position n+1 before n (a sequence, allocated at insert, would be).
    // - feed_id is random per feed (chosen when this migration runs), so a cursor of another
    //   store or of a recreated schema is told apart; trimmed_through is the highest position
    //   retention deleted.
    // - A statement-level trigger notifies the channel once per inserting statement; NOTIFY is
    //   delivered at commit, and never for a transaction that rolls back.
    sql: (t) => `
      CREATE TABLE ${t.changes} (
        position BIGINT NOT NULL PRIMARY KEY,
        type TEXT NOT NULL,
        pipeline_id TEXT COLLATE "C" NOT NULL,
        pipeline_name TEXT NOT NULL,
        checkpoint_id TEXT COLLATE "C" NULL,
        sequence INTEGER NULL,
        at TIMESTAMPTZ NOT NULL DEFAULT now()
      );
      CREATE TABLE ${t.feed} (
        single BOOLEAN NOT NULL PRIMARY KEY DEFAULT true CHECK (single),
        feed_id TEXT NOT NULL,
        last BIGINT NOT NULL,
        trimmed_through BIGINT NOT NULL
      );
      INSERT INTO ${t.feed} (feed_id, last, trimmed_through) VALUES ('${newFeedId()}', 0, 0);
      CREATE TABLE ${t.meta} (
        key TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
      );
      CREATE FUNCTION ${t.feedNotify}() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        PERFORM pg_notify('${t.feedChannel}', '');
        RETURN NULL;
      END
      $fn$;
      CREATE TRIGGER ${t.index("changes_notify")} AFTER INSERT ON ${t.changes}
        FOR EACH STATEMENT EXECUTE PROCEDURE ${t.feedNotify}();
    `,
  },
];

/**
 * The runs rows recomputed from the checkpoints, for every run or (with a `WHERE` on
 * `pipeline_id`) one: created and named by the first checkpoint, finished by a
 * `pipeline_complete` one, headed by the newest. Also what `rebuildIndexes` runs.
 */
export function recomputeRuns(t: TableNames, where: string): string {
  const c = t.checkpoints;
  return `INSERT INTO ${t.runs} AS cur
      (pipeline_id, pipeline_name, created_at, finished, last_sequence, last_checkpoint_id, last_checksum)
    SELECT f.pipeline_id, f.pipeline_name, date_trunc('milliseconds', f.timestamp),
      EXISTS (SELECT 1 FROM ${c} AS x WHERE x.pipeline_id = f.pipeline_id AND x.stage_name = 'pipeline_complete'),
      l.sequence, l.checkpoint_id, l.checksum
    FROM (SELECT DISTINCT ON (pipeline_id) pipeline_id, pipeline_name, timestamp FROM ${c} ${where}
          ORDER BY pipeline_id, sequence, timestamp, checkpoint_id) AS f
    JOIN (SELECT DISTINCT ON (pipeline_id) pipeline_id, sequence, checkpoint_id, checksum FROM ${c} ${where}
          ORDER BY pipeline_id, sequence DESC, timestamp DESC, checkpoint_id DESC) AS l
      ON l.pipeline_id = f.pipeline_id
    ON CONFLICT (pipeline_id) DO UPDATE SET pipeline_name = EXCLUDED.pipeline_name,
      created_at = EXCLUDED.created_at, finished = EXCLUDED.finished, last_sequence = EXCLUDED.last_sequence,
      last_checkpoint_id = EXCLUDED.last_checkpoint_id, last_checksum = EXCLUDED.last_checksum`;
}

/** The schema version this code writes and expects. */
export const LATEST_VERSION = MIGRATIONS.length;

/** A signed 64-bit advisory lock key for a text, as a string (pg sends BIGINT as text). */
export function lockKey(text: string): string {
  return BigInt.asIntN(64, BigInt(`0x${sha256(`cairn:${text}`).slice(0, 16)}`)).toString();
}

/**
 * Applies the migrations the schema lacks and returns the versions applied (empty when it is
 * current). Runs inside the caller's transaction, under an advisory lock for this schema and
 * prefix, so processes that start together apply each migration once, and a failure leaves
 * nothing half-applied (PostgreSQL DDL is transactional).
 */
export async function applyMigrations(
  client: PgQueryable,
  schema: string,
  prefix: string,
  tables: TableNames,
): Promise<number[]> {
  await client.query({
    text: "SELECT pg_advisory_xact_lock($1::bigint)",
    values: [lockKey(`${schema}.${prefix}`)],
  });
  // Look before CREATE SCHEMA IF NOT EXISTS: that statement needs the CREATE privilege on the
  // database even when the schema exists, which a role using an existing schema may lack.
  const schemaExists = async () =>
    (await client.query({ text: "SELECT 1 FROM pg_namespace WHERE nspname = $1", values: [schema] })).rows
      .length > 0;
  if (!(await schemaExists())) {
    // Stores with other prefixes may create the same schema at the same moment; concurrent
    // CREATE SCHEMA IF NOT EXISTS can still fail with a unique violation, so serialize it too.
    await client.query({ text: "SELECT pg_advisory_xact_lock($1::bigint)", values: [lockKey(schema)] });
    if (!(await schemaExists())) await client.query({ text: `CREATE SCHEMA ${tables.schema}` });
  }
  await client.query({
    text: `CREATE TABLE IF NOT EXISTS ${tables.migrations} (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`,
  });
  const { rows } = await client.query({ text: `SELECT version FROM ${tables.migrations}` });
  const done = new Set(rows.map((r) => Number(r.version)));

  // Refuse a schema written by a newer cairn rather than read or write it with old assumptions.
  const current = Math.max(0, ...done);
  if (current > LATEST_VERSION) {
    throw new FormatTooNewError("store schema", tables.migrations, current, LATEST_VERSION);
  }

  const applied: number[] = [];
  for (const migration of MIGRATIONS) {
    if (done.has(migration.version)) continue;
    await client.query({ text: migration.sql(tables) });
    await client.query({
      text: `INSERT INTO ${tables.migrations} (version, name) VALUES ($1, $2)`,
      values: [migration.version, migration.name],
    });
    applied.push(migration.version);
  }
  return applied;
}

/** Every version recorded in the migrations table, ascending. */
export async function recordedVersions(client: PgQueryable, tables: TableNames): Promise<number[]> {
  const { rows } = await client.query({ text: `SELECT version FROM ${tables.migrations} ORDER BY version` });
  return rows.map((r) => Number(r.version));
}

/**
 * For a read-only open: the schema holds a cairn store whose version this cairn reads, checked
 * without creating or migrating anything. No schema or no migrations table is `StoreNotFoundError`.
 */
export async function checkReadable(
  client: PgQueryable,
  schema: string,
  tables: TableNames,
  location: string,
): Promise<void> {
  const { rows } = await client.query({
    text: "SELECT to_regclass($1) IS NOT NULL AS found, EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $2) AS schema",
    values: [tables.migrations, schema],
  });
  const row = rows[0] as { found: boolean; schema: boolean } | undefined;
  if (!row?.schema) throw new StoreNotFoundError(location, `the schema ${tables.schema} does not exist`);
  if (!row.found) throw new StoreNotFoundError(location, `no ${tables.migrations} table`);
  const current = (await recordedVersions(client, tables)).at(-1) ?? 0;
  if (current > LATEST_VERSION) {
    throw new FormatTooNewError("store schema", tables.migrations, current, LATEST_VERSION);
  }
  if (current < LATEST_VERSION) throw schemaBehindError(location, current, LATEST_VERSION);
}
