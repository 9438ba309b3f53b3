/**
 * The memory store's change feed: an in-process list with a bounded length, and wake-ups by
 * event, so a watcher in the same process sees a change as soon as it is stored.
 */
import { EventEmitter } from "node:events";
import { FeedTrimmedError } from "../../core/errors.js";
import { formatCursor, integerPosition, newFeedId } from "../../feed/cursor.js";
import type { ChangeType, StoreChange } from "../types.js";

/** Changes kept by default before the oldest are trimmed. */
export const DEFAULT_FEED_RETENTION = 100_000;

/** What a mutation records; the feed adds the cursor and the time. */
export type ChangeInput = Omit<StoreChange, "cursor" | "at"> & { type: ChangeType };

export class MemoryFeed {
  private readonly id = newFeedId();
  private readonly changes: StoreChange[] = [];
  /** Position of the newest change (0: none yet). */
  private last = 0;
  private readonly events = new EventEmitter().setMaxListeners(0);

  constructor(private readonly retention: number) {}

  /** Appends a change; called synchronously with the mutation it records. */
  record(input: ChangeInput): void {
    this.last++;
    this.changes.push({ ...input, cursor: formatCursor(this.id, this.last), at: new Date().toISOString() });
    // Trimmed in batches: one splice per hundred changes instead of a shift per change.
    if (this.changes.length > this.retention + 100)
      this.changes.splice(0, this.changes.length - this.retention);
    this.events.emit("change");
  }

  /** Changes after `since`, oldest first. */
  read(since: string | undefined, limit: number): StoreChange[] {
    const first = this.last - this.changes.length + 1;
    let start = 0;
    if (since !== undefined) {
      const position = integerPosition("memory", this.id, since);
      if (position > this.last)
        throw new FeedTrimmedError(
          "memory",
          since,
          "the cursor is ahead of the feed (this store was recreated)",
        );
      if (position < first - 1)
        throw new FeedTrimmedError("memory", since, `changes up to position ${first - 1} were trimmed`);
      start = position - first + 1;
    }
    return this.changes.slice(start, start + limit).map((change) => ({ ...change }));
  }

  cursor(): string {
    return formatCursor(this.id, this.last);
  }

  /** Resolves true at the next change (or at once if one already follows `since`). */
  wait(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (integerPosition("memory", this.id, since) < this.last) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (woken: boolean) => {
        clearTimeout(timer);
        this.events.off("change", onChange);
        signal?.removeEventListener("abort", onAbort);
        resolve(woken);
      };
      const onChange = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.events.on("change", onChange);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
