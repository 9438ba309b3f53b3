/**
 * The store contract. A store moves records and bytes; it never encodes, hashes or verifies:
 * the core does that once for every store (see `core/record.ts`). Every store passes the same
 * conformance suite (`test/conformance/`), which a third-party store can run too.
 *
 * Rules every store follows:
 * - `putCheckpoint` is create-only and atomic: the checkpoint and its new outputs are all
 *   stored, or nothing is. An existing checkpoint id is a `CheckpointConflictError`.
 * - Records come back as copies: mutating a returned record never changes the store.
 * - Listing is by exact `pipelineId` (run `p1` never lists `p10`), oldest first by `sequence`.
 * - Something the store holds but cannot parse is reported as a corrupt entry, never skipped.
 * - Errors are thrown, never swallowed: a lost checkpoint is data loss.
 * - Names and ids arrive already checked against the name pattern: `GuardedStore`, which wraps
 *   every store a manager uses, checks them once for all stores.
 */
import type { CheckpointRecord, OutputRecord, StatusPatch, StoredMetadata } from "../core/record.js";

export type { CheckpointRecord, OutputRecord, StatusPatch, StoredMetadata };

/** A stored checkpoint that cannot be parsed, as listings report it. */
export interface CorruptEntry {
  pipelineId: string;
  /** The checkpoint id, when it can be told from the location. */
  checkpointId: string | undefined;
  /** Where it is: a file path, a row key, a Redis key. */
  location: string;
  /** Why it is corrupt. */
  reason: string;
}

/** One entry of a run's listing: parsed metadata, or a corrupt entry. */
export type ListedCheckpoint = { ok: true; metadata: StoredMetadata } | { ok: false; corrupt: CorruptEntry };

/**
 * A runner's lease on a run. Only the holder of the current lease executes the run; every
 * checkpoint it writes carries the lease, and the store refuses the write unless the lease is
 * still the run's current one (fencing), so a stalled runner cannot overwrite its successor.
 */
export interface Lease {
  pipelineId: string;
  /** Who holds it: a unique id per runner (host, pid, random). */
  owner: string;
  /** Fencing token: strictly increases each time the run changes hands; never reused. */
  token: number;
  /** When it runs out unless renewed. */
  expiresAt: Date;
}

/** Outcome of `acquireLease`. */
export type LeaseAttempt = { acquired: true; lease: Lease } | { acquired: false; holder: Lease };

/** Schema versions of a store with migrations (sqlite, postgres). */
export interface MigrationStatus {
  /** Every version recorded in the store, ascending. */
  applied: number[];
  /** The versions this store instance's `setup()` applied; empty when the schema was current. */
  appliedNow: number[];
  /** The highest version recorded (0 before any). */
  current: number;
  /** The highest version this cairn knows. */
  latest: number;
}

/** Options of `putCheckpoint`. */
export interface PutOptions {
  /**
   * Store the checkpoint only if the run's newest checkpoint is this id (`null`: the run has
   * none), checked atomically with the write; otherwise `TipMovedError` and nothing is stored.
   * Every store honours it, so two writers never fork a run, with or without a lease.
   */
  expectedTip?: string | null;
}

/**
 * One run in the runs-by-name index. Every store keeps this index up to date atomically with
 * `putCheckpoint` and `deleteRun`, so finding a pipeline's runs never scans the store.
 */
export interface RunEntry {
  pipelineId: string;
  /** The `pipeline_name` of the run's first stored checkpoint. */
  pipelineName: string;
  /** The timestamp (ISO 8601, as stored) of the run's first stored checkpoint; runs sort by it. */
  createdAt: string;
  /** True once a checkpoint of stage `pipeline_complete` was stored for the run. */
  finished: boolean;
}

