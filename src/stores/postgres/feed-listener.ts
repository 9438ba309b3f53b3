/**
 * `waitForChanges` of the PostgreSQL store: one connection per store instance that LISTENs on
 * the feed's channel, opened on the first wait and kept until `close()`. Every writing
 * transaction notifies the channel, delivered at its commit. A waiter is armed first, then the
 * feed is checked, so a change committed before the LISTEN is seen by the check and one after it
 * by the notification: no wake-up is missed. A connection that breaks wakes every waiter (the
 * caller reads the feed again, which reports an unreachable server) and is reopened by the next
 * wait.
 */
import type { PgClient, PgDriver, PgPool } from "./driver.js";

/** A connection that LISTENs (`connect`/`end` are the opener's business). */
export type PgListenClient = Omit<PgClient, "connect" | "end">;

/** An open listening connection and how to close it. */
export interface ListenConnection {
  client: PgListenClient;
  close(): Promise<void>;
}

/**
 * Opens a connection of its own with the store's connection options (or, for a caller's pool,
 * the pool's), so a long wait never holds one of the pool's connections. A caller's pool that
 * shows no options lends one of its connections, destroyed on close rather than returned.
 */
export function listenerOpener(
  driver: PgDriver,
  pool: PgPool,
  options: Record<string, unknown> | undefined,
): () => Promise<ListenConnection> {
  return async () => {
    if (options !== undefined) {
      const client = new driver.Client(options);
      try {
        await client.connect();
      } catch (error) {
        // The connect error is the one to report; the half-open client is discarded.
        client.end().catch(() => {});
        throw error;
      }
      return { client, close: () => endWithin(client, CLOSE_MS) };
    }
    const client = await pool.connect();
    return { client: client as unknown as PgListenClient, close: async () => client.release(true) };
  };
}

/** How long a listening connection's goodbye may take before its socket is destroyed. */
const CLOSE_MS = 2000;

// end() waits for the server to close the socket, which a server that stopped answering never
// does: close() must not hang on it.
async function endWithin(client: PgClient, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([client.end(), late]);
  } finally {
    clearTimeout(timer);
    client.connection?.stream?.destroy?.();
  }
}

interface Listening {
  connection: ListenConnection;
  broken: boolean;
}

/** The store's listener; see the file's comment. */
export class FeedListener {
  private current: Promise<Listening> | undefined;
  private readonly waiters = new Set<(woken: boolean) => void>();
  private closed = false;

  constructor(
    private readonly open: () => Promise<ListenConnection>,
    private readonly channel: string,
  ) {}

  /**
   * True on a notification (or a broken connection, or `check` answering true), false after
   * `timeoutMs` or when `signal` aborts. `check` runs once the waiter is armed. A connection that
   * cannot be opened, or a failing `check`, rejects.
   */
  async wait(check: () => Promise<boolean>, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted || this.closed) return false;
    const listening = await this.listening();
    return new Promise<boolean>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.waiters.delete(finish);
        outcome();
      };
      const finish = (woken: boolean) => settle(() => resolve(woken));
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(finish);
      // Aborted or closed while connecting, or broken since the LISTEN: nothing would wake it.
      if (signal?.aborted || this.closed) return finish(false);
      if (listening.broken) return finish(true);
      check().then(
        (moved) => {
          if (moved) finish(true);
        },
        (error: unknown) => settle(() => reject(error)),
      );
    });
  }

  /** Ends the connection; waiting calls resolve false. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake(false);
    const current = this.current;
    this.current = undefined;
    if (current === undefined) return;
    const listening = await current.catch(() => undefined);
    // A connection that fails to close cleanly is gone either way; there is nothing to keep.
    if (listening) await listening.connection.close().catch(() => {});
  }

  private wake(woken: boolean): void {
    for (const finish of [...this.waiters]) finish(woken);
  }

  private listening(): Promise<Listening> {
    if (this.current === undefined) {
      // Forgotten when it breaks or fails to open: the next wait opens a new one.
      const forget = () => {
        if (this.current === opening) this.current = undefined;
      };
      const opening = this.connect(forget);
      this.current = opening;
      opening.catch(forget);
    }
    return this.current;
  }

  private async connect(forget: () => void): Promise<Listening> {
    const connection = await this.open();
    const listening: Listening = { connection, broken: false };
    const { client } = connection;
    const broke = () => {
      if (listening.broken) return;
      listening.broken = true;
      forget();
      this.wake(true);
      connection.close().catch(() => {});
    };
    client.on("notification", (message) => {
      if (message.channel === this.channel) this.wake(true);
    });
    client.on("error", broke);
    client.on("end", broke);
    try {
      await client.query({ text: `LISTEN "${this.channel}"` });
    } catch (error) {
      broke();
      throw error;
    }
    connection.client.connection?.stream?.unref?.();
    return listening;
  }
}
