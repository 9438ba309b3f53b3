/**
 * `replicate`: keeps a target store in step with a source store of any strategy, verified, with
 * no keys (records are copied as stored, beneath the at-rest layer). Phases:
 * 1. sync: the source's feed cursor is read, then every run is compared in full (`sync.ts`), then
 *    the cursor is saved in the target (`state.ts`). Done the first time, and after a trimmed feed.
 * 2. catch-up / follow: the feed is applied from the saved cursor (`apply.ts`), every change
 *    idempotently; without `follow` up to the feed's end as it was at the start, with `follow`
 *    until the signal aborts, waiting on the feed. A source without a feed is compared in full
 *    every `pollMs` instead.
 * A store that becomes unavailable while following is retried with backoff, never skipped past.
 */

import {
  FeedTrimmedError,
  InvalidArgumentError,
  InvalidConfigError,
  StoreUnavailableError,
  StoreUnsupportedError,
} from "../core/errors.js";
import { assertKnownOptions } from "../core/options.js";
import { rawStore } from "../manager/sealed-transfer.js";
import type { GuardedStore } from "../stores/guarded-store.js";
import { openStore, type StoreSpec } from "../stores/registry.js";
import type { CheckpointStore, StoreChange } from "../stores/types.js";
import { sleepUnlessAborted } from "../util/sleep.js";
import { RunApplier } from "./apply.js";
import { Replication, settleLimit } from "./context.js";
import { loadState, type ReplicaFilters, saveState, stateKey } from "./state.js";
import { syncAll } from "./sync.js";
import type { ReplicateOptions, ReplicationReport } from "./types.js";

const OPTIONS = [
  "from",
  "to",
  "follow",
  "pipelineId",
  "name",
  "keepDeleted",
  "signal",
  "pollMs",
  "onProgress",
  "onProblem",
] as const satisfies readonly (keyof ReplicateOptions)[];

/** Full-compare interval of a follow on a source without a feed. */
const DEFAULT_POLL_MS = 5000;
/** Changes read from the feed at a time. */
const BATCH = 1000;
/** Runs whose changes are applied at the same time (each run's in order). */
const APPLY_CONCURRENCY = 16;
/** The cursor is saved in the target at most this often while following. */
const SAVE_MS = 1000;
/** Longest wait on the feed before it is read again anyway (and progress reported while idle). */
const WAIT_MS = 1000;
/** Backoff while a store is unavailable: from the first, doubling, up to the last. */
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 10_000;

/**
 * Copies every run and checkpoint (or the filtered ones) from `from` to `to`, verifying each
 * record and output first, and with `follow` keeps doing so from the source's change feed until
 * `signal` aborts. Resolves with what it did; its position is kept in the target.
 */
export async function replicate(options: ReplicateOptions): Promise<ReplicationReport> {
  checkOptions(options);
  const opened: GuardedStore[] = [];
  try {
    // The source is only read: read-only, a mistyped location is StoreNotFoundError, not a new
    // empty store (whose first full sync would delete every run of the target).
    const source = await open(options.from, opened, true);
    const target = await open(options.to, opened, false);
    // Two opens of one location (or of one named memory store) are the same store.
    const same =
      source.inner === target.inner || (source.location === target.location && source.location !== "memory:");
    if (same)
      throw new InvalidArgumentError(
        `replicate: the source and the target are the same store (${source.location})`,
      );
    const r = new Replication(source, target, options);
    await run(r);
    return r.report;
  } finally {
    // Only what this call opened: a store passed in open stays open for its owner.
    await Promise.all(opened.map((store) => store.close()));
  }
}

function checkOptions(options: ReplicateOptions): void {
  if (options === null || typeof options !== "object")
    throw new InvalidArgumentError("replicate needs options { from, to }");
  assertKnownOptions("replicate", options, OPTIONS);
  if (options.from === undefined || options.to === undefined)
    throw new InvalidArgumentError("replicate needs a source (from) and a target (to)");
  const { pollMs } = options;
  if (pollMs !== undefined && !(Number.isSafeInteger(pollMs) && pollMs > 0))
    throw new InvalidArgumentError("replicate: pollMs must be a positive integer");
  for (const field of ["pipelineId", "name"] as const) {
    const value = options[field];
    if (value !== undefined && (typeof value !== "string" || value.length === 0))
      throw new InvalidArgumentError(`replicate: ${field} must be a non-empty string`);
  }
}

/** The raw store (beneath the at-rest layer) of a spec; what it had to open is added to `opened`. */
async function open(spec: StoreSpec, opened: GuardedStore[], readOnly: boolean): Promise<GuardedStore> {
  if (typeof spec === "object" && spec !== null && "putCheckpoint" in spec)
    return openStore(rawStore(spec as CheckpointStore));
  const store = await openStore(spec, readOnly ? { readOnly: true } : undefined);
  opened.push(store);
  return store;
}

/** True when the store serves a change feed. */
function hasFeed(store: CheckpointStore): boolean {
  return (
    typeof store.readChanges === "function" &&
    typeof store.feedCursor === "function" &&
    typeof store.waitForChanges === "function"
  );
}

