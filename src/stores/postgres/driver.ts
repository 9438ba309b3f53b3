/**
 * The part of `pg` the PostgreSQL store uses, typed structurally so that cairn's public types do
 * not need `@types/pg` and users can pass their own pool; plus the lazy driver import, the
 * mapping of connection failures to `StoreUnavailableError`, and the transaction helper.
 */
import { CairnError, StoreUnavailableError } from "../../core/errors.js";
import { loadDriver as load } from "../driver.js";
import { NEVER_SENT_CODES, SOCKET_ERROR_CODES } from "../network.js";

/** Type parsers for one query, as pg's `types` option takes them. */
export interface PgTypeParsers {
  getTypeParser(oid: number, format?: string): (value: string) => unknown;
}

/** A query as pg's `query(config)` takes it. */
export interface PgQuery {
  text: string;
  values?: unknown[];
  /** Name of a prepared statement, prepared once per connection. */
  name?: string;
  types?: PgTypeParsers;
}

/** The part of a pg result this store reads. */
export interface PgResult {
  rows: Record<string, unknown>[];
  rowCount: number | null;
}

/** Something that runs queries: a pool or a checked-out client. */
export interface PgQueryable {
  query(query: PgQuery): Promise<PgResult>;
}

/** A client checked out of a pool. */
export interface PgPoolClient extends PgQueryable {
  release(error?: Error | boolean): void;
  on(event: "error", listener: (error: Error) => void): unknown;
  removeListener(event: "error", listener: (error: Error) => void): unknown;
}

/** The part of a `pg.Pool` this store uses. */
export interface PgPool extends PgQueryable {
  connect(): Promise<PgPoolClient>;
  end(): Promise<void>;
  on(event: "error", listener: (error: Error) => void): unknown;
  /** The pool's configuration, read only to describe where the data lives. */
  readonly options?: unknown;
}

/** A connection of its own (`pg.Client`), as the feed's listener uses it. */
export interface PgClient extends PgQueryable {
  connect(): Promise<unknown>;
  end(): Promise<void>;
  on(event: "notification", listener: (message: { channel: string }) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  /** pg's connection; its socket is unref'd so an idle listener never keeps the process alive. */
  connection?: { stream?: { unref?: () => unknown; destroy?: () => unknown } };
}

/** What this store needs from the `pg` module. */
export interface PgDriver {
  Pool: new (config: Record<string, unknown>) => PgPool;
  Client: new (config: Record<string, unknown>) => PgClient;
  types: PgTypeParsers;
}

/** Imports `pg`, an optional peer dependency, only when a store is opened. */
export function loadDriver(): Promise<PgDriver> {
  return load(
    "postgres",
    "pg",
    () => import("pg"),
    (m) =>
      typeof m.Pool === "function" && typeof m.Client === "function" ? (m as unknown as PgDriver) : undefined,
  );
}

const INT8 = 20;

/**
 * Per-query type parsers: BIGINT columns come back as numbers (pg's default is a string, to
 * avoid precision loss; a value past 2^53 stays a string, so the row is reported as corrupt
 * rather than silently rounded). Given per query, not globally, so the user's pg settings and
 * a caller's own pool are left alone.
 */
export function typeParsers(driver: PgDriver): PgTypeParsers {
  const parseInt8 = (text: string) => {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : text;
  };
  return {
    getTypeParser: (oid, format) => (oid === INT8 ? parseInt8 : driver.types.getTypeParser(oid, format)),
  };
}

// 57P01-57P03: the server is shutting down or starting; 53300: it accepts no more connections.
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300"]);
// pg's own messages when a connection ends or cannot be made in time.
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed/i;

/** True when `error` means the server cannot be reached, rather than that a query failed. */
export function isConnectionError(error: unknown): boolean {
  if (error === null || typeof error !== "object") return false;
  const { code, message, errors } = error as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof code === "string") {
    if (SOCKET_ERROR_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code))
      return true;
  }
  // Node reports a failed connection to a host with several addresses as an AggregateError.
  if (Array.isArray(errors) && errors.some(isConnectionError)) return true;
  return typeof message === "string" && UNAVAILABLE_MESSAGE.test(message);
}

