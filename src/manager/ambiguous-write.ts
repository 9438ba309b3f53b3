/**
 * Settling a write the store could not confirm: the connection was lost after the checkpoint
 * was sent and before the server answered (`StoreUnavailableError` with `maybeCommitted`). The
 * checkpoint id tells: reading it back says whether the write happened; when it did not, the
 * identical record is sent again under the same tip condition, so it is stored at most once
 * (a copy that lands late meets a duplicate id or a moved tip and is refused).
 */
import { CheckpointConflictError, StoreUnavailableError, TipMovedError } from "../core/errors.js";
import type { CheckpointRecord, OutputRecord } from "../core/record.js";
import type { CheckpointStore, Lease } from "../stores/types.js";
import type { DataKey } from "../transforms/data-key.js";
import { buildBody } from "./build.js";
import type { CheckedInput } from "./input.js";

/** A checkpoint write whose outcome is unknown, kept until the store can tell. */
export interface PendingWrite {
  record: CheckpointRecord;
  /** The outputs sent with it. */
  outputs: readonly OutputRecord[];
  /** The tip the write was conditioned on. */
  expectedTip: string | null;
  /** Every output hash the checkpoint references, stored once it is. */
  refs: ReadonlySet<string>;
  /** What the store said when the write was lost. */
  error: StoreUnavailableError;
  /** The run's data key the outputs were addressed with, when they are encrypted. */
  key?: DataKey | undefined;
}

/** Reads (and re-sends) before an unsettled write is reported: about 1.5 s of backoff in all. */
const SETTLE_ATTEMPTS = 5;
const FIRST_DELAY_MS = 50;

/** True for the error of a write that may have been applied. */
export function isAmbiguous(error: unknown): error is StoreUnavailableError {
  return error instanceof StoreUnavailableError && error.maybeCommitted;
}

/**
 * True when `input` is the pending checkpoint again (a caller retrying the write it was told
 * may not have happened): the same content, whatever its id, time and parent.
 */
export function isRetryOf(write: PendingWrite, input: CheckedInput): boolean {
  const m = write.record.metadata;
  return (
    m.stage_name === input.stageName &&
    m.stage_index === input.stageIndex &&
    m.status === input.status &&
    m.error_message === (input.errorMessage ?? null) &&
    write.record.body === buildBody(input.content, write.key)
  );
}

/** How a settled write came out. */
export type Settled = "written" | "absent";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Finds out whether `write` was stored, waiting (bounded) while the store is unavailable:
 * `written` when the store holds it. When it does not: with `resend`, the identical record is
 * sent again (and `written` once stored); without, `absent`. Throws the last unavailability
 * error, with `maybeCommitted`, when the store stays away, and what a re-send meets otherwise
 * (a moved tip, a lost lease: then the write never happened).
 */
export async function settleWrite(
  store: CheckpointStore,
  write: PendingWrite,
  resend: { fence: Lease | undefined } | undefined,
): Promise<Settled> {
  const { record } = write;
  const id = record.metadata.checkpoint_id;
  const stored = async (): Promise<boolean> => {
    const found = await store.getCheckpoint(id);
    if (!found) return false;
    if (found.metadata.checksum === record.metadata.checksum) return true;
    throw new CheckpointConflictError(
      id,
      `Checkpoint ${JSON.stringify(id)} is in the store with another checksum than the one written`,
    );
  };
  let last = write.error;
  for (let attempt = 0; attempt < SETTLE_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(FIRST_DELAY_MS * 2 ** (attempt - 1));
    try {
      if (await stored()) return "written";
      if (!resend) return "absent";
      try {
        await store.putCheckpoint(record, write.outputs, resend.fence, { expectedTip: write.expectedTip });
        return "written";
      } catch (error) {
        // Refused: the first copy may have landed after the read (the re-send met it, or a
        // writer already chained after it). Only when it is not there did the write not happen.
        if (error instanceof CheckpointConflictError && (await stored())) return "written";
        throw error;
      }
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      // A re-send whose reply was lost is as unsettled as the first write.
      if (error.maybeCommitted) last = error;
    }
  }
  throw last;
}

/**
 * The writes of a manager that the store could not confirm, one per run at most (a run's
 * writes are serialized), until the next write to the run settles it.
 */
export class UnsettledWrites {
  private readonly byRun = new Map<string, PendingWrite>();

  constructor(private readonly limit: number) {}

  /** Stores a sealed checkpoint; one the store could not confirm is settled now, or kept. */
  async put(store: CheckpointStore, write: Omit<PendingWrite, "error">, fence: Lease | undefined) {
    const { record } = write;
    try {
      await store.putCheckpoint(record, write.outputs, fence, { expectedTip: write.expectedTip });
    } catch (error) {
      if (!isAmbiguous(error)) throw error;
      try {
        await settleWrite(store, { ...write, error }, { fence });
      } catch (unsettled) {
        if (isAmbiguous(unsettled)) {
          this.byRun.set(record.metadata.pipeline_id, { ...write, error: unsettled });
          if (this.byRun.size > this.limit) this.byRun.delete(this.byRun.keys().next().value as string);
        }
        throw unsettled;
      }
    }
  }

  /**
   * Settles the run's unconfirmed write before `input` is written. Returns it when it is stored
   * (`retried`: `input` is that checkpoint again, so nothing more is written); undefined when
   * there was none or it never happened, and `input` goes ahead as usual.
   */
  async settle(
    store: CheckpointStore,
    input: CheckedInput,
    fence: Lease | undefined,
  ): Promise<{ write: PendingWrite; retried: boolean } | undefined> {
    const { pipelineId } = input;
    const write = this.byRun.get(pipelineId);
    if (!write) return undefined;
    // Only a retry of the same checkpoint re-sends it: anything else is written after it, or
    // (when it never happened) in its place.
    const retried = isRetryOf(write, input);
    let outcome: Settled;
    try {
      outcome = await settleWrite(store, write, retried ? { fence } : undefined);
    } catch (error) {
      if (isAmbiguous(error)) throw error;
      this.byRun.delete(pipelineId);
      // A moved tip: the pending write never happened; the new one re-reads the run.
      if (error instanceof TipMovedError) return undefined;
      throw error;
    }
    this.byRun.delete(pipelineId);
    return outcome === "written" ? { write, retried } : undefined;
  }
}