/** A query of `listRuns`. */
export interface ListRunsQuery {
  /** The pipeline whose runs to list (exact name). */
  pipelineName: string;
  /** Only runs that have no `pipeline_complete` checkpoint. */
  unfinished?: boolean;
  /** Page size: 1 to 1,000 (default 100). */
  limit?: number;
  /** The `nextCursor` of the previous page; opaque to callers. */
  cursor?: string;
}

/** A page of `listRuns`: newest first (`createdAt`, then `pipelineId`, both descending). */
export interface RunPage {
  runs: RunEntry[];
  /** Present when more runs may follow; pass it as `cursor` for the next page. */
  nextCursor?: string;
}

/** One checkpoint of `importRun`, with the outputs it introduces. */
export interface ImportedCheckpoint {
  record: CheckpointRecord;
  outputs: readonly OutputRecord[];
}

/** Options of `importRun`. */
export interface ImportRunOptions {
  /** Replace a run the store already holds, in the same atomic step; never deleted first. */
  replace: boolean;
  /**
   * The run's key record (see {@link CheckpointStore.getRunKey}), set in the same atomic step.
   * Without it, a replaced run's key record is destroyed with the old run; a new run's key
   * record (a writer may have created one before its first checkpoint) is left as it is.
   */
  runKey?: string;
}

/**
 * A run's head record: the last checkpoint written to it, kept by the store atomically with every
 * `putCheckpoint` and `importRun`, and what retention removed. The run's listing is compared with
 * it to tell lost history (a truncated tail, a replaced tip) from retention.
 */
export interface RunHead {
  /** Sequence of the last checkpoint written (the highest written, on a store that never lowers it). */
  sequence: number;
  checkpointId: string;
  checksum: string;
  /** What retention removed: every checkpoint up to this sequence, last at this time (ISO 8601). */
  pruned?: { throughSequence: number; at: string };
}

/** Options of `deleteCheckpoints`. */
export interface DeleteCheckpointsOptions {
  /**
   * The deletion is retention: the store records a tombstone (the highest sequence deleted, and
   * when) on the run's head in the same atomic step, so the gap is not reported as lost history.
   */
  retention?: boolean;
}

/** The kind of a change in a store's feed: a checkpoint written, its status changed, or deleted. */
export type ChangeType = "checkpoint" | "status" | "deleted";

/**
 * One change in a store's feed, recorded by the store atomically with the change itself (same
 * transaction, Lua script, or crash-recovered log), so the feed never misses a committed change.
 * `putCheckpoint` and each checkpoint of `importRun` record `checkpoint`; `updateCheckpoint`
 * records `status`; `deleteCheckpoints` records one `deleted` per checkpoint that existed;
 * `deleteRun` (and `importRun` with `replace` over an existing run) records one `deleted`
 * without `checkpointId`. Outputs, leases, key records and corrupt-entry repairs are not changes.
 */
export interface StoreChange {
  /** This change's position in the feed: opaque; pass it back as `since` to read what follows. */
  cursor: string;
  type: ChangeType;
  pipelineId: string;
  /** The run's `pipeline_name` ("" when the store held no checkpoint of the run). */
  pipelineName: string;
  /** The checkpoint written, updated or deleted; absent when a whole run was deleted. */
  checkpointId?: string;
  /** That checkpoint's sequence; present exactly when `checkpointId` is. */
  sequence?: number;
  /** When the store recorded the change (ISO 8601; the server's clock where there is one). */
  at: string;
}

/** The contract every checkpoint store implements. */
export interface CheckpointStore {
  /** Strategy name, e.g. `file`. */
  readonly strategy: string;
  /** Where the data lives, for messages (`file:/var/cairn`, `postgres://host/db`). */
  readonly location: string;
  /** True when data survives `close()` and a new store on the same location sees it. */
  readonly persistent: boolean;

  /** Creates folders, tables or schema; idempotent. Called once before any other method. */
  setup(): Promise<void>;

