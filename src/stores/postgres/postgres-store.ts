/**
 * The PostgreSQL store: one row per checkpoint (a column per metadata field, JSONB copies of the
 * queried body parts, and the exact body text the checksum covers), one row per stage output
 * keyed by run and hash, one row per leased run. It uses `pg`, an optional peer dependency that
 * is imported only when a store is opened, never when cairn is imported.
 */
import { CheckpointCorruptError, CheckpointNotFoundError } from "../../core/errors.js";
import { parseStoredMetadata } from "../../core/record.js";
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
import { type ResolvedConfig, resolveConfig } from "./config.js";
import { deleteCheckpoints, deleteRun } from "./deletes.js";
import {
  classify,
  inTransaction,
  loadDriver,
  type PgDriver,
  type PgPool,
  type PgQueryable,
  type PgResult,
  type PgTypeParsers,
  typeParsers,
  writeOnPool,
} from "./driver.js";
import * as feed from "./feed.js";
import { FeedListener, listenerOpener } from "./feed-listener.js";
import { importRun } from "./import.js";
import { acquireLease } from "./leases.js";
import {
  applyMigrations,
  checkReadable,
  LATEST_VERSION,
  recordedVersions,
  type TableNames,
  tableNames,
} from "./migrations.js";
import { type PgWriter, putCheckpoint } from "./put.js";
import { buildStatements, type Statement, type Statements } from "./queries.js";
import { readCorruptEntry, rebuildIndexes, removeCorruptEntry } from "./repair.js";
import { leaseOf, metadataOf, type Row } from "./rows.js";
import { getRunKey, putRunKey } from "./run-keys.js";
import { listRunsPage } from "./runs.js";

export type { PostgresStoreConfig } from "./config.js";
export { configProblems, POSTGRES_OPTIONS } from "./config.js";
export type { PgPool, PgPoolClient } from "./driver.js";

/** A checkpoint store in a PostgreSQL database, through `pg`. */
export class PostgresStore implements CheckpointStore {
  /** Always `postgres`. */
  readonly strategy = "postgres";
  /** `postgres://host:port/db (schema x)`, without credentials. */
  readonly location: string;
  /** Data lives on the server. */
  readonly persistent = true;
  private readonly tables: TableNames;
  private readonly sql: Statements;
  private closed = false;
  private readonly appliedNow: number[] = [];
  private readonly writer: PgWriter;
  private readonly listener: FeedListener;
  private readonly schema: string;
  private readonly prefix: string;
  private readonly types: PgTypeParsers;

  private constructor(
    private readonly pool: PgPool,
    private readonly ownsPool: boolean,
    driver: PgDriver,
    resolved: ResolvedConfig,
    private readonly readOnly: boolean,
  ) {
    const { schema, tablePrefix: prefix } = resolved;
    this.schema = schema;
    this.prefix = prefix;
    this.types = typeParsers(driver);
    this.location = resolved.location;
    this.tables = tableNames(schema, prefix);
    this.sql = buildStatements(this.tables, schema, prefix);
    this.writer = {
      pool,
      sql: this.sql,
      writeOnce: this.writeOnce,
      feedRetention: resolved.feedRetention,
      run: (on, statement, values) => this.run(on, statement, values),
      call: (work) => this.call(work),
    };
    // pg's Pool keeps its options; the listener connects with them, beside the pool.
    const options = ownsPool ? resolved.poolOptions : (pool.options as Record<string, unknown> | undefined);
    this.listener = new FeedListener(listenerOpener(driver, pool, options), this.tables.feedChannel);
  }

  /** Validates the configuration, loads `pg` and creates (or adopts) the pool; connects lazily. */
  static async open(config: Record<string, unknown>, options: OpenOptions = {}): Promise<PostgresStore> {
    const resolved = resolveConfig(config);
    const driver = await loadDriver();
    const readOnly = options.readOnly ?? false;
    if (resolved.pool) return new PostgresStore(resolved.pool, false, driver, resolved, readOnly);
    const pool = new driver.Pool(resolved.poolOptions);
    // An idle client whose connection drops makes the pool emit 'error'; unhandled, that would
    // crash the process. The pool has already discarded the client, and the next query reports
    // the server as unavailable, so there is nothing else to do here.
    pool.on("error", () => {});
    return new PostgresStore(pool, true, driver, resolved, readOnly);
  }

  /** Creates the schema and applies missing migrations, in one transaction; idempotent. */
  async setup(): Promise<void> {
    if (this.readOnly)
      return this.call(() => checkReadable(this.pool, this.schema, this.tables, this.location));
    const applied = await this.call(() =>
      inTransaction(this.pool, (client) => applyMigrations(client, this.schema, this.prefix, this.tables)),
    );
    this.appliedNow.push(...applied);
  }

