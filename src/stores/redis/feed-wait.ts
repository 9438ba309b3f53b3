/**
 * Waiting for the Redis feed: `XREAD BLOCK` on a connection of its own (a blocked connection
 * can send nothing else), so the server wakes the waiter the moment a script appends a change.
 * XREAD with an explicit entry id first answers what is already after it, so a change written
 * before the wait began is never missed. Connections are kept for the next wait (one per wait in
 * flight), dropped on abort (a blocked read cannot be withdrawn otherwise), and closed with the
 * store.
 */
import type { RedisClient } from "./config.js";

/** Polls with a non-blocking XREAD when the caller's client cannot be duplicated. */
const POLL_MS = 250;
/** Blocking connections kept open between waits. */
const MAX_IDLE = 2;

type Runner = <T>(operation: string, fn: () => Promise<T>) => Promise<T>;

/** The blocking reads of one store instance. */
export class FeedWaiter {
  private readonly idle: RedisClient[] = [];
  private readonly open = new Set<RedisClient>();
  private closed = false;

  constructor(
    private readonly client: RedisClient,
    private readonly feedKey: string,
    private readonly run: Runner,
  ) {}

  /** True once the stream has an entry after `id`; false after `timeoutMs` or on abort. */
  async wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed || signal?.aborted) return false;
    // BLOCK 0 would block forever: a zero timeout is one look without blocking.
    const ms = Math.ceil(timeoutMs);
    if (ms === 0 || !this.client.duplicate) return this.poll(id, ms, signal);
    const conn = await this.run("waitForChanges", () => this.take());
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      this.drop(conn);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const reply = await conn.call("XREAD", "COUNT", 1, "BLOCK", ms, "STREAMS", this.feedKey, id);
      this.give(conn);
      return reply !== null;
    } catch (error) {
      this.drop(conn);
      // The connection was dropped on purpose: abort or close, not a failure.
      if (aborted || this.closed) return false;
      return this.run("waitForChanges", () => Promise.reject(error));
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  private async poll(id: string, ms: number, signal?: AbortSignal): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      const reply = await this.run("waitForChanges", () =>
        this.client.call("XREAD", "COUNT", 1, "STREAMS", this.feedKey, id),
      );
      if (reply !== null) return true;
      const left = until - Date.now();
      if (left <= 0 || signal?.aborted || this.closed) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(POLL_MS, left));
        function done() {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          resolve();
        }
        signal?.addEventListener("abort", done, { once: true });
      });
      if (signal?.aborted || this.closed) return false;
    }
  }

  private async take(): Promise<RedisClient> {
    const kept = this.idle.pop();
    if (kept) return kept;
    const conn = (this.client.duplicate as () => RedisClient).call(this.client);
    this.open.add(conn);
    // Errors reach the pending command; without a listener ioredis would log them as unhandled.
    conn.on("error", () => {});
    // Like the store's own connection, an idle one never holds the process (GuardedStore holds
    // it while a wait is in flight); a reconnect makes a new socket, so on every ready.
    const unref = () => conn.stream?.unref();
    conn.on("ready", unref);
    try {
      if (conn.status === "wait") await conn.connect();
      else if (conn.status !== "ready") await readyOf(conn);
      unref();
    } catch (error) {
      this.drop(conn);
      throw error;
    }
    if (this.closed) {
      this.drop(conn);
      throw new Error("Connection is closed: the store was closed");
    }
    return conn;
  }

  private give(conn: RedisClient): void {
    if (this.closed || !this.open.has(conn)) return;
    // A burst of concurrent waits leaves at most a few connections behind.
    if (this.idle.length >= MAX_IDLE) this.drop(conn);
    else this.idle.push(conn);
  }

  private drop(conn: RedisClient): void {
    this.open.delete(conn);
    const at = this.idle.indexOf(conn);
    if (at >= 0) this.idle.splice(at, 1);
    conn.disconnect();
  }

  /** Disconnects every blocking connection; waits in flight answer false. */
  close(): void {
    this.closed = true;
    for (const conn of [...this.open]) this.drop(conn);
  }
}

/** Resolves once a connecting client is ready; rejects on its first error or end. */
function readyOf(conn: RedisClient): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      conn.removeListener("ready", onReady);
      conn.removeListener("error", onError);
      if (error) reject(error);
      else resolve();
    };
    const onReady = () => done();
    const onError = (error: Error) => done(error);
    conn.on("ready", onReady);
    conn.on("error", onError);
  });
}
