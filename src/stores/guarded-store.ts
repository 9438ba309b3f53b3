import {
  CairnError,
  ClosedError,
  InvalidArgumentError,
  isStringTooLong,
  MAX_STRING_LENGTH,
  StoreOperationError,
  TooLargeError,
} from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { assertSupportedFormat } from "../core/record.js";
import { keepAliveWhile } from "../util/keep-alive.js";
import { assertEntry, assertLease, assertRunsQuery, assertTtl } from "./guarded-args.js";
import type {
  CheckpointRecord,
  CheckpointStore,
  ImportedCheckpoint,
  Lease,
  MigrationStatus,
  OutputRecord,
} from "./types.js";

type StoreMethod = Exclude<
  keyof CheckpointStore,
  | "strategy"
  | "location"
  | "persistent"
  | "setup"
  | "close"
  | "migrationStatus"
  | "getRunKey"
  | "putRunKey"
  | OptionalMethod
>;

/** Methods a store may lack; wrapped only when the inner store has them, so callers can test for them. */
type OptionalMethod =
  | "rebuildIndexes"
  | "getRunKey"
  | "putRunKey"
  | "readChanges"
  | "feedCursor"
  | "waitForChanges"
  | "getMeta"
  | "putMeta";
const OPTIONAL_METHODS: readonly OptionalMethod[] = [
  "rebuildIndexes",
  "getRunKey",
  "putRunKey",
  "readChanges",
  "feedCursor",
  "waitForChanges",
  "getMeta",
  "putMeta",
];

/** Keys of `getMeta`/`putMeta`; values are bounded so a store can keep them in one row or key. */
const META_KEY = /^[A-Za-z0-9._-]{1,128}$/;
const MAX_META_LENGTH = 65_536;

function assertMetaKey(key: unknown): void {
  if (typeof key !== "string" || !META_KEY.test(key))
    throw new InvalidArgumentError(`meta key ${JSON.stringify(key)} must be 1 to 128 of [A-Za-z0-9._-]`);
}

function assertCursor(cursor: unknown, optional: boolean): void {
  if (optional && cursor === undefined) return;
  if (typeof cursor !== "string" || cursor.length === 0 || cursor.length > 512)
    throw new InvalidArgumentError("a feed cursor must be a non-empty string of at most 512 characters");
}

const METHODS: readonly StoreMethod[] = [
  "putCheckpoint",
  "importRun",
  "acquireLease",
  "renewLease",
  "releaseLease",
  "getLease",
  "getCheckpoint",
  "getLatestCheckpoint",
  "listCheckpoints",
  "listPipelineIds",
  "listRuns",
  "updateCheckpoint",
  "deleteCheckpoints",
  "getRunHead",
  "getOutputs",
  "listOutputHashes",
  "deleteOutputs",
  "deleteRun",
  "readCorruptEntry",
  "removeCorruptEntry",
];

/** An output's content address: a SHA-256 in lower-case hex (safe as a file name and a key). */
const HASH = /^[0-9a-f]{64}$/;

function assertHashes(hashes: unknown): void {
  if (!Array.isArray(hashes)) throw new InvalidArgumentError("output hashes must be an array");
  for (const hash of hashes) {
    if (typeof hash !== "string" || !HASH.test(hash))
      throw new InvalidArgumentError(`output hash ${JSON.stringify(hash)} is not a SHA-256 in hex`);
  }
}

function assertRecord(record: unknown): CheckpointRecord["metadata"] {
  const m = (record as CheckpointRecord | undefined)?.metadata;
  if (typeof m !== "object" || m === null)
    throw new InvalidArgumentError("checkpoint record must have metadata");
  assertValidName("pipelineId", m.pipeline_id);
  assertValidName("checkpointId", m.checkpoint_id);
  assertValidName("pipelineName", m.pipeline_name);
  assertValidName("stageName", m.stage_name);
  return m;
}

