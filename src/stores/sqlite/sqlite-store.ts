/**
 * The SQLite store: one row per checkpoint (a column per metadata field, plus the body) and one
 * row per stage output, keyed by run and hash. It uses `better-sqlite3`, an optional peer
 * dependency that is imported only when a store is opened, never when cairn is imported.
 */
import { mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import {
  CheckpointCorruptError,
  CheckpointNotFoundError,
  InvalidConfigError,
  StoreNotFoundError,
  StoreUnavailableError,
  schemaBehindError,
} from "../../core/errors.js";
import { parseStoredMetadata } from "../../core/record.js";
import { hasCode } from "../../util/fs-util.js";
import { checkLeaseArgs } from "../lease.js";
import { listedFromRow } from "../raw-row.js";
import type { OpenOptions } from "../registry.js";
import { headOfRow } from "../run-head.js";
import type {
  CheckpointRecord,
  CheckpointStore,
  CorruptEntry,
  DeleteCheckpointsOptions,
  ImportedCheckpoint,
  ImportRunOptions,
  Lease,
  LeaseAttempt,
  ListedCheckpoint,
  ListRunsQuery,
  MigrationStatus,
  OutputRecord,
  PutOptions,
  RunHead,
  RunPage,
  StatusPatch,
  StoreChange,
} from "../types.js";
import { configProblems, DEFAULT_TABLE_PREFIX, feedRetentionOf, type SqliteStoreConfig } from "./config.js";
import type { SqliteDatabase } from "./database.js";
import { loadDriver } from "./driver.js";
import { createFeedWaiter, type FeedWaiter } from "./feed-wait.js";
import { prepareImport } from "./import.js";
import { readCorruptRow, reindexTables, removeCorruptRow } from "./maintenance.js";
import {
  applyMigrations,
  checkReadable,
  FEED_VERSION,
  LATEST_VERSION,
  recordedVersions,
  type TableNames,
  tableNames,
} from "./migrations.js";
import { asText, compareRows, metadataOf, type Row } from "./rows.js";
import { truncateWal } from "./run-keys.js";
import { listRunsPage, rebuildRun } from "./runs.js";
import { type Prepared, prepareAll } from "./statements.js";

export { DEFAULT_TABLE_PREFIX, type SqliteStoreConfig, type SqliteSynchronous } from "./config.js";
export type { SqliteDatabase, SqliteStatement, SqliteTransaction } from "./database.js";
export { FEED_POLL_MS } from "./feed-wait.js";

/** True when `path` is an existing file (a folder or nothing is no database to read). */
async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (error) {
    if (hasCode(error, "ENOENT") || hasCode(error, "ENOTDIR")) return false;
    throw error;
  }
}

/** A checkpoint store in a SQLite database file, through `better-sqlite3`. */
export class SqliteStore implements CheckpointStore {
  readonly strategy = "sqlite";
  readonly location: string;
  readonly persistent: boolean;
  private readonly tables: TableNames;
  private prepared: Prepared | undefined;
  private importer: ReturnType<typeof prepareImport> | undefined;
  private readonly appliedNow: number[] = [];
  private readonly waiter: FeedWaiter;

  private constructor(
    private readonly db: SqliteDatabase,
    prefix: string,
    private readonly ownsDatabase: boolean,
    private readonly readOnly: boolean,
    private readonly feedRetention: number,
  ) {
    this.tables = tableNames(prefix);
    this.persistent = !db.memory;
    this.location = db.memory ? "sqlite::memory:" : `sqlite:${resolve(db.name)}`;
    // An in-memory database has no file to watch: only this store can write it.
    const file = db.memory || db.name === "" ? undefined : resolve(db.name);
    this.waiter = createFeedWaiter(file, (since) => this.ready.feed.hasChangesAfter(since));
  }

