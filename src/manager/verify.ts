/**
 * Verification of stored records: the checksum over immutable content and every output's hash.
 * Every load goes through here; nothing unverified is returned. The full check of a checkpoint
 * (decode and chain link too) is `check.ts`.
 */
import { decode, decodeTree } from "../core/codec.js";
import { CheckpointCorruptError } from "../core/errors.js";
import { formatOf, type RecordFormat, type StoredBody, upcastBody } from "../core/formats.js";
import { type CheckpointBody, type CheckpointRecord, sha256, toMetadata } from "../core/record.js";
import { assertOpened, corruptReason } from "../core/sealed.js";
import type { PipelineCheckpoint, ValidationProblem } from "../core/types.js";
import { EncodedOutput } from "./build.js";
import type { OutputSource } from "./check.js";

/**
 * A record that passed verification, with its outputs' verified texts. `record` is as stored
 * (its own `format_version`, checksum and body text): exports, imports and copies use it, so a
 * store is never rewritten to be read. `body` is upcast to the current format.
 */
export interface VerifiedRecord {
  record: CheckpointRecord;
  /** The body upcast to the current format. */
  body: CheckpointBody;
  /** The body as stored, in its own format's shape. */
  stored: StoredBody;
  /** Output text by hash, each verified against its hash. */
  outputs: Map<string, string>;
  /** Addresses among them that are keyed (their SHA-256 differs), when known. */
  keyed?: ReadonlySet<string>;
}

/** Outcome of inspecting a record: the problems found, and the verified record when none. */
export interface Inspection {
  problems: ValidationProblem[];
  verified?: VerifiedRecord;
}

/** A record's own content (checksum and body, outputs not looked at): its bodies, or its problems. */
export type RecordContent =
  | { problems: []; stored: StoredBody; body: CheckpointBody }
  | { problems: ValidationProblem[]; stored?: undefined; body?: undefined };

/**
 * Checks a record's own content: its checksum by the rules of the format that wrote it, then its
 * body parsed and upcast in memory. A sealed body (no key) throws `KeyMissingError` and a newer
 * format `FormatTooNewError`: neither is damage.
 */
export function checkRecordContent(record: CheckpointRecord): RecordContent {
  const { metadata } = record;
  // Failed to open (its ciphertext fails authentication): invalid, as a checksum mismatch is.
  const unopened = corruptReason(record.body);
  if (unopened !== undefined) return { problems: [{ kind: "unreadable", message: unopened }] };
  assertOpened(record.body, `Checkpoint ${metadata.checkpoint_id}`);
  let format: RecordFormat;
  try {
    format = formatOf(metadata);
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    return { problems: [{ kind: "unreadable", message: error.message }] };
  }
  const problems: ValidationProblem[] = [];
  const expected = format.checksum(metadata, record.body);
  if (expected !== metadata.checksum) {
    problems.push({
      kind: "checksum_mismatch",
      message: `checksum mismatch: stored ${metadata.checksum.slice(0, 12)}…, content hashes to ${expected.slice(0, 12)}…`,
    });
  }
  try {
    const stored = format.parseBody(metadata.checkpoint_id, record.body);
    const body = upcastBody(stored, format, metadata);
    return problems.length > 0 ? { problems } : { problems: [], stored, body };
  } catch (error) {
    problems.push({ kind: "unreadable", message: (error as Error).message });
    return { problems };
  }
}

/** How one stored output checks against its address: verified (`keyed` when its address is), or why not. */
export type OutputCheck =
  | { ok: true; keyed: boolean }
  | { ok: false; kind: "unreadable" | "output_missing" | "output_hash_mismatch"; message: string };

/**
 * Checks one stored output text against its address. An output that failed to open comes back
 * marked (see `corruptReason`), never thrown; one sealed for want of a key throws `KeyMissingError`.
 */
export function checkOutputText(
  store: OutputSource,
  pipelineId: string,
  hash: string,
  text: string | undefined,
  where: string,
  checkpointId?: string,
): OutputCheck {
  if (text === undefined)
    return { ok: false, kind: "output_missing", message: `${where} (${hash.slice(0, 12)}…) is missing` };
  const failed = corruptReason(text);
  if (failed !== undefined) return { ok: false, kind: "unreadable", message: `${where}: ${failed}` };
  assertOpened(text, checkpointId ? `The ${where} of checkpoint ${checkpointId}` : `The ${where}`);
  const match = store.addressMatches
    ? store.addressMatches(pipelineId, hash, text)
    : sha256(text) === hash
      ? "sha"
      : undefined;
  if (match === undefined)
    return {
      ok: false,
      kind: "output_hash_mismatch",
      message: `${where} does not match its hash ${hash.slice(0, 12)}…`,
    };
  return { ok: true, keyed: match === "keyed" };
}

/**
 * Checks a record's checksum and outputs without throwing; problems are collected. Outputs in
 * `known` (verified earlier, from the same reads) are not hashed again.
 */