/** A whole run to import: non-empty, every checkpoint of that run, each id once. */
function assertImport(pipelineId: unknown, checkpoints: unknown, options: unknown): void {
  assertValidName("pipelineId", pipelineId);
  if (!Array.isArray(checkpoints) || checkpoints.length === 0)
    throw new InvalidArgumentError("importRun needs a non-empty array of checkpoints");
  const ids = new Set<string>();
  for (const item of checkpoints as ImportedCheckpoint[]) {
    const m = assertRecord(item?.record);
    if (m.pipeline_id !== pipelineId)
      throw new InvalidArgumentError(
        `checkpoint ${m.checkpoint_id} belongs to run ${m.pipeline_id}, not ${pipelineId}`,
      );
    if (ids.has(m.checkpoint_id))
      throw new InvalidArgumentError(`checkpoint ${m.checkpoint_id} is given twice`);
    ids.add(m.checkpoint_id);
    assertHashes((item.outputs as OutputRecord[] | undefined)?.map((o) => o.hash));
  }
  if (typeof (options as { replace?: unknown } | undefined)?.replace !== "boolean")
    throw new InvalidArgumentError("importRun options.replace must be a boolean");
  const runKey = (options as { runKey?: unknown }).runKey;
  if (runKey !== undefined) assertKeyRecord("importRun options.runKey", runKey);
}

/** The longest key record a store must keep (64 KiB of text): a wrapped key is far smaller. */
export const MAX_RUN_KEY_LENGTH = 65_536;

/** A run's key record: opaque, non-empty text of at most `MAX_RUN_KEY_LENGTH` characters. */
function assertKeyRecord(field: string, record: unknown): void {
  if (typeof record !== "string" || record.length === 0)
    throw new InvalidArgumentError(`${field} must be a non-empty string`);
  if (record.length > MAX_RUN_KEY_LENGTH)
    throw new InvalidArgumentError(
      `${field} is ${record.length} characters long; a key record holds at most ${MAX_RUN_KEY_LENGTH}`,
    );
}

/** Store reads whose record a newer cairn may have written: refused here for every store. */
const RECORD_READS: ReadonlySet<string> = new Set(["getCheckpoint", "getLatestCheckpoint"]);

/**
 * The argument checks of every store method, made once here for all stores: names and ids
 * match the name pattern (no path traversal, no key or SQL injection), hashes are hex SHA-256.
 */