/**
 * True for the errors of a read-only source's feed that is not there: a sqlite/postgres schema
 * from before the feed (InvalidConfigError asking for `cairn migrate`), a redis prefix without
 * one (StoreUnsupportedError). Such a source is replicated as one without a feed.
 */
function isMissingFeed(error: unknown): boolean {
  return error instanceof InvalidConfigError || error instanceof StoreUnsupportedError;
}

/** The replication's steps, with the cursor and how it is saved. */
class Runner {
  private readonly key: string;
  private readonly filters: ReplicaFilters;
  /** The cursor everything before which the target holds; saved when `dirty`. */
  cursor: string | undefined;
  private dirty = false;
  private savedAt = 0;
  private backoffMs = BACKOFF_FIRST_MS;
  /** Set when the source turned out to serve no feed: it is compared in full (and polled) instead. */
  feedless: boolean;

  constructor(readonly r: Replication) {
    this.filters = { pipelineId: r.options.pipelineId, name: r.options.name };
    this.key = stateKey(r.source, this.filters);
    this.feedless = !hasFeed(r.source);
  }

  /** Runs a feed call of the source; undefined (and `feedless` set, reported once) when it has none. */
  async feedCall<T>(call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      if (!isMissingFeed(error)) throw error;
      this.feedless = true;
      this.r.problem(
        {
          kind: "no-feed",
          message: `${(error as Error).message}; comparing every run instead${this.follow ? ", every pollMs" : ""}`,
        },
        "no-feed",
      );
      return undefined;
    }
  }

  get follow(): boolean {
    return this.r.options.follow === true;
  }

  async load(): Promise<string | undefined> {
    return (await loadState(this.r.target, this.key, this.r.source))?.cursor ?? undefined;
  }

  async save(force = false): Promise<void> {
    if (!this.dirty || (!force && Date.now() - this.savedAt < SAVE_MS)) return;
    await saveState(this.r.target, this.key, this.r.source, this.filters, this.cursor);
    this.dirty = false;
    this.savedAt = Date.now();
    this.r.report.cursor = this.cursor;
  }

  /** Moves the cursor past a change applied (or a sync done), to be saved. */
  advance(cursor: string | undefined): void {
    this.cursor = cursor;
    this.dirty = true;
  }

  /**
   * Runs `step`; while following, a store that is unavailable is reported and `step` tried again
   * after a backoff (250 ms doubling to 10 s, reset by a success). Undefined when aborted.
   */
  async retrying<T>(step: () => Promise<T>): Promise<T | undefined> {
    const r = this.r;
    const phase = r.phase;
    for (;;) {
      if (r.aborted) return undefined;
      try {
        const result = await step();
        this.backoffMs = BACKOFF_FIRST_MS;
        if (r.phase === "retrying") r.enter(phase);
        return result;
      } catch (error) {
        if (!(error instanceof StoreUnavailableError) || !this.follow) throw error;
        r.problem({
          kind: "outage",
          message: `${error.message}; retrying in ${this.backoffMs} ms`,
        });
        r.enter("retrying");
        await sleepUnlessAborted(this.backoffMs, r.options.signal);
        this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
      }
    }
  }

  /** A full sync; the cursor read before it is saved once it completes. False when aborted. */
  async sync(): Promise<boolean> {
    const done = await this.retrying(async () => {
      const { source } = this.r;
      const start = this.feedless ? undefined : await this.feedCall(async () => source.feedCursor?.());
      const outcome = await syncAll(this.r);
      if (outcome === "aborted") return false;
      if (outcome === "refused") {
        // Not saved: until the source holds runs, every call compares (and reports) again; a
        // follow goes on from here, and saves the cursor once it applies a change.
        this.cursor = start;
        return true;
      }
      this.advance(start);
      await this.save(true);
      return true;
    });
    return done === true;
  }

  /**
   * Applies the feed from the cursor: up to the change at `end` (a catch-up) or, without `end`,
   * until aborted (waiting on the feed when it is empty). A trimmed cursor means a full sync.
   */
  async feed(end: string | undefined): Promise<void> {
    const r = this.r;
    const source = r.source as Required<Pick<CheckpointStore, "readChanges" | "waitForChanges">> &
      GuardedStore;
    r.enter("follow");
    for (;;) {
      if (r.aborted) return;
      const outcome = await this.retrying(async () => {
        try {
          return await this.applyBatch(source, end);
        } catch (error) {
          if (!(error instanceof FeedTrimmedError)) throw error;
          r.problem({ kind: "trimmed", message: `${error.message}; comparing every run again` });
          return "trimmed" as const;
        }
      });
      if (outcome === undefined || outcome === "feedless") return;
      if (outcome === "trimmed") {
        if (!(await this.sync())) return;
        if (end !== undefined) return;
        r.enter("follow");
        continue;
      }
      if (outcome === "end") return;
      if (outcome === "empty") {
        r.lagSeconds = 0;
        r.behind = 0;
        r.progress();
        if (end !== undefined) return;
        const cursor = this.cursor as string;
        await this.retrying(() => source.waitForChanges(cursor, WAIT_MS, r.options.signal));
        if (this.feedless) return;
      }
    }
  }

  /**
   * Reads and applies one batch of changes: each run's changes in order, different runs in
   * parallel. The cursor moves past the batch once all of it is applied (an abort or an error
   * half-way leaves it where it was: what was applied is applied again, harmlessly).
   */
  private async applyBatch(
    source: Required<Pick<CheckpointStore, "readChanges">>,
    end: string | undefined,
  ): Promise<"empty" | "end" | "more" | "feedless"> {
    const r = this.r;
    let read: StoreChange[];
    try {
      // Only the source's own feed read: a target's error is never taken for a missing feed.
      const got = await this.feedCall(() => source.readChanges(this.cursor, BATCH));
      if (got === undefined) return "feedless";
      read = got;
    } catch (error) {
      // A saved cursor this store never wrote (edited, or from another format): as good as trimmed.
      if (!(error instanceof InvalidArgumentError) || this.cursor === undefined) throw error;
      throw new FeedTrimmedError(r.source.strategy, this.cursor, error.message);
    }
    if (read.length === 0) {
      await this.save(true);
      return "empty";
    }
    const stop = end === undefined ? -1 : read.findIndex((change) => change.cursor === end);
    const changes = stop >= 0 ? read.slice(0, stop + 1) : read;
    const runs = new Map<string, number[]>();
    for (const [i, change] of changes.entries()) {
      const list = runs.get(change.pipelineId) ?? [];
      list.push(i);
      runs.set(change.pipelineId, list);
    }
    const next = new Map<string, number>();
    const lag = () => this.lag(changes, runs, next);
    lag();
    await settleLimit([...runs], APPLY_CONCURRENCY, async ([pipelineId, indexes]) => {
      const own = indexes.map((i) => changes[i] as StoreChange);
      await new RunApplier(r, pipelineId).applyAll(own, (n) => {
        next.set(pipelineId, n);
        lag();
      });
    });
    if (r.aborted) return "end";
    this.advance((changes.at(-1) as StoreChange).cursor);
    await this.save(stop >= 0);
    return stop >= 0 ? "end" : "more";
  }

  /** Lag: the time of the oldest change of the batch not applied yet, and how many are not. */
  private lag(changes: readonly StoreChange[], runs: Map<string, number[]>, next: Map<string, number>): void {
    let oldest = Number.POSITIVE_INFINITY;
    let pending = 0;
    for (const [pipelineId, indexes] of runs) {
      const done = next.get(pipelineId) ?? 0;
      pending += indexes.length - done;
      if (done < indexes.length) oldest = Math.min(oldest, indexes[done] as number);
    }
    const at =
      oldest === Number.POSITIVE_INFINITY ? Number.NaN : Date.parse((changes[oldest] as StoreChange).at);
    this.r.lagSeconds = Number.isNaN(at) ? 0 : Math.max(0, (Date.now() - at) / 1000);
    this.r.behind = pending;
    this.r.progress();
  }
}