export async function inspectRecord(
  store: OutputSource,
  record: CheckpointRecord,
  known?: ReadonlySet<string>,
): Promise<Inspection> {
  const { metadata } = record;
  const content = checkRecordContent(record);
  if (content.stored === undefined) return { problems: content.problems };
  const { stored, body } = content;
  const problems: ValidationProblem[] = [];
  const hashes = [...new Set(Object.values(body.output_refs))];
  const outputs =
    hashes.length > 0 ? await store.getOutputs(metadata.pipeline_id, hashes) : new Map<string, string>();
  const keyed = new Set<string>();
  for (const [stage, hash] of Object.entries(body.output_refs)) {
    const text = outputs.get(hash);
    // Verified earlier from the same reads: only whether it opened is checked again.
    if (text !== undefined && known?.has(hash) && corruptReason(text) === undefined) {
      assertOpened(text, `The output of stage ${stage} of checkpoint ${metadata.checkpoint_id}`);
      continue;
    }
    const where = `output of stage ${stage}`;
    const check = checkOutputText(store, metadata.pipeline_id, hash, text, where, metadata.checkpoint_id);
    if (check.ok) {
      if (check.keyed) keyed.add(hash);
      continue;
    }
    problems.push({ kind: check.kind, message: check.message });
    outputs.delete(hash);
  }
  return problems.length > 0
    ? { problems }
    : { problems, verified: { record, body, stored, outputs, keyed } };
}

/** Verifies a record, throwing {@link CheckpointCorruptError} listing every problem. */
export async function verifyRecord(store: OutputSource, record: CheckpointRecord): Promise<VerifiedRecord> {
  const { problems, verified } = await inspectRecord(store, record);
  if (!verified)
    throw new CheckpointCorruptError(
      record.metadata.checkpoint_id,
      problems.map((p) => p.message),
    );
  return verified;
}

/** The verified, still encoded outputs behind a loaded checkpoint's `agentOutputs`. */
const encodedBehind = new WeakMap<object, ReadonlyMap<string, EncodedOutput>>();

/**
 * The outputs of a loaded checkpoint as their verified stored text, so a resumed run carries
 * them into its next checkpoints without encoding or hashing them again. Undefined for an
 * `agentOutputs` object that did not come from a load.
 */
export function encodedOutputsOf(agentOutputs: object): ReadonlyMap<string, EncodedOutput> | undefined {
  return encodedBehind.get(agentOutputs);
}

/**
 * `agentOutputs` whose values decode on first read. Every output's hash is verified before the
 * checkpoint is returned; decoding (most of a load's time once outputs are large) waits until a
 * stage's output is read, so a resume that reads two outputs of fifty decodes two. Each property
 * turns into a plain value once read (or assigned), and each stage decodes its own copy, so two
 * stages with identical outputs never share one object.
 */
function lazyOutputs(
  checkpointId: string,
  refs: Record<string, string>,
  outputs: Map<string, string>,
  keyed: ReadonlySet<string> | undefined,
): Record<string, unknown> {
  const agentOutputs: Record<string, unknown> = {};
  const encoded = new Map<string, EncodedOutput>();
  for (const [stage, hash] of Object.entries(refs)) {
    const text = outputs.get(hash) as string;
    encoded.set(
      stage,
      keyed?.has(hash) ? EncodedOutput.keyedVerified(text) : EncodedOutput.verified(text, hash),
    );
    const settle = (value: unknown) => {
      Object.defineProperty(agentOutputs, stage, {
        value,
        writable: true,
        enumerable: true,
        configurable: true,
      });
      return value;
    };
    Object.defineProperty(agentOutputs, stage, {
      enumerable: true,
      configurable: true,
      get: () => settle(decodeOutput(checkpointId, stage, text)),
      set: settle,
    });
  }
  encodedBehind.set(agentOutputs, encoded);
  return agentOutputs;
}

function decodeOutput(checkpointId: string, stage: string, text: string): unknown {
  try {
    return decode(text);
  } catch (error) {
    // Only text this cairn cannot read (a newer format's tag) gets here: its hash was verified.
    throw new CheckpointCorruptError(
      checkpointId,
      `output of stage ${stage} does not decode: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Decodes a verified record into the public checkpoint shape; outputs decode on first read. */
export function decodeVerified({ record, body, outputs, keyed }: VerifiedRecord): PipelineCheckpoint {
  const id = record.metadata.checkpoint_id;
  try {
    const agentOutputs = lazyOutputs(id, body.output_refs, outputs, keyed);
    return {
      metadata: toMetadata(record.metadata),
      stateData: decodeTree(body.state_data) as Record<string, unknown>,
      completedStages: body.completed_stages,
      pendingStages: body.pending_stages,
      agentOutputs,
      provenanceHashes: body.provenance_hashes,
      pipelineVersion: body.pipeline_version ?? undefined,
      outputVersions: { ...body.output_versions },
      outputMigrations: Object.fromEntries(
        Object.entries(body.output_migrations).map(([stage, m]) => [
          stage,
          { from: m.from, to: m.to, by: m.by ?? undefined },
        ]),
      ),
    };
  } catch (error) {
    throw new CheckpointCorruptError(id, `content does not decode: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
