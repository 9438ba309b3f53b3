/**
 * Typed errors. Every error cairn throws is a `CairnError` with a stable string `code`
 * that callers and the CLI can switch on; the original error, if any, is kept as `cause`.
 */
import { constants } from "node:buffer";

/** Stable error codes; they are part of the public API and never change meaning. */
export const ErrorCode = {
  InvalidName: "CAIRN_INVALID_NAME",
  InvalidArgument: "CAIRN_INVALID_ARGUMENT",
  InvalidConfig: "CAIRN_INVALID_CONFIG",
  Unserializable: "CAIRN_UNSERIALIZABLE",
  NotFound: "CAIRN_NOT_FOUND",
  Corrupt: "CAIRN_CORRUPT",
  Conflict: "CAIRN_CONFLICT",
  StoreUnavailable: "CAIRN_STORE_UNAVAILABLE",
  StoreFailed: "CAIRN_STORE_FAILED",
  MissingDriver: "CAIRN_MISSING_DRIVER",
  Closed: "CAIRN_CLOSED",
  RunLocked: "CAIRN_RUN_LOCKED",
  LeaseLost: "CAIRN_LEASE_LOST",
  HistoryLost: "CAIRN_HISTORY_LOST",
  StageFailed: "CAIRN_STAGE_FAILED",
  StageTimeout: "CAIRN_STAGE_TIMEOUT",
  Aborted: "CAIRN_ABORTED",
  InvalidPipeline: "CAIRN_INVALID_PIPELINE",
  InvalidReference: "CAIRN_INVALID_REFERENCE",
  FormatTooNew: "CAIRN_FORMAT_TOO_NEW",
  TooLarge: "CAIRN_TOO_LARGE",
  KeyMissing: "CAIRN_KEY_MISSING",
  MigrationFailed: "CAIRN_MIGRATION_FAILED",
  StoreUnsupported: "CAIRN_STORE_UNSUPPORTED",
  FeedTrimmed: "CAIRN_FEED_TRIMMED",
  StoreNotShared: "CAIRN_STORE_NOT_SHARED",
} as const;

/** One of the values of {@link ErrorCode}. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error cairn throws. */
export class CairnError extends Error {
  /** Stable machine-readable code, e.g. `CAIRN_CORRUPT`. */
  readonly code: ErrorCodeValue;

  constructor(code: ErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A pipeline name, run id, stage name or checkpoint id is not allowed. */
export class InvalidNameError extends CairnError {
  /** Which kind of name was rejected (`pipelineId`, `stageName`, ...). */
  readonly field: string;
  /** The rejected value, as given. */
  readonly value: unknown;

  constructor(field: string, value: unknown, reason: string) {
    super(ErrorCode.InvalidName, `Invalid ${field} ${JSON.stringify(String(value))}: ${reason}`);
    this.field = field;
    this.value = value;
  }
}

/** An argument other than a name is malformed (a negative index, an unknown status...). */
export class InvalidArgumentError extends CairnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.InvalidArgument, message, options);
  }
}

/** A store or manager configuration is wrong; `problems` lists every issue found. */
export class InvalidConfigError extends CairnError {
  /** Every problem found, one sentence each. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[] | string) {
    const list = typeof problems === "string" ? [problems] : problems;
    super(ErrorCode.InvalidConfig, `Invalid configuration: ${list.join("; ")}`);
    this.problems = list;
  }
}

/** A value cannot be stored losslessly (function, symbol, cycle, class instance). */
export class UnserializableValueError extends CairnError {
  /** Where the bad value sits, e.g. `agentOutputs.load.rows[3].parser`. */
  readonly path: string;

  constructor(path: string, reason: string) {
    super(ErrorCode.Unserializable, `Cannot checkpoint the value at ${path}: ${reason}`);
    this.path = path;
  }
}

/** No checkpoint (or run) with that id exists in the store. */
export class CheckpointNotFoundError extends CairnError {
  /** The id that was looked up. */
  readonly id: string;