  /**
   * Stores a checkpoint and the outputs it introduces, atomically; create-only. With `fence`,
   * the write happens only if `fence` is still the run's current lease (same owner and token),
   * checked atomically with the write; otherwise `LeaseLostError` and nothing is stored.
   */
  putCheckpoint(
    record: CheckpointRecord,
    outputs: readonly OutputRecord[],
    fence?: Lease,
    options?: PutOptions,
  ): Promise<void>;

  /**
   * Stores a whole run in one atomic step: its checkpoints (oldest first, every one of run
   * `pipelineId`) and their outputs all become visible at once, or none do, even if the process
   * is killed half-way. The store's indexes (`listRuns`, the run's head) end up exactly as if the
   * checkpoints had been put one by one in that order. A run the store already holds (anything
   * stored for it) is a `CheckpointConflictError` and nothing changes, unless `replace` is set:
   * then the old run is replaced in the same step, never deleted first. A checkpoint id another
   * run holds is always a `CheckpointConflictError`. The run's lease (and fencing token) is kept.
   */
  importRun(
    pipelineId: string,
    checkpoints: readonly ImportedCheckpoint[],
    options: ImportRunOptions,
  ): Promise<void>;

  /**
   * Takes the run's lease for `ttlMs` if nobody holds an unexpired one (or `owner` already
   * does). A new holder gets a token greater than any before; atomic across processes.
   * Expiry is judged by the server's clock or, where there is none (the file store), by the
   * caller having seen the same lease unrenewed for its TTL: such a store may wait that long.
   */
  acquireLease(pipelineId: string, owner: string, ttlMs: number): Promise<LeaseAttempt>;

  /** Extends a lease still held (same owner and token); undefined when it was taken over. */
  renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined>;

  /** Ends a lease still held, keeping its token so tokens are never reused. */
  releaseLease(lease: Lease): Promise<void>;

  /**
   * The run's current lease if one is held and unexpired, by the store's own clock rule; read-only
   * (creates and changes nothing). A display hint (is a runner executing this run?), never a fence.
   */
  getLease(pipelineId: string): Promise<Lease | undefined>;

  /** One checkpoint by id; undefined when absent; `CheckpointCorruptError` when unparseable. */
  getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined>;

  /** The run's checkpoint with the highest sequence, without reading the whole history. */
  getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined>;

