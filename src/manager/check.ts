/**
 * The one checkpoint check. Validation, the run walk, export, import, repair, compare and inspect
 * all decide "valid" here: the checksum, every output's hash, the decode of the state data and of
 * every output, and the hash-chain link to the parent (a parent removed by retention is no break).
 * It returns the problems it finds and never throws for bad data; a store error is thrown.
 */
import { CheckpointCorruptError, CheckpointNotFoundError, KeyMissingError } from "../core/errors.js";
import type { CheckpointRecord, StoredMetadata } from "../core/record.js";
import { corruptReason, isEnvelope } from "../core/sealed.js";
import type { PipelineCheckpoint, ValidationProblem, ValidationResult } from "../core/types.js";
import type { CheckpointStore, ListedCheckpoint } from "../stores/types.js";
import { readOutline } from "../transforms/envelope.js";
import {
  checkOutputText,
  checkRecordContent,
  decodeVerified,
  inspectRecord,
  type VerifiedRecord,
} from "./verify.js";

/** How every quarantine message starts, so a quarantined checkpoint is recognised. */
export const QUARANTINE_PREFIX = "quarantined by cairn repair";

/**
 * True for a checkpoint `cairn repair` quarantined: status `expired` with the repair's message.
 * It stays invalid (repair never re-seals data), but it is a handled problem: resume skips it.
 */
export function isQuarantined(metadata: Pick<StoredMetadata, "status" | "error_message">): boolean {
  return metadata.status === "expired" && (metadata.error_message?.startsWith(QUARANTINE_PREFIX) ?? false);
}

/** What the chain check knows of a parent: its stored checksum, why it is unreadable, or nothing (absent). */
export type ParentInfo = { checksum: string } | { unreadable: string } | undefined;

/** Finds a parent by id for the chain check. */
export type ParentLookup = (parentId: string) => Promise<ParentInfo>;

/**
 * Where the check reads a checkpoint's outputs from: a store, or the outputs of a file being
 * imported. `addressMatches` (the at-rest layer's) also knows keyed addresses; without it, an
 * output's address is its SHA-256.
 */
export type OutputSource = Pick<CheckpointStore, "getOutputs"> & {
  addressMatches?(pipelineId: string, address: string, text: string): "sha" | "keyed" | undefined;
};

/** Outcome of {@link checkRecord}. */
export interface CheckOutcome {
  /** Empty when the checkpoint is valid. */
  problems: ValidationProblem[];
  /** The record with its verified output texts, when the checksum and every output hash hold. */
  verified?: VerifiedRecord;
  /** The checkpoint with everything decoded, when it also decodes (the chain link may still be broken). */
  checkpoint?: PipelineCheckpoint;
}

/** Parents looked up in the store, one read each: for checks of a single checkpoint. */
export function storeParents(store: CheckpointStore): ParentLookup {
  return async (parentId) => {
    try {
      const parent = await store.getCheckpoint(parentId);
      return parent && { checksum: parent.metadata.checksum };
    } catch (error) {
      if (error instanceof CheckpointCorruptError) return { unreadable: error.message };
      throw error;
    }
  };
}

/**
 * Parents looked up in a run's listing, read once for the whole run, so a walk never reads a
 * parent again (a file store's `getCheckpoint` reads the run's folder). A parent the listing
 * lacks is asked of `fallback`, when given.
 */
export function listedParents(listing: readonly ListedCheckpoint[], fallback?: ParentLookup): ParentLookup {
  const byId = new Map<string, ListedCheckpoint>();
  for (const entry of listing) {
    const id = entry.ok ? entry.metadata.checkpoint_id : entry.corrupt.checkpointId;
    if (id !== undefined && !byId.has(id)) byId.set(id, entry);
  }
  return async (parentId) => {
    const entry = byId.get(parentId);
    if (entry === undefined) return fallback?.(parentId);
    return entry.ok ? { checksum: entry.metadata.checksum } : { unreadable: entry.corrupt.reason };
  };
}

/** The chain link of a record to its parent; a parent that is gone (retention) is not a break. */
export async function chainLink(
  record: CheckpointRecord,
  parents: ParentLookup,
): Promise<ValidationProblem | undefined> {
  const { parent_checkpoint_id: parentId, parent_checksum: expected } = record.metadata;
  if (parentId === null) return undefined;
  const parent = await parents(parentId);
  if (parent === undefined) return undefined;
  if ("unreadable" in parent) {
    return { kind: "broken_chain", message: `parent ${parentId} is unreadable: ${parent.unreadable}` };
  }
  if (parent.checksum === expected) return undefined;
  return {
    kind: "broken_chain",
    message: `parent ${parentId} has checksum ${parent.checksum.slice(0, 12)}…, expected ${String(expected).slice(0, 12)}…`,
  };
}

/**
 * What a run walk already read and decoded. A run's outputs are cumulative (checkpoint k holds
 * the outputs of stages 1..k), so without it a walk of N checkpoints reads and decodes O(N²)
 * outputs; with it, each output once. It holds the outputs of the checkpoint being checked.
 */
export class OutputMemo {
  private readonly texts = new Map<string, string>();
  /** Hashes whose text verified and decoded: neither is done again. */
  readonly decoded = new Set<string>();

  /** `source`, asked only for the hashes this memo has not seen yet. */
  over(source: OutputSource): OutputSource {
    return {
      ...(source.addressMatches ? { addressMatches: source.addressMatches.bind(source) } : {}),
      getOutputs: async (pipelineId, hashes) => {
        // Keep only this checkpoint's outputs: memory stays one checkpoint's worth when a run's
        // outputs are not cumulative. A dropped output read again later is verified again.
        const wanted = new Set(hashes);
        for (const hash of this.texts.keys()) {
          if (wanted.has(hash)) continue;
          this.texts.delete(hash);
          this.decoded.delete(hash);
        }
        const missing = hashes.filter((h) => !this.texts.has(h));
        if (missing.length > 0) {
          for (const [hash, text] of await source.getOutputs(pipelineId, missing)) this.texts.set(hash, text);
        }
        const found = new Map<string, string>();
        for (const hash of hashes) {
          const text = this.texts.get(hash);
          if (text !== undefined) found.set(hash, text);
        }
        return found;
      },
    };
  }
}

