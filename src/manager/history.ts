/**
 * Lost history: a run's listing compared with its head record (the last checkpoint written,
 * kept by the store atomically with every write, and retention's tombstone). Checkpoints removed
 * behind cairn's back (files unlinked, rows deleted, keys dropped), a tip replaced by another
 * checkpoint, and a run whose checkpoints are all gone are problems; what retention removed is
 * information. A run without a head record (written by an older cairn) cannot be judged.
 */
import { CheckpointCorruptError } from "../core/errors.js";
import { toMetadata } from "../core/record.js";
import type { CheckpointMetadata } from "../core/types.js";
import type { CheckpointStore, ListedCheckpoint, RunHead } from "../stores/types.js";

/** What the comparison of a run's listing with its head found. */
export interface HistoryFinding {
  /**
   * `truncated`: the newest checkpoints written are missing and retention did not remove them;
   * `history_lost`: none of the run's checkpoints is left; `replaced`: the last checkpoint written
   * is missing or changed while the run holds others as new; `head_unreadable`: the head record
   * cannot be read; `pruned` (information): retention removed the oldest checkpoints;
   * `head_missing` (information): no head record, so a truncation cannot be told.
   */
  kind: "truncated" | "history_lost" | "replaced" | "head_unreadable" | "pruned" | "head_missing";
  /** True for lost or changed history (the run is then invalid); false for information. */
  problem: boolean;
  message: string;
  /** The sequences missing at the run's end, for `truncated` and `history_lost`. */
  missing?: { fromSequence: number; toSequence: number };
  /** The head record the listing was compared with. */
  head?: RunHead;
}

/** The run's head record, or the finding that it cannot be read. */
export async function readHead(
  store: CheckpointStore,
  pipelineId: string,
): Promise<{ head: RunHead | undefined; finding?: HistoryFinding }> {
  try {
    return { head: await store.getRunHead(pipelineId) };
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    const message = `the run's head record cannot be read: ${error.message}`;
    return { head: undefined, finding: { kind: "head_unreadable", problem: true, message } };
  }
}

const seqRange = (from: number, to: number) => (from === to ? `sequence ${to}` : `sequences ${from}..${to}`);

/** Compares a run's listing with its head record; see the module comment. */
export function historyFindings(
  listing: readonly ListedCheckpoint[],
  head: RunHead | undefined,
): HistoryFinding[] {
  if (head === undefined) {
    if (listing.length === 0) return [];
    const message =
      "the store holds no head record for this run (written by an older cairn, or the record was lost): " +
      "whether its newest checkpoints are missing cannot be told";
    return [{ kind: "head_missing", problem: false, message }];
  }
  const findings: HistoryFinding[] = [];
  const pruned = head.pruned?.throughSequence ?? 0;
  if (head.pruned) {
    findings.push({
      kind: "pruned",
      problem: false,
      message: `${seqRange(1, head.pruned.throughSequence)} removed by retention (last on ${head.pruned.at})`,
      head,
    });
  }
  const tip = listing.find((e) =>
    e.ok ? e.metadata.checkpoint_id === head.checkpointId : e.corrupt.checkpointId === head.checkpointId,
  );
  if (tip !== undefined) {
    // An unreadable tip is already a problem of its own entry.
    if (tip.ok && tip.metadata.checksum !== head.checksum) {
      findings.push({
        kind: "replaced",
        problem: true,
        message:
          `checkpoint ${head.checkpointId}, the last written to the run, has checksum ` +
          `${tip.metadata.checksum.slice(0, 12)}…, not the ${head.checksum.slice(0, 12)}… it was written with: ` +
          "it was replaced after it was written",
        head,
      });
    }
    return findings;
  }
  if (pruned >= head.sequence) return findings;
  let newest = 0;
  for (const e of listing) if (e.ok) newest = Math.max(newest, e.metadata.sequence);
  const last = `${head.checkpointId} (sequence ${head.sequence})`;
  if (listing.length === 0) {
    const from = pruned + 1;
    findings.push({
      kind: "history_lost",
      problem: true,
      message:
        `none of the run's checkpoints is stored, though ${last} was written to it and retention ` +
        `removed ${pruned === 0 ? "none" : `only ${seqRange(1, pruned)}`}: the store lost the run's history`,
      missing: { fromSequence: from, toSequence: head.sequence },
      head,
    });
  } else if (newest < head.sequence) {
    const from = Math.max(newest, pruned) + 1;
    const count = head.sequence - from + 1;
    findings.push({
      kind: "truncated",
      problem: true,
      message:
        `the newest ${count === 1 ? "checkpoint" : `${count} checkpoints`} (${seqRange(from, head.sequence)}, ` +
        `the last ${head.checkpointId}) ${count === 1 ? "is" : "are"} missing; not removed by retention`,
      missing: { fromSequence: from, toSequence: head.sequence },
      head,
    });
  } else {
    findings.push({
      kind: "replaced",
      problem: true,
      message:
        `${last}, the last checkpoint written to the run, is missing, while the run holds other checkpoints ` +
        `up to sequence ${newest}: its newest checkpoints were replaced`,
      head,
    });
  }
  return findings;
}

/**
 * The checkpoint a run is known to have had when the store holds none of its checkpoints any
 * more (`CheckpointManager.lostHistory`): the one `lastWritten` names, else its head record's.
 */
export async function lostCheckpoint(
  store: CheckpointStore,
  pipelineId: string,
  lastWritten: () => string | undefined,
): Promise<string | undefined> {
  const known = lastWritten() ?? (await store.getRunHead(pipelineId))?.checkpointId;
  if (known === undefined) return undefined;
  return (await store.listCheckpoints(pipelineId)).length === 0 ? known : undefined;
}

/** Metadata of every checkpoint of a run, newest first (unparseable entries left out). */
export async function checkpointHistory(
  store: CheckpointStore,
  pipelineId: string,
): Promise<CheckpointMetadata[]> {
  const listing = await store.listCheckpoints(pipelineId);
  const history: CheckpointMetadata[] = [];
  for (const entry of listing) if (entry.ok) history.push(toMetadata(entry.metadata));
  return history.reverse();
}