  /** The run's checkpoints, oldest first, with corrupt entries included. */
  listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]>;

  /** Every run id that has anything stored, sorted. */
  listPipelineIds(): Promise<string[]>;

  /**
   * Runs of one pipeline, newest first, one page at a time, answered from an index (never by
   * reading every run). A run enters the index with its first checkpoint (`createdAt` is that
   * checkpoint's timestamp, `pipelineName` its `pipeline_name`), becomes `finished` with its
   * `pipeline_complete` checkpoint, and leaves it with `deleteRun`. A run whose checkpoints were
   * all deleted by `deleteCheckpoints` may still be listed; callers treat it as absent.
   */
  listRuns(query: ListRunsQuery): Promise<RunPage>;

  /** Changes the mutable fields of a checkpoint; `CheckpointNotFoundError` when absent. */
  updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void>;

  /**
   * Deletes checkpoints of a run; returns how many existed. Outputs are left alone. The run's
   * head is never moved back: a deletion that is not retention stays visible as a truncation.
   */
  deleteCheckpoints(
    pipelineId: string,
    checkpointIds: readonly string[],
    options?: DeleteCheckpointsOptions,
  ): Promise<number>;

  /**
   * The run's head record (see {@link RunHead}); undefined when the store holds none for the run
   * (never written, deleted with `deleteRun`, or lost with the store's data).
   */
  getRunHead(pipelineId: string): Promise<RunHead | undefined>;

  /** Outputs of a run by hash; hashes the store does not hold are absent from the map. */
  getOutputs(pipelineId: string, hashes: readonly string[]): Promise<Map<string, string>>;

  /** Every output hash stored for a run. */
  listOutputHashes(pipelineId: string): Promise<string[]>;

  /** Deletes outputs of a run; returns how many existed. */
  deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number>;

  /**
   * Deletes everything stored for a run, corrupt entries included, in one atomic step: a reader
   * never sees the run half-deleted, even when the process is killed during the delete.
   */
  deleteRun(pipelineId: string): Promise<void>;

  /**
   * The raw stored content of a corrupt listing entry, for a backup before a repair: a file's
   * text, or a JSON rendering of the SQL row or Redis hash. `CheckpointNotFoundError` when the
   * entry is gone (a store that never holds corrupt entries always throws that).
   */
  readCorruptEntry(entry: CorruptEntry): Promise<string>;

  /**
   * Removes a corrupt listing entry from its run. `CheckpointNotFoundError` when it is gone;
   * `CheckpointConflictError` when it parses now (never a way to delete a readable checkpoint).
   */
  removeCorruptEntry(entry: CorruptEntry): Promise<void>;

  /**
   * Optional: rebuilds the store's own indexes for a run (SQL `REINDEX`, the Redis run index, the
   * run's `listRuns` entry, from its checkpoints) and returns what it did, one line each. Never
   * changes checkpoint content.
   */
  rebuildIndexes?(pipelineId: string): Promise<string[]>;

  /**
   * Optional (a store without it cannot hold encrypted runs): the run's key record, opaque text
   * the encryption layer writes (its data key, wrapped by a key-encryption key); undefined when
   * the run has none. A key record alone does not make a run exist for `listPipelineIds`.
   */
  getRunKey?(pipelineId: string): Promise<string | undefined>;

  /**
   * Optional, with `getRunKey`: sets the run's key record if the stored one is still exactly
   * `expected` (undefined: the run has none), checked atomically with the write across
   * processes; returns false and changes nothing otherwise. `deleteRun` destroys the key record
   * first, overwriting what the store can overwrite, so copies of the run's ciphertext left
   * anywhere else can no longer be decrypted.
   */
  putRunKey?(pipelineId: string, record: string, expected: string | undefined): Promise<boolean>;

  /**
   * Optional (the feed; every built-in store but the object stores has it): changes recorded
   * after `since`, oldest first, at most `limit` (1 to 10,000). Without `since`, from the oldest
   * change the store still retains. Each run's changes come in the order they were committed,
   * and a change is listed once. `FeedTrimmedError` when changes after `since` were already
   * trimmed by the feed's retention, or `since` belongs to another feed (another store, or this
   * store's data recreated): the caller must re-sync, never carry on past a gap.
   * `InvalidArgumentError` for a cursor this store never wrote.
   */
  readChanges?(since: string | undefined, limit: number): Promise<StoreChange[]>;

  /** Optional, with `readChanges`: the cursor of the newest change, or of an empty feed's start. */
  feedCursor?(): Promise<string>;

  /**
   * Optional, with `readChanges`: resolves `true` as soon as a change after `since` may exist
   * (pushed by the server where it can push: NOTIFY, a blocking stream read, in-process events;
   * noticed by `fs.watch` or a poll otherwise), `false` after `timeoutMs` or when `signal`
   * aborts. A spurious `true` is allowed; a missed wake-up is not.
   */
  waitForChanges?(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;

  /**
   * Optional (every built-in store has it): a small named value kept outside every run, for
   * tools such as the replicator's cursor; undefined when unset. Keys match `[A-Za-z0-9._-]`,
   * 1 to 128 characters; values are at most 65,536 characters.
   */
  getMeta?(key: string): Promise<string | undefined>;

  /** Optional, with `getMeta`: sets a named value durably (last write wins). */
  putMeta?(key: string, value: string): Promise<void>;

  /** Releases connections and handles. */
  close(): Promise<void>;

  /** Optional: the schema versions, for stores with migrations (`cairn migrate`). */
  migrationStatus?(): Promise<MigrationStatus>;
}
