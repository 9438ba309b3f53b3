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

  /** Stores a checkpoint and the outputs it introduces, atomically; create-only. */
  putCheckpoint(record: CheckpointRecord, outputs: readonly OutputRecord[]): Promise<void>;

  /** One checkpoint by id; undefined when absent; `CheckpointCorruptError` when unparseable. */
  getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined>;

  /** The run's checkpoint with the highest sequence, without reading the whole history. */
  getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined>;

  /** The run's checkpoints, oldest first, with corrupt entries included. */
  listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]>;

  /** Every run id that has anything stored, sorted. */
  listPipelineIds(): Promise<string[]>;

  /** Changes the mutable fields of a checkpoint; `CheckpointNotFoundError` when absent. */
  updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void>;

  /** Deletes checkpoints of a run; returns how many existed. Outputs are left alone. */
  deleteCheckpoints(pipelineId: string, checkpointIds: readonly string[]): Promise<number>;

  /** Outputs of a run by hash; hashes the store does not hold are absent from the map. */
  getOutputs(pipelineId: string, hashes: readonly string[]): Promise<Map<string, string>>;

  /** Every output hash stored for a run. */
  listOutputHashes(pipelineId: string): Promise<string[]>;

  /** Deletes outputs of a run; returns how many existed. */
  deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number>;

  /** Deletes everything stored for a run, corrupt entries included. */
  deleteRun(pipelineId: string): Promise<void>;

  /** Releases connections and handles. */
  close(): Promise<void>;
}