  /** Validates the configuration, loads the driver and opens (or adopts) the database. */
  static async open(config: Record<string, unknown>, options: OpenOptions = {}): Promise<SqliteStore> {
    const {
      dbPath,
      database,
      tablePrefix = DEFAULT_TABLE_PREFIX,
      synchronous = "full",
    } = config as SqliteStoreConfig;
    const problems = configProblems(config);
    if (problems.length > 0) throw new InvalidConfigError(problems);
    const retention = feedRetentionOf(config.feedRetention) as number;
    const readOnly = options.readOnly === true;

    // The caller's connection keeps the caller's settings (pragmas included): they own it.
    if (database !== undefined) return new SqliteStore(database, tablePrefix, false, readOnly, retention);

    const Database = await loadDriver();
    const path = dbPath === ":memory:" ? dbPath : resolve(dbPath as string);
    let db: SqliteDatabase | undefined;
    const location = `sqlite:${path}`;
    if (options.readOnly && (path === ":memory:" || !(await isFile(path)))) {
      throw new StoreNotFoundError(location, "the database file does not exist");
    }
    try {
      if (options.readOnly) {
        // No folder, no file, no journal mode change: a reader leaves the file as it found it.
        db = new Database(path, { fileMustExist: true });
        db.exec("PRAGMA busy_timeout = 5000");
        return new SqliteStore(db, tablePrefix, true, true, retention);
      }
      if (path !== ":memory:") await mkdir(dirname(path), { recursive: true });
      db = new Database(path);
      // First: switching to WAL takes a lock, and a process setting up the same file at the same
      // moment holds it; without a busy handler yet the switch fails at once (SQLITE_BUSY).
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec("PRAGMA journal_mode = WAL");
      // FULL syncs the WAL on every commit: a checkpoint reported as written survives power loss.
      // Always set explicitly: better-sqlite3 builds SQLite to drop to NORMAL on entering WAL mode.
      db.exec(`PRAGMA synchronous = ${synchronous === "normal" ? "NORMAL" : "FULL"}`);
      db.exec("PRAGMA foreign_keys = ON");
      // Deleted content (a destroyed run key above all) is overwritten with zeros, not left in
      // free space; the cost is the extra page writes of every delete.
      db.exec("PRAGMA secure_delete = ON");
    } catch (error) {
      db?.close();
      const reason = error instanceof Error ? error.message : String(error);
      throw new StoreUnavailableError("sqlite", `cannot open ${path}: ${reason}`, { cause: error });
    }
    return new SqliteStore(db, tablePrefix, true, false, retention);
  }

  /** Applies missing migrations and prepares the statements; idempotent. */
  async setup(): Promise<void> {
    let version = LATEST_VERSION;
    if (this.readOnly) version = checkReadable(this.db, this.tables, this.location);
    else this.appliedNow.push(...applyMigrations(this.db, this.tables));
    // A read-only open of a schema without the feed reads runs; its feed methods ask for a migrate.
    const noFeed = () => schemaBehindError(this.location, version, LATEST_VERSION);
    this.prepared ??= prepareAll(
      this.db,
      this.tables,
      this.feedRetention,
      version < FEED_VERSION ? noFeed : undefined,
    );
  }

  /** The schema versions recorded in the database, and those this store's setup applied. */
  async migrationStatus(): Promise<MigrationStatus> {
    const applied = recordedVersions(this.db, this.tables);
    return {
      applied,
      appliedNow: [...this.appliedNow],
      current: applied.at(-1) ?? 0,
      latest: LATEST_VERSION,
    };
  }

  private get ready(): Prepared {
    if (!this.prepared) {
      throw new StoreUnavailableError("sqlite", "it is not set up: call setup() before any other method");
    }
    return this.prepared;
  }

  private rowLocation(row: Row): string {
    return `${this.tables.checkpoints}#${String(row.checkpoint_id)}`;
  }

  private toRecord(row: Row | undefined): CheckpointRecord | undefined {
    if (row === undefined) return undefined;
    const where = this.rowLocation(row);
    const metadata = parseStoredMetadata(metadataOf(row), where);
    const body = asText(row.body);
    if (body === undefined)
      throw new CheckpointCorruptError(metadata.checkpoint_id, `${where}: body is not text`);
    return { metadata, body };
  }