  constructor(id: string, message?: string) {
    super(ErrorCode.NotFound, message ?? `No checkpoint with id ${JSON.stringify(id)} in the store`);
    this.id = id;
  }
}

/** A read-only open found no store at the location (no folder, database file, schema or tables). */
export class StoreNotFoundError extends CairnError {
  /** Where the store was looked for (`sqlite:/path/x.db`, `postgres://host/db (schema s)`). */
  readonly location: string;

  constructor(location: string, detail: string) {
    super(ErrorCode.NotFound, `No cairn store at ${location}: ${detail}`);
    this.location = location;
  }
}

/** A read-only open found a store whose schema is older than this cairn's; `cairn migrate` upgrades it. */
export function schemaBehindError(location: string, current: number, latest: number): InvalidConfigError {
  return new InvalidConfigError(
    `the store at ${location} has schema version ${current}, this cairn reads version ${latest}: run \`cairn migrate\` on it first`,
  );
}

/** Stored data failed verification: checksum, output hash, or it does not parse. */
export class CheckpointCorruptError extends CairnError {
  /** The checkpoint id, when it is known. */
  readonly checkpointId: string | undefined;
  /** Every problem found, one sentence each. */
  readonly problems: readonly string[];

  constructor(
    checkpointId: string | undefined,
    problems: readonly string[] | string,
    options?: { cause?: unknown },
  ) {
    const list = typeof problems === "string" ? [problems] : problems;
    const subject = checkpointId ? `Checkpoint ${checkpointId}` : "Checkpoint data";
    super(ErrorCode.Corrupt, `${subject} is corrupt: ${list.join("; ")}`, options);
    this.checkpointId = checkpointId;
    this.problems = list;
  }
}

/** A write would overwrite something that already exists. */
export class CheckpointConflictError extends CairnError {
  /** The id that already exists. */
  readonly id: string;

  constructor(id: string, message?: string) {
    super(ErrorCode.Conflict, message ?? `Checkpoint ${JSON.stringify(id)} already exists`);
    this.id = id;
  }
}

/**
 * A write conditioned on the run's newest checkpoint found another one there: someone else
 * wrote to the run since. Nothing was stored; the writer reads the run again and re-chains.
 */
export class TipMovedError extends CheckpointConflictError {
  /** The run written to. */
  readonly pipelineId: string;
  /** The newest checkpoint the write expected (`null`: none). */
  readonly expected: string | null;
  /** The newest checkpoint the store holds (`null`: none). */
  readonly actual: string | null;

