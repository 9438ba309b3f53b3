/**
 * Writing a run's checkpoints as one chain: each write is conditioned on the run's tip (the
 * checkpoint this process wrote last, or the newest readable one), re-chains when another writer
 * moved it, settles writes the store could not confirm, and never forks the run.
 */
import { CheckpointCorruptError, HistoryLostError, LeaseLostError, TipMovedError } from "../core/errors.js";
import { parseBody } from "../core/formats.js";
import type { StoredMetadata } from "../core/record.js";
import type { CheckpointStore, Lease } from "../stores/types.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";
import { KeyedLock } from "../util/fs-util.js";
import { UnsettledWrites } from "./ambiguous-write.js";
import { type CheckedInput, sealChild } from "./input.js";
import { newestReadable } from "./runs.js";

/** Attempts at a write whose tip keeps moving, before the writer gets `CAIRN_CONFLICT`. */
const TIP_ATTEMPTS = 8;
/** Runs whose last checkpoint a manager remembers; a run beyond them reads its parent once. */
const MAX_TIPS = 1000;

/** The parent of a run's next checkpoint and the outputs it already stored. */
interface Tip {
  parent: StoredMetadata | undefined;
  refs: ReadonlySet<string>;
}

/** True when the store holds `checkpointId` but cannot parse it. */
async function isUnreadable(store: CheckpointStore, checkpointId: string): Promise<boolean> {
  try {
    await store.getCheckpoint(checkpointId);
    return false;
  } catch (error) {
    if (error instanceof CheckpointCorruptError) return true;
    throw error;
  }
}

/**
 * After a refused write to a run this manager wrote to: when the store holds nothing of the run
 * any more, the history is gone, and re-chaining from nothing would fork it silently.
 */