  /** Stores the checkpoint and its outputs in one transaction; a duplicate id is a conflict. */
  async putCheckpoint(
    record: CheckpointRecord,
    outputs: readonly OutputRecord[],
    fence?: Lease,
    options?: PutOptions,
  ): Promise<void> {
    const expectedTip = options?.expectedTip;
    // IMMEDIATE takes the write lock up front, so a check (fence, tip) and its insert see one state.
    if (fence || expectedTip !== undefined)
      this.ready.transactions.put.immediate(record, outputs, fence, expectedTip);
    else this.ready.transactions.put(record, outputs, undefined, undefined);
    this.waiter.notify();
  }

  /** Stores a whole run in one immediate transaction; see `import.ts`. */
  async importRun(
    pipelineId: string,
    checkpoints: readonly ImportedCheckpoint[],
    options: ImportRunOptions,
  ): Promise<void> {
    this.importer ??= prepareImport(this.db, this.tables, this.ready);
    // A key record destroyed or replaced: its old bytes leave the WAL too.
    const destroyedKey = this.importer(pipelineId, checkpoints, options);
    this.waiter.notify();
    if (destroyedKey) truncateWal(this.db);
  }

  /** The run's key record (`<prefix>run_keys`); undefined when it has none. */
  async getRunKey(pipelineId: string): Promise<string | undefined> {
    return this.ready.keys.get(pipelineId);
  }

  /**
   * Compare-and-set of the run's key record, one statement under SQLite's write lock. A replaced
   * record's page is overwritten (secure_delete); the WAL frames holding it are truncated after.
   */
  async putRunKey(pipelineId: string, record: string, expected: string | undefined): Promise<boolean> {
    const set = this.ready.keys.put(pipelineId, record, expected);
    if (set && expected !== undefined) truncateWal(this.db);
    return set;
  }

  /** Takes the run's lease in an immediate transaction (atomic across processes). */
  async acquireLease(pipelineId: string, owner: string, ttlMs: number): Promise<LeaseAttempt> {
    checkLeaseArgs(owner, ttlMs);
    return this.ready.transactions.acquireLease.immediate(pipelineId, owner, ttlMs);
  }