  constructor(
    id: string,
    pipelineId: string,
    expected: string | null,
    actual: string | null,
    detail?: string,
  ) {
    super(
      id,
      `Checkpoint ${JSON.stringify(id)} was not written: the newest checkpoint of run ${JSON.stringify(pipelineId)} is ${JSON.stringify(actual)}, not ${JSON.stringify(expected)}${detail ? ` (${detail})` : ""}`,
    );
    this.pipelineId = pipelineId;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * The store cannot be reached (server down, connection lost, folder unreadable). With
 * `maybeCommitted`, the connection was lost after a write was sent and before the server
 * answered: the write may have been applied, and only reading the store again tells.
 */
export class StoreUnavailableError extends CairnError {
  /** Strategy name of the store, e.g. `postgres`. */
  readonly store: string;
  /** True when a write was in flight as the connection was lost: it may have been applied. */
  readonly maybeCommitted: boolean;

  constructor(store: string, message: string, options?: { cause?: unknown; maybeCommitted?: boolean }) {
    super(ErrorCode.StoreUnavailable, `${store} store unavailable: ${message}`, options);
    this.store = store;
    this.maybeCommitted = options?.maybeCommitted ?? false;
  }
}

/**
 * The server behind a store lacks a feature the store needs to keep data safe, e.g. an S3
 * look-alike that accepts `If-None-Match: *` and overwrites anyway, or one an operation needs,
 * e.g. a change feed for `watch`. Nothing was written.
 */
export class StoreUnsupportedError extends CairnError {
  /** Strategy name of the store, e.g. `s3`. */
  readonly store: string;
  /** The server, as configured (an endpoint URL, or the bucket's location). */
  readonly endpoint: string;
  /** What the server lacks, e.g. `create-only writes (If-None-Match: *)`. */
  readonly feature: string;

  /** `verb` says how the server falls short: it does not `enforce` a rule, or does not `have` a feature. */
  constructor(
    store: string,
    endpoint: string,
    feature: string,
    hint: string,
    verb: "enforce" | "have" = "enforce",
  ) {
    super(
      ErrorCode.StoreUnsupported,
      `${store} store: the server at ${endpoint} does not ${verb} ${feature}; ${hint}`,
    );
    this.store = store;
    this.endpoint = endpoint;
    this.feature = feature;
  }
}

/**
 * A change feed cannot continue from the cursor given: the changes after it were trimmed by the
 * feed's retention, or the cursor belongs to another feed (another store, or this store's data
 * recreated). Carrying on would skip changes, so the caller re-syncs (the replicator compares the
 * stores in full) and continues from `feedCursor()`.
 */
export class FeedTrimmedError extends CairnError {
  /** Strategy name of the store. */
  readonly store: string;
  /** The cursor that can no longer be continued from. */
  readonly cursor: string;

  constructor(store: string, cursor: string, reason: string) {
    super(
      ErrorCode.FeedTrimmed,
      `${store} store: the change feed cannot continue after cursor ${cursor}: ${reason}; re-sync from the store itself (replicate compares runs in full) and watch from a new cursor`,
    );
    this.store = store;
    this.cursor = cursor;
  }
}

/** A store operation failed for a reason other than unavailability (disk full, permissions). */
export class StoreOperationError extends CairnError {
  /** Strategy name of the store. */
  readonly store: string;
  /** The operation that failed, e.g. `putCheckpoint`. */
  readonly operation: string;

  constructor(store: string, operation: string, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? options.cause.message : String(options?.cause);
    super(ErrorCode.StoreFailed, `${store} store: ${operation} failed: ${reason}`, options);
    this.store = store;
    this.operation = operation;
  }
}

/** What a {@link FormatTooNewError} is about. */
export type VersionedThing = "store schema" | "store layout" | "checkpoint record" | "export file";

/**
 * Data written by a newer cairn: a store schema or layout, a checkpoint record or an export
 * file whose format version is above the one this cairn knows. Nothing is read or written with old
 * assumptions; upgrading cairn is the fix.
 */
export class FormatTooNewError extends CairnError {
  /** What carries the version. */
  readonly subject: VersionedThing;
  /** The version found in the data. */
  readonly found: number | string;
  /** The newest version this cairn supports. */
  readonly supported: number | string;

  constructor(
    subject: VersionedThing,
    where: string,
    found: number | string,
    supported: number | string,
    options?: { cause?: unknown },
  ) {
    super(
      ErrorCode.FormatTooNew,
      `${where}: ${subject} format version ${found} is newer than this cairn supports ` +
        `(${supported}); it was written by a newer cairn: upgrade cairn to use it`,
      options,
    );
    this.subject = subject;
    this.found = found;
    this.supported = supported;
  }
}

/**
 * A file or stored record is larger than a configured limit (or than a string Node can hold), so
 * it is refused before being read whole. Raising the limit (`maxImportBytes`, `maxRecordBytes`,
 * `--max-bytes`) is the fix when the machine has the memory.
 */
export class TooLargeError extends CairnError {
  /** What was refused, e.g. `export file ./run.json` or `checkpoint etl_...`. */
  readonly subject: string;
  /** Its size in bytes, when known before reading it. */
  readonly size: number | undefined;
  /** The limit in bytes it exceeds. */
  readonly limit: number;

  constructor(subject: string, size: number | undefined, limit: number, options?: { cause?: unknown }) {
    const found = size === undefined ? "is larger" : `is ${size} bytes, more`;
    super(
      ErrorCode.TooLarge,
      `${subject} ${found} than the limit of ${limit} bytes; it was not read`,
      options,
    );
    this.subject = subject;
    this.size = size;
    this.limit = limit;
  }
}

/** The longest string Node can build, in UTF-16 code units: a hard ceiling on any text read whole. */
export const MAX_STRING_LENGTH: number = constants.MAX_STRING_LENGTH;

/** True for the errors Node and V8 throw when a string would exceed {@link MAX_STRING_LENGTH}. */
export function isStringTooLong(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if ((error as { code?: unknown }).code === "ERR_STRING_TOO_LONG") return true;
  return error instanceof RangeError && /Invalid string length/.test(error.message);
}

/** An optional package (a store's driver, a compression codec) is not installed. */
export class MissingDriverError extends CairnError {
  /** The npm package to install. */
  readonly packageName: string;

  /**
   * `store` names the store that needs the package; `options.subject` replaces "The <store>
   * store" for a need that is not a store's (`zstd compression`).
   */
  constructor(store: string, packageName: string, options?: { cause?: unknown; subject?: string }) {
    const subject = options?.subject ?? `The ${store} store`;
    super(
      ErrorCode.MissingDriver,
      `${subject} needs the "${packageName}" package: run \`npm install ${packageName}\``,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.packageName = packageName;
  }
}

/**
 * A worker was given a pipeline whose checkpoint store other machines cannot reach (file on a
 * local path, sqlite, memory): a run redelivered to another worker would find none of its
 * checkpoints and start over. `sharedStore: true` accepts it (every worker on this machine, or a
 * shared mount).
 */
export class StoreNotSharedError extends CairnError {
  /** The pipeline whose store was refused. */
  readonly pipeline: string;
  /** The store's strategy (`file`, `sqlite`, `memory`). */
  readonly strategy: string;

  constructor(pipeline: string, strategy: string) {
    super(
      ErrorCode.StoreNotShared,
      `Pipeline ${pipeline} checkpoints to a ${strategy} store, which the other workers cannot reach: ` +
        "a run redelivered to another machine would start over instead of resuming. Use a shared store " +
        "(postgres, redis, s3, azure), or pass sharedStore: true if every worker runs on this machine " +
        "or the store is on a shared mount",
    );
    this.pipeline = pipeline;
    this.strategy = strategy;
  }
}

/** The manager or store was used after `close()`. */
export class ClosedError extends CairnError {
  constructor(what: string) {
    super(ErrorCode.Closed, `${what} is closed`);
  }
}

/** Another runner holds the run's lease: it is being executed right now. */
export class RunLockedError extends CairnError {
  /** The run. */
  readonly pipelineId: string;
  /** Who holds the lease. */
  readonly holder: string;
  /** When the holder's lease runs out unless renewed. */
  readonly expiresAt: Date;

  /** True when the holder is a process of this host that is no longer running. */
  readonly holderGone: boolean;

  constructor(pipelineId: string, holder: string, expiresAt: Date, options: { holderGone?: boolean } = {}) {
    const holderGone = options.holderGone ?? false;
    const left = Math.max(0, Math.ceil((expiresAt.getTime() - Date.now()) / 1000));
    super(
      ErrorCode.RunLocked,
      holderGone
        ? `Run ${pipelineId} is locked by ${holder}, a process of this host that is no longer running; ` +
            `its lease expires in ${left} s (at ${expiresAt.toISOString()}): the run can resume then`
        : `Run ${pipelineId} is being executed by ${holder} (lease until ${expiresAt.toISOString()}); ` +
            "wait for it to finish, or for its lease to expire if that process died",
    );
    this.pipelineId = pipelineId;
    this.holder = holder;
    this.expiresAt = expiresAt;
    this.holderGone = holderGone;
  }
}

/** This runner's lease on a run was taken over by another runner; its writes are refused. */
export class LeaseLostError extends CairnError {
  /** The run. */
  readonly pipelineId: string;

  constructor(pipelineId: string, detail: string) {
    super(ErrorCode.LeaseLost, `Lost the lease on run ${pipelineId}: ${detail}; this runner must stop`);
    this.pipelineId = pipelineId;
  }
}

/**
 * The store no longer holds any checkpoint of a run this writer has written to (a server that
 * restarted without its data, a run deleted underneath it). Nothing was written: chaining on
 * would silently start the run over at sequence 1 as if its history had never been.
 */
export class HistoryLostError extends CairnError {
  /** The run. */
  readonly pipelineId: string;
  /** The newest checkpoint this writer stored in the run, now gone. */
  readonly expected: string;

  constructor(pipelineId: string, expected: string, options?: { cause?: unknown }) {
    super(
      ErrorCode.HistoryLost,
      `Run ${pipelineId} lost its history: the store holds none of its checkpoints, not even ` +
        `${expected}, which was written to it; nothing was written. The store may have restarted ` +
        "without its data, or the run was deleted: restore the data, or start a new run",
      options,
    );
    this.pipelineId = pipelineId;
    this.expected = expected;
  }
}

/**
 * Encrypted data needs a key this reader does not have: a key-encryption key missing from the
 * key ring, or the run's data key, destroyed when the run was deleted. Names the key id, never a key.
 */
export class KeyMissingError extends CairnError {
  /** The id of the missing key. */
  readonly keyId: string;
  /** `key-encryption-key`: add it to the key ring; `data-key`: the run's data key is gone for good. */
  readonly kind: "key-encryption-key" | "data-key";

  constructor(keyId: string, kind: KeyMissingError["kind"], what: string) {
    super(
      ErrorCode.KeyMissing,
      kind === "key-encryption-key"
        ? `${what} is encrypted under key id ${keyId}, which is not in the key ring: pass the key file or key ring that holds it`
        : `${what} is encrypted with data key ${keyId}, which the store no longer holds (its run was deleted, which destroys it): the data cannot be decrypted`,
    );
    this.keyId = keyId;
    this.kind = kind;
  }
}

/**
 * A user migration threw on resume: a step's `migrateOutput` (a stored output older than the
 * step's `outputVersion`) or the pipeline's `migrateState` (inputs stored by another pipeline
 * version). Nothing was written: the run is as it was, and a fixed migration resumes it.
 */
export class MigrationError extends CairnError {
  /** The stage whose output was being migrated, or `"state"` for the run's stored inputs. */
  readonly stageName: string;
  /** The stored version: an output version, or (for the state) the pipeline version that wrote it. */
  readonly fromVersion: number | string | undefined;
  /** The version the migration was to produce. */
  readonly toVersion: number | string | undefined;

  constructor(
    stageName: string,
    fromVersion: number | string | undefined,
    toVersion: number | string | undefined,
    options: { cause: unknown; pipelineId?: string },
  ) {
    const reason = options.cause instanceof Error ? options.cause.message : String(options.cause);
    const run = options.pipelineId !== undefined ? ` of run ${options.pipelineId}` : "";
    const what =
      stageName === "state"
        ? `The migration of the run's state${run} from pipeline version ${fromVersion ?? "(none)"} to ${toVersion ?? "(none)"}`
        : `The migration of stage ${stageName}'s output${run} from version ${fromVersion} to ${toVersion}`;
    super(ErrorCode.MigrationFailed, `${what} threw: ${reason}; nothing was written`, {
      cause: options.cause,
    });
    this.stageName = stageName;
    this.fromVersion = fromVersion;
    this.toVersion = toVersion;
  }
}

/** True when `error` is a cairn error, optionally with the given code. */
export function isCairnError(error: unknown, code?: ErrorCodeValue): error is CairnError {
  return error instanceof CairnError && (code === undefined || error.code === code);
}
