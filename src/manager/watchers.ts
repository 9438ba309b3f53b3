/** The watches under way of one manager, so that `close()` ends them before it closes the store. */
import type { ChangeEvent, WatchOptions } from "../feed/types.js";
import { watchOpened } from "../feed/watch.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";

/** One abort controller per watch under way. */
export class Watchers {
  private readonly running = new Set<AbortController>();

  /** Starts a watch (`CheckpointManager.watch`) that {@link abortAll} ends. */
  start(getStore: () => Promise<AtRestStore>, options: WatchOptions): AsyncGenerator<ChangeEvent, void> {
    const stopped = new AbortController();
    this.running.add(stopped);
    stopped.signal.addEventListener("abort", () => this.running.delete(stopped), { once: true });
    try {
      return watchOpened(getStore, options, stopped);
    } catch (error) {
      stopped.abort();
      throw error;
    }
  }

  /** Ends every watch under way. */
  abortAll(): void {
    for (const watcher of this.running) watcher.abort();
  }
}