  /** The schema versions recorded on the server, and those this store's setup applied. */
  async migrationStatus(): Promise<MigrationStatus> {
    const applied = await this.call(() => recordedVersions(this.pool, this.tables));
    return {
      applied,
      appliedNow: [...this.appliedNow],
      current: applied.at(-1) ?? 0,
      latest: LATEST_VERSION,
    };
  }

  // Every method runs through here, so a connection failure is always a StoreUnavailableError.
  private async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw classify(error);
    }
  }

  // Single write statements run here: a connection lost after sending one is reported as maybe applied.
  private readonly writeOnce: PgQueryable = { query: (query) => writeOnPool(this.pool, query) };

  private run(on: PgQueryable, statement: Statement, values: unknown[]): Promise<PgResult> {
    return on.query({ ...statement, values, types: this.types });
  }

  private rowLocation(row: Row): string {
    return `${this.schema}.${this.prefix}checkpoints#${String(row.checkpoint_id)}`;
  }

  private toRecord(row: Row | undefined): CheckpointRecord | undefined {
    if (row === undefined) return undefined;
    const where = this.rowLocation(row);
    const metadata = parseStoredMetadata(metadataOf(row), where);
    if (typeof row.body !== "string") {
      throw new CheckpointCorruptError(metadata.checkpoint_id, `${where}: body is not text`);
    }
    return { metadata, body: row.body };
  }

  /**
   * Stores the checkpoint and its outputs atomically, with the run's row (runs index and head);
   * a duplicate id is a conflict. See `put.ts`.
   */
  async putCheckpoint(
    record: CheckpointRecord,
    outputs: readonly OutputRecord[],
    fence?: Lease,
    options?: PutOptions,
  ): Promise<void> {
    await putCheckpoint(this.writer, record, outputs, fence, options?.expectedTip);
  }

  /** Stores a whole run in one transaction; see `import.ts`. */
  async importRun(
    pipelineId: string,
    checkpoints: readonly ImportedCheckpoint[],
    options: ImportRunOptions,
  ): Promise<void> {
    await importRun(this.writer, this.tables, pipelineId, checkpoints, options);
  }

  /** Takes the run's lease in a transaction that locks its row, by the server's clock. */
  async acquireLease(pipelineId: string, owner: string, ttlMs: number): Promise<LeaseAttempt> {
    checkLeaseArgs(owner, ttlMs);
    return acquireLease(this.writer, pipelineId, owner, ttlMs);
  }

  /** Extends a lease still held (same owner and token), by the server's clock. */
  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    checkLeaseArgs(lease.owner, ttlMs);
    // One conditional UPDATE is atomic: no transaction needed.
    const { rows } = await this.call(() =>
      this.run(this.writeOnce, this.sql.renewLease, [lease.pipelineId, lease.owner, lease.token, ttlMs]),
    );
    const row = rows[0];
    return row ? { ...lease, expiresAt: new Date(row.expires_at as Date) } : undefined;
  }

  /** Ends a lease still held, keeping its token (the row stays, expired). */
  async releaseLease(lease: Lease): Promise<void> {
    await this.call(() =>
      this.run(this.writeOnce, this.sql.releaseLease, [lease.pipelineId, lease.owner, lease.token]),
    );
  }

  /** The run's lease while unexpired by the server's clock; one SELECT, nothing written. */
  async getLease(pipelineId: string): Promise<Lease | undefined> {
    const { rows } = await this.call(() => this.run(this.pool, this.sql.liveLease, [pipelineId]));
    return leaseOf(pipelineId, rows[0]);
  }

  /** One checkpoint by id, checked with `parseStoredMetadata`. */
  async getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined> {
    const { rows } = await this.call(() => this.run(this.pool, this.sql.selectCheckpoint, [checkpointId]));
    return this.toRecord(rows[0]);
  }

  /** The run's newest checkpoint: one indexed `ORDER BY ... LIMIT 1`. */
  async getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined> {
    const { rows } = await this.call(() => this.run(this.pool, this.sql.selectLatest, [pipelineId]));
    return this.toRecord(rows[0]);
  }

  /** The run's checkpoint metadata, oldest first; unparseable rows are listed as corrupt. */
  async listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]> {
    const { rows } = await this.call(() => this.run(this.pool, this.sql.selectRun, [pipelineId]));
    return rows.map((row) => listedFromRow(pipelineId, metadataOf(row), this.rowLocation(row)));
  }

  /** Every run id with a checkpoint or an output, sorted. */
  async listPipelineIds(): Promise<string[]> {
    const { rows } = await this.call(() => this.run(this.pool, this.sql.selectRunIds, []));
    return rows.map((r) => String(r.pipeline_id)).sort();
  }

  /** Runs of one pipeline, newest first: one indexed range read of the runs table. */
  async listRuns(query: ListRunsQuery): Promise<RunPage> {
    return listRunsPage(this.writer, query);
  }

  /**
   * Writes every patched field and records the `status` change in one statement;
   * `CheckpointNotFoundError` when the id is absent.
   */
  async updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void> {
    const { rowCount } = await this.call(() =>
      this.run(this.writeOnce, this.sql.feed.updateCheckpoint, [
        checkpointId,
        patch.status !== undefined,
        patch.status ?? null,
        patch.error_message !== undefined,
        patch.error_message ?? null,
        patch.resume_count !== undefined,
        patch.resume_count ?? null,
        this.writer.feedRetention,
      ]),
    );
    if (rowCount === 0) throw new CheckpointNotFoundError(checkpointId);
  }

  /** Deletes the listed checkpoints of a run, with a `deleted` change each; see `deletes.ts`. */
  async deleteCheckpoints(
    pipelineId: string,
    checkpointIds: readonly string[],
    options: DeleteCheckpointsOptions = {},
  ): Promise<number> {
    return deleteCheckpoints(this.writer, pipelineId, checkpointIds, options);
  }

  /** The run's row in the runs table, as its head record. */
  async getRunHead(pipelineId: string): Promise<RunHead | undefined> {
    const { rows } = await this.call(() => this.run(this.pool, this.sql.selectHead, [pipelineId]));
    return headOfRow(rows[0]);
  }

  /** The run's outputs with the given hashes, read in one statement (one snapshot). */
  async getOutputs(pipelineId: string, hashes: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    if (hashes.length === 0) return found;
    const { rows } = await this.call(() =>
      this.run(this.pool, this.sql.selectOutputs, [pipelineId, [...hashes]]),
    );
    for (const row of rows) {
      if (typeof row.body !== "string") {
        throw new CheckpointCorruptError(
          undefined,
          `${this.schema}.${this.prefix}outputs#${pipelineId}/${String(row.hash)}: output body is not text`,
        );
      }
      found.set(String(row.hash), row.body);
    }
    return found;
  }

  /** Every output hash stored for the run, sorted. */
  async listOutputHashes(pipelineId: string): Promise<string[]> {
    const { rows } = await this.call(() => this.run(this.pool, this.sql.selectOutputHashes, [pipelineId]));
    return rows.map((r) => String(r.hash));
  }

  /** Deletes the listed outputs of a run; returns how many existed. */
  async deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number> {
    if (hashes.length === 0) return 0;
    const { rowCount } = await this.call(() =>
      this.run(this.writeOnce, this.sql.deleteOutputs, [pipelineId, [...hashes]]),
    );
    return rowCount ?? 0;
  }

  /** The run's key record (`<prefix>run_keys`); undefined when it has none. */
  async getRunKey(pipelineId: string): Promise<string | undefined> {
    return getRunKey(this.writer, pipelineId);
  }

  /** Compare-and-set of the run's key record, one statement; see `run-keys.ts`. */
  async putRunKey(pipelineId: string, record: string, expected: string | undefined): Promise<boolean> {
    return putRunKey(this.writer, pipelineId, record, expected);
  }

  /** Deletes everything stored for the run in one transaction; see `deletes.ts`. */
  async deleteRun(pipelineId: string): Promise<void> {
    await deleteRun(this.writer, pipelineId);
  }

  /** The row of a corrupt entry, every column, as JSON. */
  async readCorruptEntry(entry: CorruptEntry): Promise<string> {
    return readCorruptEntry(this.writer, entry);
  }

  /** Deletes a corrupt entry's row (by checkpoint id and run), once sure it still does not parse. */
  async removeCorruptEntry(entry: CorruptEntry): Promise<void> {
    await removeCorruptEntry(this.writer, entry);
  }

  /**
   * `REINDEX TABLE` of cairn's tables (their indexes cover every run, so `pipelineId` does not
   * narrow it), and the run's runs-index row recomputed from its checkpoints. See `repair.ts`.
   */
  async rebuildIndexes(pipelineId: string): Promise<string[]> {
    return rebuildIndexes(this.writer, this.tables, pipelineId);
  }

  /** Changes after `since`, oldest first, in commit order; see `feed.ts`. */
  async readChanges(since: string | undefined, limit: number): Promise<StoreChange[]> {
    return feed.readChanges(this.writer, since, limit);
  }

  /** `<feedId>:<newest position>`. */
  async feedCursor(): Promise<string> {
    return feed.feedCursor(this.writer);
  }

  /** Waits on the feed's NOTIFY channel, on a connection of its own; see `feed-listener.ts`. */
  async waitForChanges(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const after = feed.parseCursor(since);
    return this.call(() => this.listener.wait(() => feed.feedMoved(this.writer, after), timeoutMs, signal));
  }

  /** A row of `<prefix>meta`; undefined when unset. */
  async getMeta(key: string): Promise<string | undefined> {
    return feed.getMeta(this.writer, key);
  }

  /** Upserts a row of `<prefix>meta`. */
  async putMeta(key: string, value: string): Promise<void> {
    await feed.putMeta(this.writer, key, value);
  }

  /** Ends the feed's listening connection, and the pool when this store created it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener.close();
    if (this.ownsPool) await this.pool.end();
  }
}