const CHECKS: Record<StoreMethod | OptionalMethod, (args: unknown[]) => void> = {
  putCheckpoint: ([record, outputs, fence, options]) => {
    const m = assertRecord(record);
    assertHashes((outputs as OutputRecord[] | undefined)?.map((o) => o.hash));
    if (fence !== undefined) {
      assertLease(fence);
      if ((fence as Lease).pipelineId !== m.pipeline_id)
        throw new InvalidArgumentError(
          `the lease is on run ${(fence as Lease).pipelineId}, not ${m.pipeline_id}`,
        );
    }
    const tip = (options as { expectedTip?: unknown } | undefined)?.expectedTip;
    if (tip !== undefined && tip !== null) assertValidName("expectedTip", tip);
  },
  importRun: ([pipelineId, checkpoints, options]) => assertImport(pipelineId, checkpoints, options),
  acquireLease: ([pipelineId, owner, ttlMs]) => {
    assertValidName("pipelineId", pipelineId);
    if (typeof owner !== "string" || owner.length === 0)
      throw new InvalidArgumentError("lease owner must be a non-empty string");
    assertTtl(ttlMs);
  },
  renewLease: ([lease, ttlMs]) => {
    assertLease(lease);
    assertTtl(ttlMs);
  },
  releaseLease: ([lease]) => assertLease(lease),
  getLease: ([pipelineId]) => assertValidName("pipelineId", pipelineId),
  getCheckpoint: ([id]) => assertValidName("checkpointId", id),
  getLatestCheckpoint: ([pipelineId]) => assertValidName("pipelineId", pipelineId),
  listCheckpoints: ([pipelineId]) => assertValidName("pipelineId", pipelineId),
  listPipelineIds: () => {},
  listRuns: ([query]) => assertRunsQuery(query),
  updateCheckpoint: ([id]) => assertValidName("checkpointId", id),
  deleteCheckpoints: ([pipelineId, ids]) => {
    assertValidName("pipelineId", pipelineId);
    if (!Array.isArray(ids)) throw new InvalidArgumentError("checkpoint ids must be an array");
    for (const id of ids) assertValidName("checkpointId", id);
  },
  getRunHead: ([pipelineId]) => assertValidName("pipelineId", pipelineId),
  getOutputs: ([pipelineId, hashes]) => {
    assertValidName("pipelineId", pipelineId);
    assertHashes(hashes);
  },
  listOutputHashes: ([pipelineId]) => assertValidName("pipelineId", pipelineId),
  deleteOutputs: ([pipelineId, hashes]) => {
    assertValidName("pipelineId", pipelineId);
    assertHashes(hashes);
  },
  deleteRun: ([pipelineId]) => assertValidName("pipelineId", pipelineId),
  readCorruptEntry: ([entry]) => assertEntry(entry),
  removeCorruptEntry: ([entry]) => assertEntry(entry),
  rebuildIndexes: ([pipelineId]) => assertValidName("pipelineId", pipelineId),
  getRunKey: ([pipelineId]) => assertValidName("pipelineId", pipelineId),
  readChanges: ([since, limit]) => {
    assertCursor(since, true);
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > 10_000)
      throw new InvalidArgumentError("a feed page limit must be an integer from 1 to 10,000");
  },
  waitForChanges: ([since, timeoutMs]) => {
    assertCursor(since, false);
    if (typeof timeoutMs !== "number" || !(timeoutMs >= 0) || timeoutMs > 2_147_483_647)
      throw new InvalidArgumentError("a feed wait timeout must be a number of milliseconds from 0 to 2^31-1");
  },
  feedCursor: () => {},
  getMeta: ([key]) => assertMetaKey(key),
  putMeta: ([key, value]) => {
    assertMetaKey(key);
    if (typeof value !== "string" || value.length > MAX_META_LENGTH)
      throw new InvalidArgumentError(
        `a meta value must be a string of at most ${MAX_META_LENGTH} characters`,
      );
  },
  putRunKey: ([pipelineId, record, expected]) => {
    assertValidName("pipelineId", pipelineId);
    assertKeyRecord("the key record", record);
    if (expected !== undefined && typeof expected !== "string")
      throw new InvalidArgumentError("the expected key record must be a string or undefined");
  },
};

/**
 * Wraps a store so that every store behaves the same at the edges: `setup()` runs once before
 * first use (concurrent callers share it, a failed setup is retried next time), calls after
 * `close()` fail with `CAIRN_CLOSED`, and an error that is not already a cairn error becomes a
 * `StoreOperationError` naming the operation, with the original as `cause`. Nothing is
 * swallowed. A record of a newer format than this cairn's is `FormatTooNewError`, from every store. Arguments are checked here, once for every store, before the store sees them.
 * Every call keeps the process alive until it settles: idle connections do not (see keep-alive).
 */
export class GuardedStore implements CheckpointStore {
  readonly strategy: string;
  readonly location: string;
  readonly persistent: boolean;
  private ready: Promise<void> | undefined;
  private closed = false;

