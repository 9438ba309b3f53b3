/**
 * The checkpoint writes of one execution, one at a time in the order they were asked for, so the
 * run's chain stays linear whichever durability mode is on. `sync` writes wait for the write;
 * `async` writes are queued and the execution goes on: the first write error is kept and thrown
 * at the next stage boundary (`check()`), and every write after a failed one is dropped, since
 * its record would claim progress the chain does not hold.
 */
import type { CreateCheckpointInput } from "../core/types.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { Lease } from "../stores/types.js";

/** How an execution makes its progress durable (Pipeline option `durability`). */
export type Durability = "sync" | "async" | "exit";

/** What a written checkpoint reports back: its id and how long the write took (ms). */
export type OnWritten = (checkpointId: string, writeMs: number) => void;

/** Serialised checkpoint writes under the run's lease. */
export class CheckpointWriter {
  private queue: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  private pending = 0;

  constructor(
    private readonly manager: CheckpointManager,
    private readonly lease: () => Lease | undefined,
  ) {}

  /** Writes queued and not yet done. */
  get inFlight(): number {
    return this.pending;
  }

  /** Writes after every queued write and waits for it; rejects with the store's error. */
  async write(input: CreateCheckpointInput, onWritten: OnWritten): Promise<string> {
    await this.drain();
    return this.perform(input, onWritten);
  }

  /** Queues a write and returns at once; its error surfaces through {@link check}. */
  enqueue(input: CreateCheckpointInput, onWritten: OnWritten): void {
    this.pending++;
    this.queue = this.queue.then(async () => {
      try {
        if (this.failure === undefined) await this.perform(input, onWritten);
      } catch (error) {
        this.failure = { error };
      } finally {
        this.pending--;
      }
    });
  }

  /** Throws the first error of a queued write, if one failed. */
  check(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }

  /** Waits for every queued write, then throws the first error, if any. */
  async drain(): Promise<void> {
    await this.queue;
    this.check();
  }

  /** Waits for every queued write without throwing: the caller is already failing for another reason. */
  async settle(): Promise<unknown> {
    await this.queue;
    return this.failure?.error;
  }

  private async perform(input: CreateCheckpointInput, onWritten: OnWritten): Promise<string> {
    // The fence is read when the write starts: a renewal while it waited in the queue counts.
    const fence = this.lease();
    const began = performance.now();
    const id = await this.manager.createCheckpoint(input, fence ? { fence } : {});
    onWritten(id, performance.now() - began);
    return id;
  }
}
