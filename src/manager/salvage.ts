/**
 * Salvage: the resume point at stage granularity. Outputs are content-addressed and shared by a
 * run's checkpoints, so one damaged output used to make every checkpoint that references it
 * invalid, and a resume fell back behind all of them and re-ran every stage after. Here:
 *
 * - the base is the run's newest resumable checkpoint whose RECORD verifies (checksum, body,
 *   state data): a corrupt or quarantined newer record is passed over, and nothing the base
 *   proves is redone;
 * - per completed stage of the base, its output is the base's when that verifies; otherwise the
 *   newest older checkpoint whose record verifies and that references a verified output for the
 *   stage with the same fingerprint and output version (a copy of the same work) lends it;
 * - a stage with no verified output is reported (`unverified`), so the planner re-runs it and
 *   its descendants, and only them.
 *
 * Nothing is written here. When the newest record verifies with every output (the usual case),
 * it is the only one read.
 */
import { canonicalJson, decode, decodeTree } from "../core/codec.js";
import { CheckpointCorruptError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import type { CheckpointBody, CheckpointRecord } from "../core/record.js";
import { type PipelineCheckpoint, RESUMABLE_STATUSES } from "../core/types.js";
import type { CheckpointStore } from "../stores/types.js";
import type { OutputSource } from "./check.js";
import { findResumePoint } from "./runs.js";
import { checkOutputText, checkRecordContent, decodeVerified, type VerifiedRecord } from "./verify.js";

/** A run's resume point at stage granularity (see the module comment). */
export interface SalvagedResume {
  /**
   * The base checkpoint as a resume reads it: its metadata, state and stage lists, with only
   * verified outputs in `agentOutputs` (borrowed ones included, with their provenance).
   */
  checkpoint: PipelineCheckpoint;
  /** Per stage with a verified output: the checkpoint its output comes from. */
  sources: Record<string, string>;
  /** Per completed stage of the base with no verified output: why its stored output failed. */
  unverified: Record<string, string>;
  /** Newer checkpoints passed over, newest first, with why (corrupt record, quarantined...). */
  passedOver: { checkpointId: string; reason: string; corrupt?: true }[];
  /**
   * Hashes of unverified stages' stored outputs whose text is not what their address names: a
   * re-run that produces the same bytes must replace them (stores never overwrite an output).
   */
  damagedOutputs: string[];
}

/** A record whose own content verifies, outputs not yet looked at. */
interface CheckedRecord {
  record: CheckpointRecord;
  body: CheckpointBody;
  state: Record<string, unknown>;
}

/** One verified output of one stage. */
interface StageOutput {
  hash: string;
  text: string;
  keyed: boolean;
}

/** Why a record cannot be a base or a source, or the record with its content checked. */
function checkOwnContent(record: CheckpointRecord): CheckedRecord | string {
  // Sealed for want of a key throws KeyMissingError: a resume cannot go on without it.
  const content = checkRecordContent(record);
  if (content.body === undefined) return content.problems.map((problem) => problem.message).join("; ");
  try {
    const state = decodeTree(content.body.state_data) as Record<string, unknown>;
    return { record, body: content.body, state };
  } catch (error) {
    return (error as Error).message;
  }
}

/** Why a stored output fails; `damaged` when its stored text is not what its address names. */
interface OutputFailure {
  reason: string;
  damaged: boolean;
}

/** Checks one stage's stored output: a verified output, or why it fails. */
function checkOutput(
  store: OutputSource,
  pipelineId: string,
  stage: string,
  hash: string,
  text: string | undefined,
): StageOutput | OutputFailure {
  const check = checkOutputText(store, pipelineId, hash, text, `output of stage ${stage}`);
  if (!check.ok) return { reason: check.message, damaged: check.kind !== "output_missing" };
  try {
    decode(text as string);
  } catch (error) {
    // Its hash holds: text a newer cairn wrote, perhaps. Never discarded.
    return {
      reason: `output ${hash.slice(0, 12)}… does not decode: ${(error as Error).message}`,
      damaged: false,
    };
  }
  return { hash, text: text as string, keyed: check.keyed };
}

const fingerprintText = (state: Record<string, unknown>, stage: string): string | undefined => {
  const fp = (state.fingerprints as Record<string, unknown> | undefined)?.[stage];
  return fp === undefined ? undefined : canonicalJson(fp);
};

/** The run's resume point, salvaged per stage (see the module comment); undefined when none. */
export async function findSalvagedResume(
  store: CheckpointStore,
  pipelineId: string,
): Promise<SalvagedResume | undefined> {
  assertValidName("pipelineId", pipelineId);
  // The usual case: the newest checkpoint verifies whole, one indexed read.
  const latest = await findResumePoint(async () => store, pipelineId);
  if (latest && (await isNewest(store, pipelineId, latest))) return whole(latest);
  const source = store as CheckpointStore & OutputSource;
  const listing = await store.listCheckpoints(pipelineId);
  const passedOver: SalvagedResume["passedOver"] = [];
  const checked: CheckedRecord[] = [];
  for (let i = listing.length - 1; i >= 0; i--) {
    const entry = listing[i];
    if (!entry) continue;
    if (!entry.ok) {
      const id = entry.corrupt.checkpointId;
      if (checked.length === 0 && id !== undefined)
        passedOver.push({ checkpointId: id, reason: entry.corrupt.reason, corrupt: true });
      continue;
    }
    const id = entry.metadata.checkpoint_id;
    if (!RESUMABLE_STATUSES.has(entry.metadata.status)) {
      if (checked.length === 0)
        passedOver.push({ checkpointId: id, reason: `its status is ${entry.metadata.status}` });
      continue;
    }
    let record: CheckpointRecord | undefined;
    try {
      record = await store.getCheckpoint(id);
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError)) throw error;
      if (checked.length === 0) passedOver.push({ checkpointId: id, reason: error.message, corrupt: true });
      continue;
    }
    if (!record) continue;
    const own = checkOwnContent(record);
    if (typeof own === "string") {
      if (checked.length === 0) passedOver.push({ checkpointId: id, reason: own, corrupt: true });
      continue;
    }
    checked.push(own);
  }
  const base = checked[0];
  if (!base) return undefined;
  return salvage(source, pipelineId, base, checked.slice(1), passedOver);
}