  /** Extends a lease still held. */
  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    checkLeaseArgs(lease.owner, ttlMs);
    return this.ready.transactions.renewLease.immediate(lease, ttlMs);
  }

  /** Ends a lease still held, keeping its token. */
  async releaseLease(lease: Lease): Promise<void> {
    this.ready.transactions.releaseLease.immediate(lease);
  }

  /** The run's lease while unexpired, by the same clock as `acquireLease` (this process's). */
  async getLease(pipelineId: string): Promise<Lease | undefined> {
    const lease = this.ready.leaseOf(pipelineId);
    return lease && lease.expiresAt.getTime() > Date.now() ? lease : undefined;
  }

  /** One checkpoint by id, checked with `parseStoredMetadata`. */
  async getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined> {
    return this.toRecord(this.ready.statements.selectCheckpoint.get(checkpointId) as Row | undefined);
  }

  /** The run's newest checkpoint, read through the run index. */
  async getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined> {
    return this.toRecord(this.ready.statements.selectLatest.get(pipelineId) as Row | undefined);
  }

  /** The run's checkpoint metadata, oldest first; unparseable rows are listed as corrupt. */
  async listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]> {
    const rows = this.ready.statements.selectRun.all(pipelineId) as Row[];
    // SQLite orders text bytewise; re-sort so ties break exactly as `compareStored` does.
    return rows
      .sort(compareRows)
      .map((row) => listedFromRow(pipelineId, metadataOf(row), this.rowLocation(row)));
  }

  /** Every run id with a checkpoint or an output, sorted. */
  async listPipelineIds(): Promise<string[]> {
    const rows = this.ready.statements.selectRunIds.all() as { pipeline_id: unknown }[];
    return rows.map((r) => String(r.pipeline_id)).sort();
  }

  /** Runs of one pipeline, newest first, from the runs table's (partial) index. */
  async listRuns(query: ListRunsQuery): Promise<RunPage> {
    return listRunsPage(this.ready.runs, query);
  }

  /**
   * Updates only the patched fields and records a `status` change, in one immediate
   * transaction; `CheckpointNotFoundError` when the id is absent. An empty patch changes nothing.
   */
  async updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void> {
    const updated = this.ready.updateStatus(checkpointId, patch);
    if (!updated) throw new CheckpointNotFoundError(checkpointId);
    if (updated === "changed") this.waiter.notify();
  }

  /** Deletes the listed checkpoints of a run; returns how many existed. */
  async deleteCheckpoints(
    pipelineId: string,
    checkpointIds: readonly string[],
    options: DeleteCheckpointsOptions = {},
  ): Promise<number> {
    // Immediate: the rows are read (for the feed) before they are deleted, under one write lock.
    const { deleteCheckpoints } = this.ready.transactions;
    const deleted = deleteCheckpoints.immediate(pipelineId, checkpointIds, options.retention === true);
    if (deleted > 0) this.waiter.notify();
    return deleted;
  }

  /** The run's row in the runs table, as its head record. */
  async getRunHead(pipelineId: string): Promise<RunHead | undefined> {
    return headOfRow(this.ready.statements.selectHead.get(pipelineId) as Record<string, unknown> | undefined);
  }

  /** The run's outputs with the given hashes; missing hashes are absent from the map. */
  async getOutputs(pipelineId: string, hashes: readonly string[]): Promise<Map<string, string>> {
    return this.ready.transactions.getOutputs(pipelineId, hashes);
  }

  /** Every output hash stored for the run, sorted. */
  async listOutputHashes(pipelineId: string): Promise<string[]> {
    const rows = this.ready.statements.selectOutputHashes.all(pipelineId) as { hash: unknown }[];
    return rows.map((r) => String(r.hash));
  }

  /** Deletes the listed outputs of a run; returns how many existed. */
  async deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number> {
    return this.ready.transactions.deleteOutputs(pipelineId, hashes);
  }

  /**
   * Deletes the run's key record, then every checkpoint row (corrupt ones included) and output,
   * in one transaction; then, if there was a key record, truncates the WAL, which still holds it.
   */
  async deleteRun(pipelineId: string): Promise<void> {
    // Only after a key record went: a run without one has nothing the truncation must remove.
    const destroyedKey = this.ready.transactions.deleteRun.immediate(pipelineId);
    this.waiter.notify();
    if (destroyedKey) truncateWal(this.db);
  }

  /** The row of a corrupt entry, every column, as JSON. */
  async readCorruptEntry(entry: CorruptEntry): Promise<string> {
    return readCorruptRow(this.db, this.tables, entry);
  }

  /** Deletes a corrupt entry's row (by checkpoint id and run), once sure it still does not parse. */
  async removeCorruptEntry(entry: CorruptEntry): Promise<void> {
    removeCorruptRow(this.db, this.tables, entry, this.ready.statements.refreshHead);
  }

  /** `REINDEX` of cairn's tables (their indexes cover every run), and the run's runs-index row recomputed. */
  async rebuildIndexes(pipelineId: string): Promise<string[]> {
    const done = reindexTables(this.db, this.tables);
    done.push(rebuildRun(this.db, this.ready.runs, pipelineId));
    return done;
  }

  /** Changes after `since` (`<feedId>:<position>`), oldest first; see `feed.ts`. */
  async readChanges(since: string | undefined, limit: number): Promise<StoreChange[]> {
    return this.ready.feed.read(since, limit);
  }

  /** The cursor of the newest change (`<feedId>:0` for an empty feed). */
  async feedCursor(): Promise<string> {
    return this.ready.feed.cursor();
  }

  /** Waits for a change after `since`: `fs.watch` on the database's folder plus a poll; see `feed-wait.ts`. */
  async waitForChanges(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.waiter.wait(since, timeoutMs, signal);
  }

  /** A meta value (`<prefix>meta`); undefined when unset. */
  async getMeta(key: string): Promise<string | undefined> {
    return this.ready.feed.getMeta(key);
  }

  /** Sets a meta value in one statement (durable on commit; not a change). */
  async putMeta(key: string, value: string): Promise<void> {
    this.ready.feed.putMeta(key, value);
  }

  /** Ends pending feed waits, then closes the database when this store opened it; a caller's database is left open. */
  async close(): Promise<void> {
    this.waiter.close();
    if (this.ownsDatabase && this.db.open) this.db.close();
  }
}
