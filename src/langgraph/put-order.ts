/**
 * The order of a saver's writes. LangGraph does not wait for a put before it sends the next put
 * or the checkpoint's writes, yet a record must be written after the record it links to: each
 * put waits for the put of its parent, and writes for the put of their checkpoint.
 */

/** `promise`, marked handled: it is awaited later, after the write it waits for. */
export function settledLater<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** Puts in progress by cairn checkpoint id, and how later calls wait for them. */
export class PutOrder {
  private readonly inflight = new Map<string, Promise<unknown>>();

  /** `isStored`: whether this process knows a checkpoint is stored (no wait for it then). */
  constructor(private readonly isStored: (checkpointId: string) => boolean) {}

  /**
   * Runs `work` once the put of checkpoint `after` (cairn id) running in this saver, if any, has
   * settled; registers `work` as the put of `id` when given. Calls keep LangGraph's call order.
   */
  sequenced<T>(after: string | null, id: string | undefined, work: () => Promise<T>): Promise<T> {
    const before = after === null ? undefined : this.inflight.get(after);
    const run = before ? before.then(work, work) : work();
    if (id !== undefined) {
      this.inflight.set(id, run);
      const clear = () => {
        if (this.inflight.get(id) === run) this.inflight.delete(id);
      };
      run.then(clear, clear);
    }
    return run;
  }

  /**
   * Runs `work` (writes of checkpoint `checkpointId`) once that checkpoint's put has settled. With
   * durability "async" LangGraph may send a checkpoint's writes before it calls `put` for it: the
   * put comes once the run's earlier puts are done, so those are waited for, a few rounds at most.
   * Writes of a checkpoint that never comes are stored unlinked, naming it.
   */
  async afterPut<T>(runId: string, checkpointId: string, work: () => Promise<T>): Promise<T> {
    for (let round = 0; round < 8; round++) {
      const own = this.inflight.get(checkpointId);
      if (own) {
        await own.catch(() => {});
        break;
      }
      if (this.isStored(checkpointId)) break;
      const earlier = [...this.inflight].filter(([id]) => id.startsWith(`${runId}.`)).map(([, put]) => put);
      if (earlier.length === 0) break;
      await Promise.allSettled(earlier);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return work();
  }
}