/** True when `found` is the run's newest listed checkpoint (nothing newer was passed over). */
async function isNewest(store: CheckpointStore, pipelineId: string, found: VerifiedRecord): Promise<boolean> {
  const newest = await store.getLatestCheckpoint(pipelineId).catch((error: unknown) => {
    if (error instanceof CheckpointCorruptError) return undefined;
    throw error;
  });
  return newest?.metadata.checkpoint_id === found.record.metadata.checkpoint_id;
}

function whole(verified: VerifiedRecord): SalvagedResume {
  const id = verified.record.metadata.checkpoint_id;
  const sources = Object.fromEntries(Object.keys(verified.body.output_refs).map((s) => [s, id]));
  return {
    checkpoint: decodeVerified(verified),
    sources,
    unverified: {},
    passedOver: [],
    damagedOutputs: [],
  };
}

/** Per stage, the base's output or an older verified copy of the same work. */
async function salvage(
  store: CheckpointStore & OutputSource,
  pipelineId: string,
  base: CheckedRecord,
  older: CheckedRecord[],
  passedOver: SalvagedResume["passedOver"],
): Promise<SalvagedResume> {
  const baseId = base.record.metadata.checkpoint_id;
  const refs = base.body.output_refs;
  const texts = await store.getOutputs(pipelineId, [...new Set(Object.values(refs))]);
  const body: CheckpointBody = {
    ...base.body,
    output_refs: {},
    provenance_hashes: { ...base.body.provenance_hashes },
    output_versions: { ...base.body.output_versions },
    output_migrations: { ...base.body.output_migrations },
  };
  const outputs = new Map<string, string>();
  const keyed = new Set<string>();
  const sources: Record<string, string> = {};
  const unverified: Record<string, string> = {};
  const damaged = new Set<string>();
  const take = (stage: string, found: StageOutput, from: CheckedRecord) => {
    body.output_refs[stage] = found.hash;
    outputs.set(found.hash, found.text);
    if (found.keyed) keyed.add(found.hash);
    sources[stage] = from.record.metadata.checkpoint_id;
    const provenance = from.body.provenance_hashes[stage];
    if (provenance !== undefined) body.provenance_hashes[stage] = provenance;
    const migration = from.body.output_migrations[stage];
    if (migration) body.output_migrations[stage] = migration;
    else delete body.output_migrations[stage];
  };
  for (const [stage, hash] of Object.entries(refs)) {
    const own = checkOutput(store, pipelineId, stage, hash, texts.get(hash));
    if (!("reason" in own)) {
      take(stage, own, base);
      continue;
    }
    const copy = await olderCopy(store, pipelineId, stage, base, older);
    if (copy) take(stage, copy.output, copy.from);
    else {
      unverified[stage] = own.reason;
      if (own.damaged) damaged.add(hash);
      delete body.provenance_hashes[stage];
      delete body.output_versions[stage];
      delete body.output_migrations[stage];
    }
  }
  const verified: VerifiedRecord = {
    record: base.record,
    body,
    stored: body as unknown as VerifiedRecord["stored"],
    outputs,
    keyed,
  };
  return {
    checkpoint: decodeVerified(verified),
    sources,
    unverified,
    passedOver: passedOver.filter((p) => p.checkpointId !== baseId),
    damagedOutputs: [...damaged],
  };
}

