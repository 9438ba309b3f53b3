/**
 * The file store's change feed: the log (`feed-log.ts`), the intents that make it crash-safe
 * (`feed-intents.ts`), cursors `<feedId>:<position>`, retention and waiting for changes. The
 * cursor `0000000000000000:0` is the start of a store that had no feed yet (a read-only open of
 * a store no writer of this version touched): every change its feed ever records comes after it.
 */
import { existsSync, type FSWatcher, watch } from "node:fs";
import { join } from "node:path";
import { FeedTrimmedError, InvalidArgumentError } from "../../core/errors.js";
import { discardTemps, type TempFile } from "../../util/atomic-file.js";
import type { StoreChange } from "../types.js";
import {
  abandonedIntents,
  entryOf,
  type IntendedChange,
  type Intent,
  newIntent,
  type SettleMode,
  settleIntent,
  writeIntent,
} from "./feed-intents.js";
import { FeedLog, type PositionedEntry, SEGMENT_SIZE } from "./feed-log.js";
import { withRunLock } from "./file-leases.js";

/** How often a waiting watcher looks at the log when `fs.watch` stays silent (ms). */
export const FEED_POLL_MS = 250;
/** Changes the feed keeps by default. */
export const DEFAULT_FEED_RETENTION = 100_000;
/** Trimming runs when a change lands on a multiple of this position. */
const TRIM_EVERY = 100;
const NO_FEED = "0".repeat(16);
const CURSOR = /^([0-9a-f]{16}):(0|[1-9][0-9]{0,14})$/;

function parseCursor(cursor: string): { id: string; position: number } {
  const m = CURSOR.exec(cursor);
  if (!m) throw new InvalidArgumentError(`${JSON.stringify(cursor)} is not a file store feed cursor`);
  return { id: m[1] as string, position: Number(m[2]) };
}

/**
 * Declares the changes a write is about to commit (called under the run's lock); the commit
 * must wait for it to resolve, but the write's other work may run meanwhile.
 */
export type Declare = (changes: IntendedChange[]) => Promise<void>;

/** The feed of one file store instance. */
export class FileFeed {
  readonly log: FeedLog;

  constructor(
    private readonly basePath: string,
    private readonly fsync: boolean,
    private readonly readOnly: boolean,
    private readonly retention: number,
    /** Makes the store's layout say it has a feed, before the feed is created. */
    private readonly markLayout: () => Promise<void>,
  ) {
    this.log = new FeedLog(basePath, fsync);
  }

  /**
   * Runs a write under the run's lock (the caller holds it): first settles what a killed earlier
   * writer of the run left, so the run's changes stay in commit order; then `fn`, which declares
   * its changes right before its commit; then settles them into the log, whether `fn` succeeded
   * or not (it may have failed after its commit).
   */
  async record<T>(pipelineId: string, fn: (declare: Declare) => Promise<T>): Promise<T> {
    await this.settle(pipelineId, "recovering");
    let own: Intent | undefined;
    let prepared: TempFile[] = [];
    let result: T;
    try {
      result = await fn(async (changes) => {
        if (changes.length === 0) return;
        await this.markLayout();
        await this.log.feedId(true);
        const intent = newIntent(this.log, pipelineId, changes);
        // The changes' files are written and flushed with the intent, so that after the commit
        // only their links remain to do.
        const files = this.log.prepare(changes.map((_, i) => entryOf(intent, i)));
        const [written, ready] = await Promise.allSettled([
          writeIntent(this.basePath, this.fsync, intent),
          files,
        ]);
        if (ready.status === "fulfilled") prepared = ready.value;
        if (written.status === "rejected") {
          discardTemps(prepared);
          prepared = [];
          throw written.reason;
        }
        own = intent;
      });
    } catch (error) {
      // The write's own failure is the one to report. If settling fails as well, the intent stays
      // on disk, and the run's next writer (or a reader, once this process is gone) settles it.
      if (own) await this.settle(pipelineId, "unsure", own, prepared).catch(() => undefined);
      else discardTemps(prepared);
      throw error;
    }
    if (own) await this.settle(pipelineId, "committed", own, prepared);
    return result;
  }

  private async settle(
    pipelineId: string,
    mode: SettleMode,
    own?: Intent,
    prepared?: TempFile[],
  ): Promise<void> {
    const positions = await settleIntent(
      this.basePath,
      this.log,
      this.fsync,
      pipelineId,
      mode,
      own,
      prepared,
    );
    for (const position of positions) {
      if (position % TRIM_EVERY === 0 && position > this.retention)
        await this.log.trim(position - this.retention);
    }
  }

  /** Settles the intents of writers that are gone, each under its run's lock. */
  async recoverAbandoned(): Promise<void> {
    if (this.readOnly) return;
    for (const pipelineId of abandonedIntents(this.basePath)) {
      await withRunLock(this.basePath, pipelineId, () => this.settle(pipelineId, "recovering"));
    }
  }

