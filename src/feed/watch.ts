/**
 * `watch`: a store's change feed as an async iteration. Reads pages of changes after a cursor,
 * yields the ones the filters keep, and waits on the store (pushed where it can push) when it has
 * read everything. The cursor also moves over filtered-out changes, so a watcher restarted from
 * the last cursor it delivered does not re-read them.
 */
import { InvalidArgumentError, StoreUnsupportedError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { assertKnownOptions } from "../core/options.js";
import type { CheckpointStore } from "../stores/types.js";
import type { ChangeEvent, WatchOptions } from "./types.js";

/** A change as a plain object with every key present (`null` when absent), the cursor last: what `cairn watch --json` prints and the console sends. */
export function changeRecord(change: ChangeEvent): Record<string, unknown> {
  return {
    type: change.type,
    pipelineId: change.pipelineId,
    pipelineName: change.pipelineName,
    checkpointId: change.checkpointId ?? null,
    sequence: change.sequence ?? null,
    at: change.at,
    cursor: change.cursor,
  };
}

/** Changes read per page. */
export const WATCH_PAGE = 1000;
/** Longest single wait on the store; the wait is re-armed after it (a store may also wake early). */
export const WATCH_WAIT_MS = 30_000;

const WATCH_OPTIONS = [
  "pipelineId",
  "name",
  "since",
  "fromStart",
  "signal",
] as const satisfies readonly (keyof WatchOptions)[];

/** A store with the three feed methods. */
export type FeedStore = CheckpointStore &
  Required<Pick<CheckpointStore, "readChanges" | "feedCursor" | "waitForChanges">>;

/** True when the store serves a change feed. */
export function hasFeed(store: CheckpointStore): store is FeedStore {
  return (
    typeof store.readChanges === "function" &&
    typeof store.feedCursor === "function" &&
    typeof store.waitForChanges === "function"
  );
}

/** The typed error for watching a store that has no change feed (object storage). */
export function noFeedError(store: CheckpointStore): StoreUnsupportedError {
  return new StoreUnsupportedError(
    store.strategy,
    store.location,
    "a change feed",
    "watch a file, sqlite, postgres, redis or memory store; replicate from object storage polls",
    "have",
  );
}

function checkOptions(options: WatchOptions): void {
  if (typeof options !== "object" || options === null)
    throw new InvalidArgumentError("watch options must be an object");
  assertKnownOptions("watch", options, WATCH_OPTIONS);
  if (options.pipelineId !== undefined) assertValidName("pipelineId", options.pipelineId);
  if (options.name !== undefined) assertValidName("pipelineName", options.name);
  if (options.since !== undefined && (typeof options.since !== "string" || options.since === ""))
    throw new InvalidArgumentError("since must be a cursor: the cursor of a change watch delivered");
  if (options.fromStart !== undefined && typeof options.fromStart !== "boolean")
    throw new InvalidArgumentError("fromStart must be a boolean");
}

/**
 * Watches `store`'s change feed: every change after `since` (else from the oldest retained with
 * `fromStart`, else from now), filtered by run and pipeline name, until `signal` aborts or the
 * caller stops iterating (either ends the iteration without an error). `FeedTrimmedError` when
 * the feed no longer holds the changes after the cursor; `StoreUnsupportedError` for a store
 * without a feed.
 */
export function watchStore(
  store: CheckpointStore,
  options: WatchOptions = {},
): AsyncGenerator<ChangeEvent, void> {
  return watchOpened(async () => store, options);
}

/**
 * {@link watchStore} over a store opened on first use (the manager's). `stopped` is aborted, and
 * so a pending wait ends at once, when the caller returns from the iteration early (`break` in a
 * `for await`, or `return()` while a `next()` is still waiting).
 */
export function watchOpened(
  open: () => Promise<CheckpointStore>,
  options: WatchOptions = {},
  stopped: AbortController = new AbortController(),
): AsyncGenerator<ChangeEvent, void> {
  checkOptions(options);
  const iteration = changes(open, options, stopped);
  // An async generator queues return() behind a pending next(): aborting first ends that wait.
  const finish = iteration.return.bind(iteration);
  const fail = iteration.throw.bind(iteration);
  iteration.return = (value) => {
    stopped.abort();
    return finish(value);
  };
  iteration.throw = (error) => {
    stopped.abort();
    return fail(error);
  };
  return iteration;
}

async function* changes(
  open: () => Promise<CheckpointStore>,
  options: WatchOptions,
  stopped: AbortController,
): AsyncGenerator<ChangeEvent, void> {
  const { signal, pipelineId, name } = options;
  if (signal?.aborted) return;
  const onAbort = () => stopped.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const store = await open();
    if (!hasFeed(store)) throw noFeedError(store);
    let cursor: string | undefined =
      options.since ?? (options.fromStart ? undefined : await store.feedCursor());
    while (!stopped.signal.aborted) {
      // From the start of an empty feed: the feed's start cursor, taken before the read that
      // found nothing, is one no change can precede (a change committed meanwhile fills the page).
      const start = cursor === undefined ? await store.feedCursor() : undefined;
      const page = await store.readChanges(cursor, WATCH_PAGE);
      for (const change of page) {
        if (stopped.signal.aborted) return;
        cursor = change.cursor;
        if (pipelineId !== undefined && change.pipelineId !== pipelineId) continue;
        if (name !== undefined && change.pipelineName !== name) continue;
        yield change;
      }
      if (page.length === WATCH_PAGE) continue;
      cursor ??= start as string;
      await store.waitForChanges(cursor, WATCH_WAIT_MS, stopped.signal);
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    stopped.abort();
  }
}