  constructor(readonly inner: CheckpointStore) {
    this.strategy = inner.strategy;
    this.location = inner.location;
    this.persistent = inner.persistent;
    // An optional method is wrapped only when the inner store has it, so callers can test for it.
    const present = OPTIONAL_METHODS.filter((name) => typeof inner[name] === "function");
    for (const name of [...METHODS, ...present]) {
      const check = CHECKS[name];
      const method = (inner as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[name] as (
        ...args: unknown[]
      ) => Promise<unknown>;
      (this as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        check(args);
        return keepAliveWhile(async () => {
          await this.setup();
          let result: unknown;
          try {
            result = await method.apply(inner, args);
          } catch (error) {
            throw this.wrap(name, error);
          }
          // A store that hands records back unparsed (memory) must not let one a newer cairn
          // wrote pass as this cairn's: checked before anything verifies, quarantines or resumes.
          const record = RECORD_READS.has(name) ? (result as CheckpointRecord | undefined) : undefined;
          if (record?.metadata) assertSupportedFormat(record.metadata);
          return result;
        });
      };
    }
    // Optional, so only present when the inner store has it: callers test for it.
    if (inner.migrationStatus) {
      const status = inner.migrationStatus.bind(inner);
      this.migrationStatus = () =>
        keepAliveWhile(async () => {
          await this.setup();
          try {
            return await status();
          } catch (error) {
            throw this.wrap("migrationStatus", error);
          }
        });
    }
  }

  private wrap(operation: string, error: unknown): CairnError {
    if (error instanceof CairnError) return error;
    // A stored value longer than any string Node can hold: typed, so callers can tell it apart.
    if (isStringTooLong(error))
      return new TooLargeError(
        `A value the ${this.strategy} store read (${operation})`,
        undefined,
        MAX_STRING_LENGTH,
        { cause: error },
      );
    return new StoreOperationError(this.strategy, operation, { cause: error });
  }

  /** Runs the inner store's setup once; concurrent callers wait for the same attempt. */
  setup(): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError(`The ${this.strategy} store`));
    if (!this.ready) {
      this.ready = keepAliveWhile(() => this.inner.setup()).catch((error: unknown) => {
        this.ready = undefined;
        throw this.wrap("setup", error);
      });
    }
    return this.ready;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await keepAliveWhile(() => this.inner.close());
  }

  // Replaced per instance in the constructor; declared for the type checker.
  declare putCheckpoint: CheckpointStore["putCheckpoint"];
  declare importRun: CheckpointStore["importRun"];
  declare acquireLease: CheckpointStore["acquireLease"];
  declare renewLease: CheckpointStore["renewLease"];
  declare releaseLease: CheckpointStore["releaseLease"];
  declare getLease: CheckpointStore["getLease"];
  declare getCheckpoint: CheckpointStore["getCheckpoint"];
  declare getLatestCheckpoint: CheckpointStore["getLatestCheckpoint"];
  declare listCheckpoints: CheckpointStore["listCheckpoints"];
  declare listPipelineIds: CheckpointStore["listPipelineIds"];
  declare listRuns: CheckpointStore["listRuns"];
  declare updateCheckpoint: CheckpointStore["updateCheckpoint"];
  declare deleteCheckpoints: CheckpointStore["deleteCheckpoints"];
  declare getRunHead: CheckpointStore["getRunHead"];
  declare getOutputs: CheckpointStore["getOutputs"];
  declare listOutputHashes: CheckpointStore["listOutputHashes"];
  declare deleteOutputs: CheckpointStore["deleteOutputs"];
  declare deleteRun: CheckpointStore["deleteRun"];
  declare readCorruptEntry: CheckpointStore["readCorruptEntry"];
  declare removeCorruptEntry: CheckpointStore["removeCorruptEntry"];
  declare rebuildIndexes?: CheckpointStore["rebuildIndexes"];
  declare getRunKey?: CheckpointStore["getRunKey"];
  declare putRunKey?: CheckpointStore["putRunKey"];
  declare readChanges?: CheckpointStore["readChanges"];
  declare feedCursor?: CheckpointStore["feedCursor"];
  declare waitForChanges?: CheckpointStore["waitForChanges"];
  declare getMeta?: CheckpointStore["getMeta"];
  declare putMeta?: CheckpointStore["putMeta"];
  declare migrationStatus?: () => Promise<MigrationStatus>;
}
