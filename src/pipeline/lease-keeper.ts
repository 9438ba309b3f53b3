/**
 * Holds a run's lease while the run executes: acquires it (or fails with `CAIRN_RUN_LOCKED`),
 * renews it in the background, and aborts the run as soon as it may have been lost.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { HistoryLostError, LeaseLostError, RunLockedError } from "../core/errors.js";
import type { CheckpointStore, Lease } from "../stores/types.js";
import { recordLeaseLoss } from "../telemetry/checkpoints.js";
import { isGoneLocalOwner } from "../util/local-owner.js";

/** A unique id for one runner: which host and process, plus randomness for several per process. */
export function newRunnerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
}

/** Keeps a lease alive until released; `signal` aborts if it is lost. */
export class LeaseKeeper {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private released = false;
  /** When the lease may have run out, on this process's monotonic clock: never another host's. */
  private validUntil: number;

  private constructor(
    private readonly store: CheckpointStore,
    /** The current lease; its expiry moves forward on every renewal. */
    public lease: Lease,
    private readonly ttlMs: number,
    validUntil: number,
    private readonly lastKnown: () => string | undefined,
  ) {
    this.validUntil = validUntil;
  }

  /**
   * Acquires the run's lease or throws {@link RunLockedError}. `lastKnown` names the run's newest
   * checkpoint the runner knows of: when the lease vanishes together with the run's data, the
   * loss is reported as {@link HistoryLostError} naming it, not as a lost lease.
   */
  static async acquire(
    store: CheckpointStore,
    pipelineId: string,
    ttlMs: number,
    owner = newRunnerId(),
    lastKnown: () => string | undefined = () => undefined,
  ) {
    const attempt = await store.acquireLease(pipelineId, owner, ttlMs);
    if (!attempt.acquired) {
      const { owner: holder, expiresAt } = attempt.holder;
      throw new RunLockedError(pipelineId, holder, expiresAt, { holderGone: isGoneLocalOwner(holder) });
    }
    // Not from before the call: a store may watch a lapsed lease for a TTL before taking it.
    // The lease's own expiry tells how much is left, never more than the TTL.
    const left = Math.min(ttlMs, attempt.lease.expiresAt.getTime() - Date.now());
    const keeper = new LeaseKeeper(store, attempt.lease, ttlMs, performance.now() + left, lastKnown);
    keeper.schedule();
    return keeper;
  }

  /** Aborted with a {@link LeaseLostError} when the lease was taken over or could not be renewed in time. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private schedule(): void {
    // Renew at a third of the TTL: two renewals can fail (a slow store) before the lease runs out.
    this.timer = setTimeout(
      () => {
        this.renewing = this.renew().finally(() => {
          this.renewing = undefined;
          if (!this.released && !this.controller.signal.aborted) this.schedule();
        });
      },
      Math.max(10, Math.floor(this.ttlMs / 3)),
    );
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    // Counted from before the call: the store wrote the renewal no earlier than this.
    const askedAt = performance.now();
    try {
      const renewed = await this.store.renewLease(this.lease, this.ttlMs);
      if (renewed) {
        this.lease = renewed;
        this.validUntil = askedAt + this.ttlMs;
      } else await this.loseOrReportLoss();
    } catch (error) {
      // A store hiccup is not a loss yet; it is once the lease may have expired.
      if (performance.now() >= this.validUntil) {
        this.lose(`could not renew before it expired: ${(error as Error).message}`);
      }
    }
  }

  /**
   * The lease is gone. When the run's head record and checkpoints went with it (a store that
   * restarted without its data), the run's history is lost: said so, naming what was known.
   */
  private async loseOrReportLoss(): Promise<void> {
    const { pipelineId } = this.lease;
    const known = this.lastKnown();
    const lost = new LeaseLostError(pipelineId, "the run's lease is no longer in the store");
    try {
      const gone =
        known !== undefined &&
        (await this.store.getRunHead(pipelineId)) === undefined &&
        (await this.store.getLatestCheckpoint(pipelineId)) === undefined;
      if (gone) {
        if (!this.controller.signal.aborted)
          this.controller.abort(new HistoryLostError(pipelineId, known, { cause: lost }));
        return;
      }
    } catch (error) {
      // Whether the data is gone cannot be told now; the lease is lost either way.
      this.lose(`it is no longer in the store (whether the run's data is: ${(error as Error).message})`);
      return;
    }
    this.lose("another runner took the run over");
  }

  /** Aborts the execution; `taken` when the lease was lost, not given up (it is counted). */
  private lose(detail: string, taken = true): void {
    if (this.controller.signal.aborted) return;
    if (taken) recordLeaseLoss(this.lease.pipelineId);
    this.controller.abort(new LeaseLostError(this.lease.pipelineId, detail));
  }

  /**
   * Releases the lease now and aborts the execution under it, which can write nothing more: the
   * process is about to exit, and another runner can resume the run at once.
   */
  async abandon(): Promise<void> {
    try {
      await this.release();
    } finally {
      this.lose("this runner gave it up to exit", false);
    }
  }

  /** Stops renewing and releases the lease (keeping its token in the store). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearTimeout(this.timer);
    await this.renewing;
    if (!this.controller.signal.aborted) await this.store.releaseLease(this.lease);
  }
}
