/**
 * The Redis store's change feed and meta values. Changes live in the stream `{prefix}feed`,
 * appended by the same Lua script as the change itself (`feedAdd` in `lua.ts`), so a change is
 * in the feed exactly when it committed; `XADD MAXLEN ~ feedRetention` trims the oldest.
 *
 * A cursor is `<feedId>:<stream entry id>` (`<feedId>:0-0` for an empty feed). The feed id
 * (`{prefix}feed:id`, 16 hex chars, set once by setup()) tells a cursor of another store, or of
 * this prefix's data recreated, from one of this feed. Trimming is detected from XINFO STREAM:
 * a cursor older than the oldest entry kept, once trimming removed any (`entries-added` above
 * `length`), or below `max-deleted-entry-id`. A stream that expired (`ttlSeconds`) or was
 * deleted is recreated by the next write under a new feed id, so every cursor into the lost
 * stream is refused too.
 */
import {
  CheckpointCorruptError,
  FeedTrimmedError,
  InvalidArgumentError,
  StoreUnsupportedError,
} from "../../core/errors.js";
import { newFeedId } from "../../feed/cursor.js";
import type { ChangeType, StoreChange } from "../types.js";
import type { RedisClient } from "./config.js";
import { FeedWaiter } from "./feed-wait.js";
import type { RedisKeys } from "./keys.js";
import type { ScriptRunner } from "./runs-index.js";

/** What the feed needs of its store. */
export interface FeedContext {
  client: RedisClient;
  keys: RedisKeys;
  location: string;
  runScript: ScriptRunner;
  /** Runs `fn`, reporting a failure as the store's typed error for `operation`. */
  run<T>(operation: string, fn: () => Promise<T>): Promise<T>;
}

/** The layout a feed-less store has, and the one setup() moves it to once the feed exists. */
export const LAYOUT_BEFORE_FEED = 1;

const CURSOR = /^([0-9a-f]{16}):(\d{1,20})-(\d{1,20})$/;
const TYPES: ReadonlySet<string> = new Set<ChangeType>(["checkpoint", "status", "deleted"]);

/** A cursor taken apart: its feed id and stream entry id. */
export interface FeedPosition {
  feedId: string;
  /** The stream entry id, `ms-seq`. */
  id: string;
  ms: bigint;
  seq: bigint;
}

/** Parses a cursor this store writes; undefined for anything else. */
function parseCursor(cursor: string): FeedPosition | undefined {
  const m = CURSOR.exec(cursor);
  if (!m) return undefined;
  const [, feedId, ms, seq] = m as unknown as [string, string, string, string];
  return { feedId, id: `${ms}-${seq}`, ms: BigInt(ms), seq: BigInt(seq) };
}

/** A feed id, then a position in another store's format (sqlite, postgres, file, memory). */
const OTHER_CURSOR = /^([0-9a-f]{16}):[0-9][0-9-]{0,40}$/;

/** Compares two stream entry ids (`ms-seq`). */
function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split("-").map(BigInt);
  const [bm = 0n, bs = 0n] = b.split("-").map(BigInt);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

type Entry = [string, string[]];
type ReadReply = [string | null, number, string, string, string, number, Entry[]];

/** The change feed and meta values of one Redis store. */
export class RedisFeed {
  private readonly waiter: FeedWaiter;

  constructor(private readonly ctx: FeedContext) {
    this.waiter = new FeedWaiter(ctx.client, ctx.keys.feed, ctx.run);
  }

  /** Creates the feed (id and empty stream) once and moves the layout past the feed-less one. */
  async setup(layout: number): Promise<void> {
    const k = this.ctx.keys;
    const id = newFeedId();
    await this.ctx.runScript(
      "setup",
      "feedSetup",
      k.feedId,
      k.feed,
      k.layout,
      id,
      LAYOUT_BEFORE_FEED,
      layout,
    );
  }

  private async read(operation: string, start: string, count: number): Promise<ReadReply> {
    const k = this.ctx.keys;
    const reply = (await this.ctx.runScript(
      operation,
      "feedRead",
      k.feedId,
      k.feed,
      start,
      count,
    )) as ReadReply;
    if (reply[0] === null || reply[0] === undefined) {
      throw new StoreUnsupportedError(
        "redis",
        this.ctx.location,
        "a change feed under this prefix yet",
        "open the store once without readOnly: its setup() creates the feed",
        "have",
      );
    }
    return reply;
  }