/** Checks one record as the module comment says; problems are returned, never thrown. */
export async function checkRecord(
  source: OutputSource,
  record: CheckpointRecord,
  parents: ParentLookup,
  memo?: OutputMemo,
): Promise<CheckOutcome> {
  const { problems, verified } = await inspectRecord(
    memo ? memo.over(source) : source,
    record,
    memo?.decoded,
  );
  let checkpoint: PipelineCheckpoint | undefined;
  if (verified) {
    try {
      checkpoint = decodeVerified(verified);
      // Outputs decode on first read: read each one this walk has not decoded yet.
      for (const [stage, hash] of Object.entries(verified.body.output_refs)) {
        if (memo?.decoded.has(hash)) continue;
        void checkpoint.agentOutputs[stage];
        memo?.decoded.add(hash);
      }
    } catch (error) {
      checkpoint = undefined;
      problems.push({ kind: "unreadable", message: (error as Error).message });
    }
  }
  const link = await chainLink(record, parents);
  if (link) problems.push(link);
  return { problems, ...(verified ? { verified } : {}), ...(checkpoint ? { checkpoint } : {}) };
}

/** True for a text still sealed for want of a key (not one that failed to open). */
const stillSealed = (text: string) => isEnvelope(text) && corruptReason(text) === undefined;

/**
 * The check of a record as far as it goes without the key it is encrypted under (the replicator
 * holds no keys): a plain body gets its checksum and parse checked; a sealed one, its envelope and
 * clear outline (the layer that read it already checked that it names the run's data key). Every
 * output it refers to must be there; a plain one must match its SHA-256, a sealed one cannot be
 * (its address is keyed). The chain link is metadata and checked in full. What is left unchecked
 * (an encrypted body's checksum, a keyed address) fails authentication when read with the key.
 */
export async function checkWithoutKey(
  source: OutputSource,
  record: CheckpointRecord,
  parents: ParentLookup,
): Promise<ValidationProblem[]> {
  const { metadata } = record;
  const problems: ValidationProblem[] = [];
  let refs: Record<string, string> | undefined;
  if (stillSealed(record.body)) {
    try {
      refs = readOutline(metadata, record.body).output_refs;
    } catch (error) {
      if (error instanceof CheckpointCorruptError)
        problems.push({ kind: "unreadable", message: error.message });
      else if (error instanceof KeyMissingError)
        problems.push({
          kind: "unreadable",
          message: "its sealed body has no clear outline: its outputs cannot be told without the key",
        });
      else throw error;
    }
  } else {
    const content = checkRecordContent(record);
    problems.push(...content.problems);
    refs = content.body?.output_refs;
  }
  const hashes = [...new Set(Object.values(refs ?? {}))];
  const outputs =
    hashes.length > 0 ? await source.getOutputs(metadata.pipeline_id, hashes) : new Map<string, string>();
  for (const [stage, hash] of Object.entries(refs ?? {})) {
    const text = outputs.get(hash);
    if (text !== undefined && stillSealed(text)) continue;
    const where = `output of stage ${stage}`;
    const check = checkOutputText(source, metadata.pipeline_id, hash, text, where, metadata.checkpoint_id);
    if (!check.ok) problems.push({ kind: check.kind, message: check.message });
  }
  const link = await chainLink(record, parents);
  if (link) problems.push(link);
  return problems;
}

/** Outcome of {@link checkStored}: `gone` when the store no longer holds the checkpoint. */
export type StoredCheck = { gone: true } | ({ gone: false; record?: CheckpointRecord } & CheckOutcome);

/**
 * Reads a checkpoint and checks it. A record that does not parse is a problem; a checkpoint that
 * is not (or, once its outputs turn out missing, no longer) in the store is `gone`, which is how
 * a delete that ran between a listing and this read shows.
 */
export async function checkStored(
  store: CheckpointStore,
  checkpointId: string,
  parents: ParentLookup,
  memo?: OutputMemo,
): Promise<StoredCheck> {
  let record: CheckpointRecord | undefined;
  try {
    record = await store.getCheckpoint(checkpointId);
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    return { gone: false, problems: [{ kind: "unreadable", message: error.message }] };
  }
  if (!record) return { gone: true };
  const outcome = await checkRecord(store, record, parents, memo);
  // A run deleted after the record was read takes its outputs along: that is a delete, not damage.
  if (outcome.problems.some((p) => p.kind === "output_missing")) {
    const still = await store.getCheckpoint(checkpointId).catch((error: unknown) => {
      if (error instanceof CheckpointCorruptError) return record;
      throw error;
    });
    if (!still) return { gone: true };
  }
  return { gone: false, record, ...outcome };
}

/** The one check of a checkpoint as `validateCheckpoint` reports it; `CAIRN_NOT_FOUND` when gone. */
export async function validateStored(
  store: CheckpointStore,
  checkpointId: string,
): Promise<ValidationResult> {
  const checked = await checkStored(store, checkpointId, storeParents(store));
  if (checked.gone) throw new CheckpointNotFoundError(checkpointId);
  const valid = checked.problems.length === 0;
  const quarantined = !valid && checked.record !== undefined && isQuarantined(checked.record.metadata);
  return { checkpointId, valid, problems: checked.problems, quarantined };
}
