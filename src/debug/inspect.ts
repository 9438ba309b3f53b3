/**
 * Everything about one checkpoint (the seed's `inspect` debugger command): its metadata, content,
 * the one check's verdict, its parent and its children. The run is listed once, for the chain
 * link and the children alike.
 */
import { CheckpointCorruptError, CheckpointNotFoundError, KeyMissingError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { type CheckpointRecord, toMetadata } from "../core/record.js";
import type { CheckpointMetadata, ValidationResult } from "../core/types.js";
import {
  checkRecord,
  isQuarantined,
  listedParents,
  type ParentLookup,
  storeParents,
} from "../manager/check.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { ListedCheckpoint } from "../stores/types.js";
import { readOutline } from "../transforms/envelope.js";
import { type AtRestInfo, atRestInfo } from "./at-rest-info.js";

/** What {@link inspectCheckpoint} reports; content fields are null when the checkpoint does not decode. */
export interface CheckpointInspection {
  checkpointId: string;
  /** True when its checksum and outputs verify and everything decodes. */
  readable: boolean;
  metadata: CheckpointMetadata | null;
  completedStages: string[] | null;
  pendingStages: string[] | null;
  stateKeys: string[] | null;
  /** Each stage's output and the bytes of its stored text. */
  outputs: { stage: string; bytes: number }[] | null;
  validation: ValidationResult;
  parentCheckpointId: string | null;
  /** False when retention (or a hand) removed the parent; null when there is no parent. */
  parentInStore: boolean | null;
  children: string[];
  /** How the checkpoint is stored (compression, encryption, key id); null when it is unreadable. */
  atRest: AtRestInfo | null;
  /**
   * Set when the content is encrypted under a key the manager lacks: the metadata and stage
   * lists are shown, the state and outputs are not, and `validation` could not run (`valid`
   * false, no problems).
   */
  keyMissing: { keyId: string; kind: KeyMissingError["kind"]; message: string } | null;
}

/** Inspects one checkpoint; `CAIRN_NOT_FOUND` for an id the store does not hold. */
export async function inspectCheckpoint(
  manager: CheckpointManager,
  checkpointId: string,
): Promise<CheckpointInspection> {
  assertValidName("checkpointId", checkpointId);
  const store = await manager.getStore();
  let record: CheckpointRecord | undefined;
  try {
    record = await store.getCheckpoint(checkpointId);
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    // A record that does not parse has no run to tell, nor content to show.
    return unreadable(checkpointId, error.message);
  }
  if (!record) throw new CheckpointNotFoundError(checkpointId);
  const listing = await store.listCheckpoints(record.metadata.pipeline_id);
  const parents = listedParents(listing, storeParents(store));
  const atRest = (await atRestInfo(store, checkpointId)) ?? null;
  let outcome: Awaited<ReturnType<typeof checkRecord>>;
  try {
    outcome = await checkRecord(store, record, parents);
  } catch (error) {
    if (!(error instanceof KeyMissingError)) throw error;
    return locked(record, listing, atRest, error, await parentInStore(record, parents));
  }
  const { problems, verified, checkpoint } = outcome;
  const metadata = toMetadata(record.metadata);
  const parent = metadata.parentCheckpointId;
  return {
    checkpointId,
    readable: checkpoint !== undefined,
    metadata,
    completedStages: checkpoint?.completedStages ?? null,
    pendingStages: checkpoint?.pendingStages ?? null,
    stateKeys: checkpoint ? Object.keys(checkpoint.stateData) : null,
    outputs:
      checkpoint && verified
        ? Object.entries(verified.body.output_refs).map(([stage, hash]) => ({
            stage,
            bytes: Buffer.byteLength(verified.outputs.get(hash) ?? "", "utf8"),
          }))
        : null,
    validation: {
      checkpointId,
      valid: problems.length === 0,
      problems,
      quarantined: problems.length > 0 && isQuarantined(record.metadata),
    },
    parentCheckpointId: parent ?? null,
    parentInStore: await parentInStore(record, parents),
    children: childrenOf(listing, checkpointId),
    atRest,
    keyMissing: null,
  };
}

async function parentInStore(record: CheckpointRecord, parents: ParentLookup): Promise<boolean | null> {
  const parent = record.metadata.parent_checkpoint_id;
  return parent === null ? null : (await parents(parent)) !== undefined;
}

function childrenOf(listing: readonly ListedCheckpoint[], checkpointId: string): string[] {
  const children: string[] = [];
  for (const entry of listing) {
    if (entry.ok && entry.metadata.parent_checkpoint_id === checkpointId)
      children.push(entry.metadata.checkpoint_id);
  }
  return children;
}

/** A checkpoint sealed under a key the manager lacks: its metadata and clear outline, nothing more. */
function locked(
  record: CheckpointRecord,
  listing: readonly ListedCheckpoint[],
  atRest: AtRestInfo | null,
  error: KeyMissingError,
  parentPresent: boolean | null,
): CheckpointInspection {
  const checkpointId = record.metadata.checkpoint_id;
  let outline: ReturnType<typeof readOutline> | undefined;
  try {
    outline = readOutline(record.metadata, record.body);
  } catch {
    // Sealed without an outline: the stage lists need the key too.
    outline = undefined;
  }
  return {
    checkpointId,
    readable: false,
    metadata: toMetadata(record.metadata),
    completedStages: outline?.completed_stages ?? null,
    pendingStages: outline?.pending_stages ?? null,
    stateKeys: null,
    outputs: null,
    validation: { checkpointId, valid: false, problems: [], quarantined: false },
    parentCheckpointId: record.metadata.parent_checkpoint_id ?? null,
    parentInStore: parentPresent,
    children: childrenOf(listing, checkpointId),
    atRest,
    keyMissing: { keyId: error.keyId, kind: error.kind, message: error.message },
  };
}

function unreadable(checkpointId: string, message: string): CheckpointInspection {
  return {
    checkpointId,
    readable: false,
    metadata: null,
    completedStages: null,
    pendingStages: null,
    stateKeys: null,
    outputs: null,
    validation: {
      checkpointId,
      valid: false,
      problems: [{ kind: "unreadable", message }],
      quarantined: false,
    },
    parentCheckpointId: null,
    parentInStore: null,
    children: [],
    atRest: null,
    keyMissing: null,
  };
}
