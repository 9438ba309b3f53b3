/**
 * `waitForChanges` of the SQLite store. SQLite cannot push, so a waiter watches the database's
 * folder with `fs.watch` (a commit writes the WAL, or the database file and its journal outside
 * WAL mode), is woken at once by writes through the same store, and polls every
 * {@link FEED_POLL_MS} in case the watch misses an event (network file systems, a watch limit
 * reached). Every wake-up is confirmed by reading the feed, so callers rarely wake for nothing.
 */
import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";

/** How often a waiter reads the feed when no file event woke it, in milliseconds. */
export const FEED_POLL_MS = 250;

// A WAL write is seen by the watch before the commit is visible to readers (the writer syncs,
// then publishes the frame in the shared index), so a file event is re-checked a little later.
const SETTLE_MS: readonly number[] = [0, 2, 5, 10, 20, 35, 60, 100, 160];

/** Waits for feed changes on one database. */
export interface FeedWaiter {
  /** Resolves true once `hasChangesAfter(since)` holds; false on timeout, abort or `close()`. */
  wait(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Wakes this store's waiters to re-check (after a commit through the same store). */
  notify(): void;
  /** Ends every pending wait with false. */
  close(): void;
}

/**
 * A waiter for the database file at `path` (undefined for an in-memory database: only the
 * same store's writes and the poll wake it). `hasChangesAfter` reads the feed; its errors
 * reject the wait.
 */
export function createFeedWaiter(
  path: string | undefined,
  hasChangesAfter: (since: string) => boolean,
  pollMs = FEED_POLL_MS,
): FeedWaiter {
  const pending = new Set<{ check(): void; cancel(): void }>();
  // The database's own files: `x.db`, `x.db-wal`, `x.db-journal` (`-shm` is mapped memory,
  // whose writes no watch reports).
  const name = path === undefined ? undefined : basename(path);
  const ours = (file: string | Buffer | null) =>
    file === null || String(file) === name || String(file).startsWith(`${name}-`);

  function wait(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      let done = false;
      let watcher: FSWatcher | undefined;
      let settle: NodeJS.Timeout[] = [];
      const timers: NodeJS.Timeout[] = [];
      const finish = (value: boolean, error?: unknown) => {
        if (done) return;
        done = true;
        watcher?.close();
        for (const timer of [...timers, ...settle]) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        pending.delete(entry);
        if (error === undefined) resolve(value);
        else reject(error);
      };
      const check = () => {
        if (done) return;
        try {
          if (hasChangesAfter(since)) finish(true);
        } catch (error) {
          finish(false, error);
        }
      };
      const onAbort = () => finish(false);
      const entry = { check, cancel: () => finish(false) };
      const onFileEvent = () => {
        for (const timer of settle) clearTimeout(timer);
        settle = SETTLE_MS.map((ms) => setTimeout(check, ms));
      };

      // Armed before the first read of the feed: a commit after that read is still seen.
      if (path !== undefined) {
        try {
          watcher = watch(dirname(path), (_event, file) => {
            if (ours(file)) onFileEvent();
          });
          // A watch that fails later (the folder removed, a watch limit) leaves the poll.
          watcher.on("error", () => {
            watcher?.close();
            watcher = undefined;
          });
        } catch {
          // No watch on this file system: the poll below still finds every change.
          watcher = undefined;
        }
      }
      pending.add(entry);
      signal?.addEventListener("abort", onAbort, { once: true });
      timers.push(setTimeout(() => finish(false), timeoutMs));
      const poll = setInterval(check, pollMs);
      timers.push(poll);
      check();
    });
  }

  return {
    wait,
    notify() {
      for (const entry of [...pending]) entry.check();
    },
    close() {
      for (const entry of [...pending]) entry.cancel();
    },
  };
}
