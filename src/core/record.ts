/**
 * The persisted checkpoint record and its integrity rules. A store moves these records; the
 * core builds them, checksums them and verifies them, so every store gets the same guarantees.
 *
 * A record is `{ metadata, body }`: `metadata` holds the seed's snake_case fields, `body` is the
 * canonical JSON text of `{ state_data, completed_stages, pending_stages, provenance_hashes,
 * output_refs, pipeline_version, output_versions, output_migrations }` (format 2; format 1
 * lacks the last three). Stage outputs are stored apart, once per run, under the SHA-256 of
 * their canonical bytes; `output_refs` maps each stage to that hash. How each format version is
 * checksummed, parsed and upcast is `formats.ts`.
 *
 * checksum (formats 1 and 2) = SHA-256( canonical(immutable metadata fields) + "\n" + body )
 * The immutable fields include `parent_checksum`, which chains a run's checkpoints together.
 * `status`, `error_message` and `resume_count` are mutable and outside the checksum.
 */
import { createHash } from "node:crypto";
import { CheckpointCorruptError } from "./errors.js";
import { computeChecksum, formatOf } from "./formats.js";
import { isValidName } from "./ids.js";
import { CHECKPOINT_STATUSES, type CheckpointMetadata, type CheckpointStatusValue } from "./types.js";

export { computeChecksum };

/** Checkpoint metadata as persisted (snake_case). */
export interface StoredMetadata {
  checkpoint_id: string;
  pipeline_id: string;
  pipeline_name: string;
  stage_name: string;
  stage_index: number;
  sequence: number;
  /** ISO 8601 UTC with milliseconds. */
  timestamp: string;
  status: CheckpointStatusValue;
  checksum: string;
  data_size: number;
  error_message: string | null;
  resume_count: number;
  parent_checkpoint_id: string | null;
  parent_checksum: string | null;
  format_version: number;
}

/** A checkpoint as stores persist it. */
export interface CheckpointRecord {
  metadata: StoredMetadata;
  /** Canonical JSON text of {@link CheckpointBody}. */
  body: string;
}

/** A stored output's migration, as a body records it (`by`: the pipeline version that migrated it). */
export interface StoredMigration {
  from: number;
  to: number;
  by: string | null;
}

/**
 * The parsed body of a record in the current format (older formats are upcast to it, see
 * `formats.ts`); `state_data` is still codec-encoded.
 */
export interface CheckpointBody {
  state_data: unknown;
  completed_stages: string[];
  pending_stages: string[];
  provenance_hashes: Record<string, string>;
  output_refs: Record<string, string>;
  /** The Pipeline's `version` option when the checkpoint was written; null without one. */
  pipeline_version: string | null;
  /** The version of every stored output (a key for each key of `output_refs`). */
  output_versions: Record<string, number>;
  /** Stored outputs produced by a user migration, carried while that output stands. */
  output_migrations: Record<string, StoredMigration>;
}

/** One stage output as stored: canonical codec text and its SHA-256. */
export interface OutputRecord {
  hash: string;
  body: string;
}

/** The mutable fields of a checkpoint; the only ones a store may change after the write. */
export interface StatusPatch {
  status?: CheckpointStatusValue;
  error_message?: string | null;
  resume_count?: number;
}

/** Hex SHA-256 of a string's UTF-8 bytes. */
export function sha256(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

const HEX64 = /^[0-9a-f]{64}$/;

function isIntAtLeast(value: unknown, min: number): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= min;
}