async function assertHistoryKept(
  store: CheckpointStore,
  pipelineId: string,
  expected: string,
  error: unknown,
): Promise<void> {
  const gone =
    error instanceof TipMovedError
      ? error.actual === null
      : error instanceof LeaseLostError && (await store.getLatestCheckpoint(pipelineId)) === undefined;
  if (gone) throw new HistoryLostError(pipelineId, expected, { cause: error });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One manager's writer: the per-run tip cache, the per-run write queue, the unsettled writes. */
export class ChainWriter {
  private readonly writes = new KeyedLock();
  /**
   * Per run, the last checkpoint written here: the parent of the next write, which then need not
   * read it back. Safe because every store checks the expected tip atomically with the write.
   */
  private readonly tips = new Map<string, Tip>();
  /** Per run, a write the store could not confirm; the next write to the run settles it first. */
  private readonly unsettled = new UnsettledWrites(MAX_TIPS);

  constructor(private readonly clock: () => Date) {}

  /**
   * Writes `checked` as the run's next checkpoint and returns its id. With `expectedTip`, only as
   * the child of that checkpoint: `TipMovedError` when the run's tip is another, never re-chained
   * (the content was read from that tip).
   */
  write(
    store: AtRestStore,
    checked: CheckedInput,
    options: { fence?: Lease; expectedTip?: string },
  ): Promise<string> {
    const { pipelineId } = checked;
    return this.writes.run(pipelineId, async () => {
      // A write of this run the store could not confirm is settled first: see `ambiguous-write.ts`.
      const settled = await this.unsettled.settle(store, checked, options.fence);
      if (settled) {
        this.rememberTip(pipelineId, { parent: settled.write.record.metadata, refs: settled.write.refs });
        if (settled.retried) return settled.write.record.metadata.checkpoint_id;
      }
      // The id the write is conditioned on, when it is not the parent's: an unreadable newest entry.
      let unreadableTip: string | undefined;
      for (let attempt = 1; ; attempt++) {
        // The checkpoint written here last is the parent unless the store says the tip moved:
        // every write is conditional on the tip it chains to, so two writers never fork a run.
        // A pinned write reads its parent from the store: it must be exactly the checkpoint named.
        const cached = options.expectedTip === undefined ? this.tips.get(pipelineId) : undefined;
        const tip = cached ?? (await this.readTip(store, pipelineId));
        // A run's first checkpoint reads its key record afresh: never a key a deleted run left.
        const key = await store.writeKey(pipelineId, tip.parent === undefined);
        const { record, outputs } = sealChild(checked, tip.parent, this.clock(), key);
        const refs = new Set([...checked.content.outputs.values()].map((o) => o.addressIn(key)));
        const pinned = options.expectedTip;
        if (pinned !== undefined && tip.parent?.checkpoint_id !== pinned) {
          this.tips.delete(pipelineId);
          const actual = tip.parent?.checkpoint_id ?? null;
          throw new TipMovedError(record.metadata.checkpoint_id, pipelineId, pinned, actual);
        }
        try {
          // Outputs an earlier checkpoint of the run already stored are referenced, not rewritten.
          await this.unsettled.put(
            store,
            {
              record,
              outputs: outputs.filter((o) => !tip.refs.has(o.hash)),
              expectedTip: unreadableTip ?? tip.parent?.checkpoint_id ?? null,
              refs,
              key,
            },
            options.fence,
          );
        } catch (error) {
          this.tips.delete(pipelineId);
          if (cached?.parent) await assertHistoryKept(store, pipelineId, cached.parent.checkpoint_id, error);
          if (!(error instanceof TipMovedError) || pinned !== undefined) throw error;
          // The newest entry cannot be read (a corrupt record): chain to the newest readable one,
          // still conditioned on that entry, so a writer that comes in between is still refused.
          unreadableTip =
            error.actual !== null && (await isUnreadable(store, error.actual)) ? error.actual : undefined;
          // Someone else wrote to the run: read it again and chain after their checkpoint.
          if (attempt < TIP_ATTEMPTS) {
            await sleep(unreadableTip ? 0 : Math.random() * 5 * attempt);
            continue;
          }
          throw new TipMovedError(
            record.metadata.checkpoint_id,
            pipelineId,
            error.expected,
            error.actual,
            `gave up after ${TIP_ATTEMPTS} attempts: other writers keep writing to the run`,
          );
        }
        this.rememberTip(pipelineId, { parent: record.metadata, refs });
        return record.metadata.checkpoint_id;
      }
    });
  }

  /** Forgets what this writer knows of a run (deleted, or resumed behind its newest checkpoint). */
  forget(pipelineId: string): void {
    this.tips.delete(pipelineId);
  }

  /** The checkpoint this writer wrote last to the run, if it remembers one. */
  lastWritten(pipelineId: string): string | undefined {
    return this.tips.get(pipelineId)?.parent?.checkpoint_id;
  }

  /** The data size of `checkpointId` if it is the run's checkpoint this writer wrote last. */
  writtenSize(pipelineId: string, checkpointId: string): number | undefined {
    const parent = this.tips.get(pipelineId)?.parent;
    return parent?.checkpoint_id === checkpointId ? parent.data_size : undefined;
  }

  /** Resolves once no write is in progress. */
  idle(): Promise<void> {
    return this.writes.idle();
  }

  private rememberTip(pipelineId: string, tip: Tip): void {
    // Re-inserted so the map keeps runs in order of their last write; the oldest go first.
    this.tips.delete(pipelineId);
    this.tips.set(pipelineId, tip);
    if (this.tips.size > MAX_TIPS) this.tips.delete(this.tips.keys().next().value as string);
  }

  /** The run's newest readable checkpoint, as the parent of the next write. */
  private async readTip(store: AtRestStore, pipelineId: string): Promise<Tip> {
    const newest = await newestReadable(store, pipelineId);
    if (!newest) return { parent: undefined, refs: new Set() };
    // Only outputs the store still holds count as stored: the parent may reference one that was
    // deleted (the reason a resume fell back past it), and a child must not reference it unstored.
    const stored = new Set(await store.listOutputHashes(pipelineId));
    const refs = Object.values(parseBody(newest, newest.body).output_refs);
    return { parent: newest, refs: new Set(refs.filter((hash) => stored.has(hash))) };
  }
}