  /** Changes after `since` (or from the oldest retained), oldest first, at most `limit`. */
  async readChanges(since: string | undefined, limit: number): Promise<StoreChange[]> {
    const position = since === undefined ? undefined : await this.position(since, "readChanges");
    const start = position ? `(${position.id}` : "-";
    const reply = await this.read("readChanges", start, limit);
    const [feedId, exists, last, deleted, first, removed, entries] = reply;
    if (position && since !== undefined) {
      const refuse = (reason: string) => new FeedTrimmedError("redis", since, reason);
      if (position.feedId !== feedId) {
        throw refuse(
          "the cursor belongs to another feed (another store, this store's data recreated, or its feed stream expired and was started again)",
        );
      }
      if (exists === 0 && position.id !== "0-0")
        throw refuse("the feed stream is gone (expired under ttlSeconds, or deleted)");
      // Redis 7.0 moves max-deleted-entry-id on XDEL only, not when MAXLEN trims: a trim shows
      // as a cursor older than the oldest entry kept while some entries were removed. The entry
      // right after the cursor may be the oldest kept (a spurious refusal, never a missed gap).
      if (compareIds(deleted, position.id) > 0 || (removed > 0 && compareIds(position.id, first) < 0)) {
        throw refuse(
          `changes after it were trimmed by the feed's retention (feedRetention); the oldest kept is ${first}`,
        );
      }
      if (compareIds(position.id, last) > 0)
        throw refuse(`the cursor is past the feed's newest change ${last}: the feed was recreated`);
    }
    return entries.map((entry) => this.toChange(feedId as string, entry));
  }

  /**
   * The position of a cursor this feed wrote. Another kind of store's cursor (a feed id, then
   * its own kind of position) is `FeedTrimmedError` like any cursor of another feed; anything
   * else, or such a cursor with this feed's id, is `InvalidArgumentError`.
   */
  async position(cursor: string, operation: string): Promise<FeedPosition> {
    const position = parseCursor(cursor);
    if (position) return position;
    const other = OTHER_CURSOR.exec(cursor);
    if (other && other[1] !== (await this.read(operation, "-", 0))[0]) {
      throw new FeedTrimmedError("redis", cursor, "the cursor belongs to another feed (another store)");
    }
    throw new InvalidArgumentError(
      `${JSON.stringify(cursor.slice(0, 100))} is not a redis feed cursor (<16 hex feed id>:<ms>-<seq>)`,
    );
  }

  /** The cursor of the newest change, or of the empty feed's start. */
  async feedCursor(): Promise<string> {
    const [feedId, , last] = await this.read("feedCursor", "-", 0);
    return `${feedId}:${last}`;
  }

  /**
   * Blocks on XREAD (its own connection, `feed-wait.ts`) until the stream has an entry after
   * `since`; a cursor of another feed answers true at once, so the caller's read meets the
   * `FeedTrimmedError`.
   */
  async waitForChanges(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    let position: FeedPosition;
    try {
      position = await this.position(since, "waitForChanges");
    } catch (error) {
      if (error instanceof FeedTrimmedError) return true;
      throw error;
    }
    const key = this.ctx.keys.feedId;
    const feedId = await this.ctx.run("waitForChanges", () => this.ctx.client.call("GET", key));
    if (feedId !== position.feedId) return true;
    return this.waiter.wait(position.id, timeoutMs, signal);
  }

  /** Disconnects the blocking connections; waits in flight answer false. */
  close(): void {
    this.waiter.close();
  }

  private toChange(feedId: string, [id, fields]: Entry): StoreChange {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
    const at = Number(f.at);
    const seq = Number(f.seq);
    const problem =
      !TYPES.has(f.type ?? "") || f.pid === undefined || f.name === undefined
        ? "lacks type, pid or name"
        : !Number.isFinite(at)
          ? "has no time"
          : f.cp && !(f.seq !== "" && Number.isInteger(seq))
            ? "has a checkpoint without a sequence"
            : undefined;
    if (problem) {
      throw new CheckpointCorruptError(
        undefined,
        `${this.ctx.keys.feed} entry ${id} ${problem}, so cairn did not write it`,
      );
    }
    const change: StoreChange = {
      cursor: `${feedId}:${id}`,
      type: f.type as ChangeType,
      pipelineId: f.pid as string,
      pipelineName: f.name as string,
      at: new Date(at).toISOString(),
    };
    if (f.cp) {
      change.checkpointId = f.cp;
      change.sequence = seq;
    }
    return change;
  }

  /** A meta value, or undefined. */
  async getMeta(key: string): Promise<string | undefined> {
    const hash = this.ctx.keys.meta;
    const value = (await this.ctx.run("getMeta", () => this.ctx.client.call("HGET", hash, key))) as
      | string
      | null;
    return value ?? undefined;
  }

  /** Sets a meta value (a field of `{prefix}meta`, no TTL). */
  async putMeta(key: string, value: string): Promise<void> {
    const hash = this.ctx.keys.meta;
    await this.ctx.run("putMeta", () => this.ctx.client.call("HSET", hash, key, value));
  }
}
