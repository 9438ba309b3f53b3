/**
 * A verified copy of one checkpoint and the outputs the target lacks, as stored (compressed and
 * encrypted texts are copied byte for byte; no key is needed or used). Verification is the one
 * checkpoint check (`manager/check.ts`) on the source's texts opened by an at-rest layer with no
 * keys: plain and compressed records get the full check (checksum, outputs, decode, chain link);
 * encrypted ones the check without the key (`checkWithoutKey`).
 */
import {
  CheckpointConflictError,
  CheckpointCorruptError,
  KeyMissingError,
  TooLargeError,
} from "../core/errors.js";
import type { CheckpointRecord, StoredMetadata } from "../core/record.js";
import type { ValidationProblem } from "../core/types.js";
import { checkRecord, checkWithoutKey, type OutputMemo, type ParentLookup } from "../manager/check.js";
import { DEFAULT_MAX_RECORD_BYTES } from "../manager/limits.js";
import type { GuardedStore } from "../stores/guarded-store.js";
import type { CheckpointStore, OutputRecord } from "../stores/types.js";
import { AtRestStore } from "../transforms/at-rest-store.js";
import { readOutline } from "../transforms/envelope.js";

/** A source checkpoint that passed verification, as stored, and the outputs it refers to. */
export interface VerifiedCopy {
  record: CheckpointRecord;
  /** The addresses of every output the record refers to (each verified). */
  refs: string[];
}

/** Outcome of verifying one source checkpoint. */
export type SourceCheck =
  | { kind: "ok"; copy: VerifiedCopy }
  | { kind: "corrupt"; problems: ValidationProblem[] }
  /** Deleted at the source since it was listed or announced. */
  | { kind: "gone" };

/**
 * Reads a source store's checkpoints for copying: each record and output as stored, and opened
 * (decompressed; encrypted ones stay sealed) for the check. Raw texts are kept per run until the
 * target has them, so an output read once for a run is never read again.
 */
export class SourceReader {
  private readonly view: AtRestStore;
  private records = new Map<string, CheckpointRecord>();
  private outputs = new Map<string, string>();

  constructor(readonly raw: GuardedStore) {
    const layer = new AtRestStore(raw, { maxBytes: DEFAULT_MAX_RECORD_BYTES });
    this.view = layer.tapped({
      record: (id, record) => this.records.set(id, record),
      outputs: (found) => {
        for (const [hash, text] of found) this.outputs.set(hash, text);
      },
    });
  }

  /** Forgets the raw texts kept (at the start of each run, so memory stays one run's worth). */
  reset(): void {
    this.records = new Map();
    this.outputs = new Map();
  }

  /**
   * Reads and verifies checkpoint `checkpointId`. `memo` (one per run walk) keeps each output's
   * read and check to once per run; `parents` is where the chain link's parent is looked up.
   */
  async verify(checkpointId: string, parents: ParentLookup, memo?: OutputMemo): Promise<SourceCheck> {
    try {
      return await this.check(checkpointId, parents, memo);
    } catch (error) {
      // Compressed data opening beyond the limit (a bomb, or a record no load could read): refused.
      if (!(error instanceof TooLargeError)) throw error;
      return { kind: "corrupt", problems: [{ kind: "unreadable", message: error.message }] };
    }
  }

  private async check(checkpointId: string, parents: ParentLookup, memo?: OutputMemo): Promise<SourceCheck> {
    let opened: CheckpointRecord | undefined;
    try {
      opened = await this.view.getCheckpoint(checkpointId);
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError)) throw error;
      return { kind: "corrupt", problems: [{ kind: "unreadable", message: error.message }] };
    }
    const stored = this.records.get(checkpointId);
    this.records.delete(checkpointId);
    if (!opened || !stored) return { kind: "gone" };
    let problems: ValidationProblem[];
    try {
      problems = (await checkRecord(this.view, opened, parents, memo)).problems;
    } catch (error) {
      if (!(error instanceof KeyMissingError)) throw error;
      problems = await checkWithoutKey(this.view, opened, parents);
    }
    // Outputs gone with a delete that ran since the record was read: a delete, not damage.
    if (problems.some((p) => p.kind === "output_missing") && !(await this.raw.getCheckpoint(checkpointId)))
      return { kind: "gone" };
    if (problems.length > 0) return { kind: "corrupt", problems };
    return { kind: "ok", copy: { record: stored, refs: refsOf(opened) } };
  }

  /**
   * The outputs of `copy` the target lacks (not in `has`), as stored in the source. Each was read
   * (and kept as stored) by the check, or by the check of an earlier checkpoint of the same run
   * walk whose copy failed; one dropped since is read again (the run walk verified its address).
   * Undefined when one is no longer in the source.
   */
  async missingOutputs(copy: VerifiedCopy, has: ReadonlySet<string>): Promise<OutputRecord[] | undefined> {
    const wanted = copy.refs.filter((hash) => !has.has(hash));
    const unread = wanted.filter((hash) => !this.outputs.has(hash));
    const read =
      unread.length > 0 ? await this.raw.getOutputs(copy.record.metadata.pipeline_id, unread) : undefined;
    const out: OutputRecord[] = [];
    for (const hash of wanted) {
      const body = this.outputs.get(hash) ?? read?.get(hash);
      // Deleted from the source since the check (its run deleted): no copy without it.
      if (body === undefined) return undefined;
      out.push({ hash, body });
    }
    return out;
  }

  /** Drops the stored texts of outputs the target now holds. */
  forget(hashes: Iterable<string>): void {
    for (const hash of hashes) this.outputs.delete(hash);
  }
}

/** The output addresses a record refers to (its body opened, or its clear outline when sealed). */
function refsOf(record: CheckpointRecord): string[] {
  // The check parsed the same text already: this cannot fail here.
  return [...new Set(Object.values(readOutline(record.metadata, record.body).output_refs))];
}

/** Outcome of writing one verified copy (with the target's metadata when it was there already). */
export type PutOutcome =
  | { outcome: "copied" }
  | { outcome: "present"; there: StoredMetadata }
  | { outcome: "diverged" };

/**
 * Stores a verified copy in the target with the outputs it lacks: no fence, no expected tip (the
 * source decided the order). A checkpoint already there with the same checksum (an apply made
 * twice, a write whose answer was lost) is `present`; with another checksum, `diverged`.
 */
export async function putCopy(
  target: CheckpointStore,
  copy: VerifiedCopy,
  outputs: readonly OutputRecord[],
): Promise<PutOutcome> {
  try {
    await target.putCheckpoint(copy.record, outputs);
    return { outcome: "copied" };
  } catch (error) {
    if (!(error instanceof CheckpointConflictError)) throw error;
    const m = copy.record.metadata;
    const there = await targetMetadata(target, m.checkpoint_id);
    return there && there.checksum === m.checksum && there.pipeline_id === m.pipeline_id
      ? { outcome: "present", there }
      : { outcome: "diverged" };
  }
}

/** The metadata of the target's checkpoint `id`; null when it cannot be parsed; undefined when absent. */
export async function targetMetadata(
  target: CheckpointStore,
  id: string,
): Promise<StoredMetadata | null | undefined> {
  try {
    return (await target.getCheckpoint(id))?.metadata;
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    return null;
  }
}
