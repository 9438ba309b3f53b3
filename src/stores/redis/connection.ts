/**
 * Connecting to Redis: the lazy `ioredis` import, the client options that make a command fail
 * fast when the server is away, and the test for "this error means the server is unavailable".
 */
import { StoreUnavailableError } from "../../core/errors.js";
import { loadDriver } from "../driver.js";
import { SOCKET_ERROR_CODES } from "../network.js";
import type { RedisClient, RedisConnection } from "./config.js";

type RedisConstructor = new (options: Record<string, unknown>) => RedisClient;

function loadIoredis(): Promise<RedisConstructor> {
  return loadDriver(
    "redis",
    "ioredis",
    () => import("ioredis"),
    (m) => (typeof m.Redis === "function" ? (m.Redis as RedisConstructor) : undefined),
  );
}

// ioredis's words for "no connection" (closed, offline queue off, retries used up, aborted)
// and the server's replies for "cannot serve you now" (loading, busy, auth).
const UNAVAILABLE =
  /Connection is closed|enableOfflineQueue|Stream isn't writeable|Command aborted due to connection close|^(LOADING|BUSY|MASTERDOWN|NOAUTH|WRONGPASS)\b/;

/** True when `error` means the server cannot be reached or cannot serve requests now. */
export function isUnavailableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && SOCKET_ERROR_CODES.has(code)) return true;
  if (error.name === "MaxRetriesPerRequestError" || error.name === "AbortError") return true;
  return UNAVAILABLE.test(error.message);
}

/** Loads ioredis and connects; `StoreUnavailableError` when the server does not answer in time. */
export async function connect(
  connection: RedisConnection,
  connectTimeoutMs: number,
  location: string,
): Promise<RedisClient> {
  const Redis = await loadIoredis();
  const client = new Redis({
    ...connection,
    lazyConnect: true,
    connectTimeout: connectTimeoutMs,
    // Fail fast while disconnected instead of queueing: a put either reaches the server now or
    // rejects now; commands in flight when the connection drops reject at once (0 retries) and
    // are never replayed after a reconnect, where a replayed put would look like a conflict.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
  });
  // ioredis reports why a connection failed (ECONNREFUSED, WRONGPASS) only as an event.
  let lastError: Error | undefined;
  const onError = (error: Error) => {
    lastError = error;
  };
  client.on("error", onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${connectTimeoutMs} ms`)),
          connectTimeoutMs,
        );
      }),
    ]);
  } catch (error) {
    // Stops the background reconnects. The listener stays: the abandoned socket may still
    // report an error while it closes, and that must not reach ioredis's "unhandled" path.
    client.disconnect();
    const cause = lastError ?? error;
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new StoreUnavailableError("redis", `cannot connect to ${location}: ${reason}`, { cause });
  } finally {
    clearTimeout(timer);
  }
  client.removeListener("error", onError);
  // An idle connection must not keep the process alive (a script without close() ends); the
  // store holds the process while a reply is awaited. A reconnect makes a new socket, so again.
  const unref = () => client.stream?.unref();
  unref();
  client.on("ready", unref);
  return client;
}