/** The whole replication, as the module comment says. */
async function run(r: Replication): Promise<void> {
  const runner = new Runner(r);
  try {
    await steps(r, runner);
  } catch (error) {
    // What was applied is kept if the target takes it; if not, those changes are applied again
    // next time (idempotently). The error that stopped the replication is the one reported.
    await runner.save(true).catch(() => undefined);
    throw error;
  }
  // At the end, or at an abort: the cursor of the last change applied.
  await runner.save(true);
}

async function steps(r: Replication, runner: Runner): Promise<void> {
  const saved = await runner.retrying(() => runner.load());
  if (!runner.feedless) {
    await followFeed(r, runner, saved);
    // A source whose feed is missing (found out above) goes on as one without a feed.
    if (!runner.feedless || r.aborted) return;
  }
  // Without a feed: a full compare, then with `follow` one every `pollMs`.
  let first = r.report.syncs === 0;
  for (;;) {
    if (!first) {
      if (!runner.follow) return;
      r.enter("follow");
      await sleepUnlessAborted(r.options.pollMs ?? DEFAULT_POLL_MS, r.options.signal);
      if (r.aborted) return;
    }
    first = false;
    if (!(await runner.sync())) return;
  }
}

/** The sync (or the saved cursor), then the catch-up or the follow on the source's feed. */
async function followFeed(r: Replication, runner: Runner, saved: string | undefined): Promise<void> {
  if (saved === undefined) {
    if (!(await runner.sync()) || runner.feedless) return;
  } else {
    runner.cursor = saved;
    r.report.cursor = saved;
  }
  let end: string | undefined;
  if (!runner.follow) {
    end = await runner.feedCall(async () => r.source.feedCursor?.());
    if (runner.feedless) return;
    // Nothing after the saved cursor (or the sync's): caught up.
    if (end === runner.cursor) return;
  }
  await runner.feed(end);
}