/** Problems with the shape of persisted metadata (empty when it is well-formed). */
export function metadataProblems(value: unknown): string[] {
  if (value === null || typeof value !== "object") return ["metadata is not an object"];
  const m = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const field of ["checkpoint_id", "pipeline_id", "stage_name"] as const) {
    if (!isValidName(m[field])) problems.push(`${field} is not a valid name`);
  }
  if (typeof m.pipeline_name !== "string") problems.push("pipeline_name is not a string");
  if (!isIntAtLeast(m.stage_index, 0)) problems.push("stage_index is not a non-negative integer");
  if (!isIntAtLeast(m.sequence, 1)) problems.push("sequence is not a positive integer");
  // Only the canonical form: the checksum covers the exact text, and SQL stores give back toISOString().
  if (typeof m.timestamp !== "string" || Number.isNaN(Date.parse(m.timestamp))) {
    problems.push("timestamp is not a date");
  } else if (new Date(m.timestamp).toISOString() !== m.timestamp) {
    problems.push("timestamp is not in canonical ISO form (YYYY-MM-DDTHH:mm:ss.sssZ)");
  }
  if (!CHECKPOINT_STATUSES.includes(m.status as CheckpointStatusValue)) {
    problems.push(`status ${JSON.stringify(m.status)} is unknown`);
  }
  if (typeof m.checksum !== "string" || !HEX64.test(m.checksum)) problems.push("checksum is not a SHA-256");
  if (!isIntAtLeast(m.data_size, 0)) problems.push("data_size is not a non-negative integer");
  if (!isIntAtLeast(m.resume_count, 0)) problems.push("resume_count is not a non-negative integer");
  if (m.error_message !== null && typeof m.error_message !== "string") {
    problems.push("error_message is not a string");
  }
  if (m.parent_checkpoint_id !== null && !isValidName(m.parent_checkpoint_id)) {
    problems.push("parent_checkpoint_id is not a valid name");
  }
  if (
    m.parent_checksum !== null &&
    (typeof m.parent_checksum !== "string" || !HEX64.test(m.parent_checksum))
  ) {
    problems.push("parent_checksum is not a SHA-256");
  }
  // 0 is allowed so tests can register a synthetic format below the first real one.
  if (!isIntAtLeast(m.format_version, 0)) problems.push("format_version is not a non-negative integer");
  return problems;
}

/**
 * Throws {@link FormatTooNewError} for a record written in a newer format than this cairn's (it
 * is well-formed, just not readable with this code's assumptions) and `CheckpointCorruptError`
 * for one older than the oldest format this cairn reads.
 */
export function assertSupportedFormat(metadata: StoredMetadata, where?: string): StoredMetadata {
  formatOf(metadata, where);
  return metadata;
}

/**
 * Parses a stored metadata object, throwing {@link CheckpointCorruptError} when malformed and
 * {@link FormatTooNewError} when it is of a newer format.
 */
export function parseStoredMetadata(value: unknown, where?: string): StoredMetadata {
  const problems = metadataProblems(value);
  if (problems.length > 0) {
    const id = (value as { checkpoint_id?: unknown } | null)?.checkpoint_id;
    const prefix = where ? `${where}: ` : "";
    throw new CheckpointCorruptError(
      typeof id === "string" ? id : undefined,
      problems.map((p) => prefix + p),
    );
  }
  return assertSupportedFormat(value as StoredMetadata, where);
}

/** Converts persisted metadata to the camelCase API shape. */
export function toMetadata(m: StoredMetadata): CheckpointMetadata {
  const out: CheckpointMetadata = {
    checkpointId: m.checkpoint_id,
    pipelineId: m.pipeline_id,
    pipelineName: m.pipeline_name,
    stageName: m.stage_name,
    stageIndex: m.stage_index,
    sequence: m.sequence,
    timestamp: new Date(m.timestamp),
    status: m.status,
    checksum: m.checksum,
    dataSize: m.data_size,
    resumeCount: m.resume_count,
    formatVersion: m.format_version,
  };
  if (m.error_message !== null) out.errorMessage = m.error_message;
  if (m.parent_checkpoint_id !== null) out.parentCheckpointId = m.parent_checkpoint_id;
  if (m.parent_checksum !== null) out.parentChecksum = m.parent_checksum;
  return out;
}

/** Applies a status patch to a copy of persisted metadata. */
export function applyPatch(m: StoredMetadata, patch: StatusPatch): StoredMetadata {
  const next = { ...m };
  if (patch.status !== undefined) next.status = patch.status;
  if (patch.error_message !== undefined) next.error_message = patch.error_message;
  if (patch.resume_count !== undefined) next.resume_count = patch.resume_count;
  return next;
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Orders persisted metadata oldest first: by sequence, then time, then id. */
export function compareStored(a: StoredMetadata, b: StoredMetadata): number {
  // Byte order, not localeCompare: the same in every locale and the same as SQL's ORDER BY.
  return (
    a.sequence - b.sequence ||
    byteOrder(a.timestamp, b.timestamp) ||
    byteOrder(a.checkpoint_id, b.checkpoint_id)
  );
}