/** The newest older checkpoint's verified output for `stage` from the same work as the base's. */
async function olderCopy(
  store: CheckpointStore & OutputSource,
  pipelineId: string,
  stage: string,
  base: CheckedRecord,
  older: readonly CheckedRecord[],
): Promise<{ output: StageOutput; from: CheckedRecord } | undefined> {
  const wanted = fingerprintText(base.state, stage);
  // Without a recorded fingerprint there is no telling two copies are the same work.
  if (wanted === undefined) return undefined;
  const version = base.body.output_versions[stage] ?? 1;
  const failedHash = base.body.output_refs[stage];
  for (const from of older) {
    const hash = from.body.output_refs[stage];
    if (hash === undefined || hash === failedHash) continue;
    if ((from.body.output_versions[stage] ?? 1) !== version) continue;
    if (fingerprintText(from.state, stage) !== wanted) continue;
    const text = (await store.getOutputs(pipelineId, [hash])).get(hash);
    const output = checkOutput(store, pipelineId, stage, hash, text);
    if (!("reason" in output)) return { output, from };
  }
  return undefined;
}

/**
 * Deletes the damaged outputs a salvaged resume found, each checked again first, so the stages
 * that re-run can store their outputs afresh under the same addresses (a store keeps the first
 * text written under an address). Only text that fails its address is deleted: every checkpoint
 * referencing it was invalid already, and stays so. Call it under the run's lease. Returns the
 * hashes deleted.
 */
export async function discardDamagedOutputs(
  store: CheckpointStore,
  pipelineId: string,
  hashes: readonly string[],
): Promise<string[]> {
  if (hashes.length === 0) return [];
  const source = store as CheckpointStore & OutputSource;
  const texts = await store.getOutputs(pipelineId, hashes);
  const still = hashes.filter((hash) => {
    const checked = checkOutput(source, pipelineId, "(discard)", hash, texts.get(hash));
    return "reason" in checked && checked.damaged;
  });
  if (still.length > 0) await store.deleteOutputs(pipelineId, still);
  return still;
}