  /**
   * The feed id; a writable store creates it (and its folder) when missing, so that every cursor
   * it hands out names the same feed. A read-only one has none until a writer made it.
   */
  private async feedId(): Promise<string | undefined> {
    const create = !this.readOnly;
    if (create && !existsSync(join(this.log.dir, "id"))) await this.markLayout();
    return this.log.feedId(create);
  }

  /** Changes after `since` (a cursor), oldest first; see `CheckpointStore.readChanges`. */
  async readChanges(since: string | undefined, limit: number): Promise<StoreChange[]> {
    const cursor = since === undefined ? undefined : parseCursor(since);
    await this.recoverAbandoned();
    const id = await this.feedId();
    const trimmed = this.log.trimmedThrough();
    let start = trimmed;
    if (cursor !== undefined && since !== undefined) {
      const fromNoFeed = cursor.id === NO_FEED && cursor.position === 0;
      if (cursor.id !== (id ?? NO_FEED) && !fromNoFeed) {
        throw new FeedTrimmedError(
          "file",
          since,
          "the cursor belongs to another feed (another store, or this store's folder recreated)",
        );
      }
      if (cursor.position < trimmed) {
        throw new FeedTrimmedError(
          "file",
          since,
          `the feed's retention removed every change up to position ${trimmed}`,
        );
      }
      start = cursor.position;
    }
    if (id === undefined) return [];
    let { entries, gap } = this.log.read(start, limit);
    if (since === undefined && gap && entries.length === 0) {
      // Trimmed between the look at the marker and the read: start from the oldest retained now.
      ({ entries, gap } = this.log.read(this.log.trimmedThrough(), limit));
    }
    if (gap && entries.length === 0)
      throw new FeedTrimmedError("file", since ?? `${id}:${start}`, gap.reason);
    if (entries.length === 0 && start > this.log.trimmedThrough() && !this.log.has(start)) {
      // The cursor names a change the log does not hold: lost with a crash of the machine
      // (unflushed), so changes recorded since may sit at positions the caller thinks it read.
      const reason = `change ${start} is not in the feed (lost in a crash of the machine?)`;
      throw new FeedTrimmedError("file", since ?? `${id}:${start}`, reason);
    }
    return entries.map((e) => toChange(id, e));
  }

  /** The cursor of the newest change (or of an empty feed's start). */
  async feedCursor(): Promise<string> {
    await this.recoverAbandoned();
    const id = await this.feedId();
    return `${id ?? NO_FEED}:${id === undefined ? 0 : this.log.highest()}`;
  }

  /**
   * Resolves true once a change after `since` may exist: `fs.watch` on the log's folders wakes it
   * at once, and a poll every {@link FEED_POLL_MS} covers file systems whose events do not arrive
   * (network shares, some containers). Armed before the first look, so no change slips between.
   */
  async waitForChanges(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const cursor = parseCursor(since);
    if (signal?.aborted) return false;
    const id = await this.feedId();
    if (id !== undefined && cursor.id !== id && cursor.id !== NO_FEED) return true;
    return new Promise<boolean>((resolve) => {
      const watchers: FSWatcher[] = [];
      let done = false;
      const finish = (value: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        for (const w of watchers) w.close();
        signal?.removeEventListener("abort", onAbort);
        resolve(value);
      };
      const check = () => {
        try {
          if (this.log.hasAfter(cursor.position)) finish(true);
          else if (!this.readOnly && abandonedIntents(this.basePath).length > 0) finish(true);
        } catch {
          // Whatever failed here fails again in the caller's next read, which reports it.
          finish(true);
        }
      };
      const onAbort = () => finish(false);
      const segment = join(
        this.log.dir,
        `s${String(Math.floor((cursor.position + 1) / SEGMENT_SIZE)).padStart(8, "0")}`,
      );
      for (const dir of [this.log.dir, segment]) {
        try {
          const w = watch(dir, { persistent: false }, check);
          // A watcher that fails (the folder removed, too many watches) leaves the poll to wake us.
          w.on("error", () => w.close());
          watchers.push(w);
        } catch {
          // The folder does not exist yet (no change so far), or watching is unsupported: the poll covers it.
        }
      }
      const timer = setTimeout(() => finish(false), timeoutMs);
      const poll = setInterval(check, FEED_POLL_MS);
      signal?.addEventListener("abort", onAbort, { once: true });
      check();
    });
  }
}

function toChange(id: string, { position, entry }: PositionedEntry): StoreChange {
  const change: StoreChange = {
    cursor: `${id}:${position}`,
    type: entry.type,
    pipelineId: entry.pipelineId,
    pipelineName: entry.pipelineName,
    at: entry.at,
  };
  if (entry.checkpointId !== undefined) {
    change.checkpointId = entry.checkpointId;
    if (entry.sequence !== undefined) change.sequence = entry.sequence;
  }
  return change;
}