// pg's messages for a query refused before anything was sent: the client was already broken.
const NOT_SENT_MESSAGE = /not queryable/i;
/** Connection failures raised while a write statement or a COMMIT was on the wire. */
const inFlight = new WeakSet<object>();

/**
 * Notes that `error` ended a write that had been sent: when it is a connection failure, the
 * server may have applied the write before the connection was lost. Returns `error`.
 */
export function markInFlight(error: unknown): unknown {
  if (error !== null && typeof error === "object" && isConnectionError(error)) {
    const { message, severity } = error as { message?: unknown; severity?: unknown };
    // An error message from the server (with its severity; say 57P01, its backend terminated) is
    // its answer: the statement was aborted, not left unanswered.
    const answered = typeof severity === "string";
    if (!answered && !(typeof message === "string" && NOT_SENT_MESSAGE.test(message))) inFlight.add(error);
  }
  return error;
}

/**
 * `StoreUnavailableError` for a connection failure (with `maybeCommitted` when a write was in
 * flight, see {@link markInFlight}); any other error is returned unchanged.
 */
export function classify(error: unknown): unknown {
  // A cairn error (a conflict, a lost lease) is already what the caller should see.
  if (error instanceof CairnError || !isConnectionError(error)) return error;
  const message = error instanceof Error && error.message ? error.message : String(error);
  const maybeCommitted = inFlight.has(error as object);
  return new StoreUnavailableError(
    "postgres",
    maybeCommitted
      ? `${message}; the connection was lost after the write was sent and before the server answered, so the write may have been applied`
      : message,
    { cause: error, maybeCommitted },
  );
}

const CONNECT_MESSAGE = /timeout exceeded when trying to connect/i;

/**
 * Runs one write statement through `pool.query` (one round trip, no transaction). pool.query
 * does not say whether a failure came before or after the statement was sent, so every
 * connection failure but a refused or timed-out connect counts as maybe applied: a needless
 * read-back at worst, never a write wrongly reported as not applied.
 */
export async function writeOnPool(pool: PgPool, query: PgQuery): Promise<PgResult> {
  try {
    return await pool.query(query);
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    const refused =
      (typeof code === "string" && NEVER_SENT_CODES.has(code)) ||
      (typeof message === "string" && CONNECT_MESSAGE.test(message));
    throw refused ? error : markInFlight(error);
  }
}

/**
 * Runs `work` in a transaction on one pooled client: COMMIT when it resolves, ROLLBACK when it
 * throws (the error is rethrown as is). A client whose connection failed is discarded, not
 * returned to the pool.
 */
export async function inTransaction<T>(pool: PgPool, work: (client: PgQueryable) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A checked-out client has no listener of the pool's: without ours, a connection dropped
  // between two queries would be an unhandled 'error' event that kills the process. The next
  // query on the client fails and reports it.
  const onError = (error: Error) => {
    broken ??= error;
  };
  client.on("error", onError);
  try {
    await client.query({ text: "BEGIN" });
    const result = await work(client);
    // Lost before COMMIT, the server rolls the transaction back; lost during it, it may not have.
    await client.query({ text: "COMMIT" }).catch((error: unknown) => {
      throw markInFlight(error);
    });
    return result;
  } catch (error) {
    try {
      await client.query({ text: "ROLLBACK" });
    } catch (rollbackError) {
      // The original error is the one to report; a failed ROLLBACK means the connection is gone
      // (the server then aborts the transaction itself), so the client must not be reused.
      broken ??= rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw error;
  } finally {
    client.removeListener("error", onError);
    client.release(broken ?? false);
  }
}
