/**
 * Live updates. One watcher per console follows the store's change feed and hands each change
 * to every open page (server-sent events), so a hundred open tabs cost the store one watch.
 * A store without a feed (object storage) is polled by the page instead, at an interval the
 * page shows. The watcher survives an unreachable store (it retries from the last change it
 * handed on) and a trimmed feed (it tells the pages to reload and carries on from now).
 */

import { FeedTrimmedError } from "../core/errors.js";
import type { ChangeEvent } from "../feed/types.js";
import { hasFeed } from "../feed/watch.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { sleepUnlessAborted } from "../util/sleep.js";

/** How the page learns of changes. */
export type LiveMode = { mode: "feed" } | { mode: "poll"; intervalMs: number };

/** What a page receives: a change, or word that it must reload everything. */
export type LiveMessage =
  | { event: "change"; data: ChangeEvent }
  | { event: "resync"; data: { reason: string } };

const MAX_RETRY_MS = 30_000;

/** The console's one feed watcher and its subscribers. */
export class FeedHub {
  private readonly listeners = new Set<(message: LiveMessage) => void>();
  private readonly stop = new AbortController();
  private running: Promise<void> | undefined;
  /** The last error the watcher met, for the server's log. */
  lastError: unknown;

  constructor(
    private readonly manager: CheckpointManager,
    private readonly onChange: (change: ChangeEvent) => void = () => {},
    private readonly log: (text: string) => void = () => {},
  ) {}

  /** Starts watching when the store has a feed; the mode the pages should use. */
  async start(pollIntervalMs: number): Promise<LiveMode> {
    const store = await this.manager.getStore();
    if (!hasFeed(store)) return { mode: "poll", intervalMs: pollIntervalMs };
    // The cursor is taken before start() returns: a change made after the console said it is
    // listening is never missed.
    const since = await store.feedCursor();
    this.running = this.follow(since);
    return { mode: "feed" };
  }

  /** Adds a subscriber; returns its removal. */
  subscribe(listener: (message: LiveMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops the watcher. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.running;
  }

  private emit(message: LiveMessage): void {
    for (const listener of this.listeners) listener(message);
  }

  private async follow(since: string): Promise<void> {
    let cursor = since;
    let failures = 0;
    while (!this.stop.signal.aborted) {
      try {
        for await (const change of this.manager.watch({ since: cursor, signal: this.stop.signal })) {
          cursor = change.cursor;
          failures = 0;
          this.onChange(change);
          this.emit({ event: "change", data: change });
        }
      } catch (error) {
        if (this.stop.signal.aborted) return;
        this.lastError = error;
        if (error instanceof FeedTrimmedError) {
          this.log(
            `cairn ui: the change feed moved past this console's position; pages reload (${error.message})`,
          );
          const store = await this.manager.getStore().catch(() => undefined);
          const now = store && hasFeed(store) ? await store.feedCursor().catch(() => undefined) : undefined;
          if (now !== undefined) cursor = now;
          this.emit({ event: "resync", data: { reason: "feed trimmed" } });
          continue;
        }
        failures++;
        const wait = Math.min(MAX_RETRY_MS, 500 * 2 ** Math.min(failures, 6));
        this.log(`cairn ui: watching the store failed (${(error as Error).message}); retrying in ${wait} ms`);
        await sleepUnlessAborted(wait, this.stop.signal);
      }
    }
  }
}
