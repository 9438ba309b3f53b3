/**
 * The server stores' side of the benchmark: where the servers are, the namespace one bench
 * process writes into, whether a server answers (and how durable it is configured to be), and
 * removing the namespace afterwards.
 *
 * Every child measuring a server store writes only under its own namespace, named after its
 * process id: PostgreSQL schema `cairn_bench_<pid>`, Redis key prefix `cairn-bench:<pid>:`. So a
 * bench never touches other data on the server, two benches never meet, and the namespace can
 * be dropped whole at the end (and again by the parent if the child died before it could).
 */
import type { Redis } from "ioredis";
import type { Client } from "pg";

/** The PostgreSQL server: `CAIRN_BENCH_POSTGRES_URL`, else the local test server. */
export const POSTGRES_URL = process.env.CAIRN_BENCH_POSTGRES_URL || "postgres://postgres@127.0.0.1:5432/test";
/** The Redis server: `CAIRN_BENCH_REDIS_URL`, else the local test server. */
export const REDIS_URL = process.env.CAIRN_BENCH_REDIS_URL || "redis://127.0.0.1:6379/0";

/** The schema a bench process writes into. */
export const benchSchema = (pid: number) => `cairn_bench_${pid}`;
/** The key prefix a bench process writes under. */
export const benchKeyPrefix = (pid: number) => `cairn-bench:${pid}:`;

/** Query parameters cairn reads from a store URL; the bare drivers must not see them. */
const CAIRN_PARAMS = ["schema", "tablePrefix", "poolSize", "statementTimeoutMs", "keyPrefix", "ttlSeconds"];

/** `url` with `params` set, replacing any the URL already has: the bench owns its namespace. */
export function withParams(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [key, value] of Object.entries(params)) u.searchParams.set(key, value);
  return u.toString();
}

/** `url` without cairn's own query parameters, for `pg` or `ioredis` (ioredis reads query parameters as options). */
export function driverUrl(url: string): string {
  const u = new URL(url);
  for (const key of CAIRN_PARAMS) u.searchParams.delete(key);
  return u.toString();
}

/** `url` without a password or query, for messages and the report. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    u.search = "";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}

/** What a server store's child learns before measuring: measure it, or skip it and say why. */
export type Availability =
  | { available: true; durability: string; server: string }
  | { available: false; reason: string };

/** One line for a failed connection: the code or message, or every attempt of an AggregateError. */
export function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(describeError))].join("; ");
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return error.message || (typeof code === "string" ? code : error.name);
  }
  return String(error);
}

const CONNECT_TIMEOUT_MS = 5000;

/** A short-lived pg client (not the store's pool): for probing and dropping the schema. */
async function pgClient(url: string): Promise<Client> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({
    connectionString: driverUrl(url),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // A connection that fails later would otherwise be an unhandled 'error' event.
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** A short-lived ioredis client that fails at once, never reconnects, never queues. */
async function redisClient(url: string): Promise<Redis> {
  const { Redis } = await import("ioredis");
  const client = new Redis(driverUrl(url), {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError: unknown;
  client.on("error", (error) => {
    lastError = error;
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw lastError ?? error;
  }
  return client;
}

/** Connects once; reports the server version and the settings that decide when a commit is durable. */
export async function probePostgres(url: string): Promise<Availability> {
  let client: Client | undefined;
  try {
    client = await pgClient(url);
    const { rows } = await client.query(
      "SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS sync, current_setting('fsync') AS fsync",
    );
    const { version, sync, fsync } = rows[0] as { version: string; sync: string; fsync: string };
    return {
      available: true,
      server: `PostgreSQL ${version} at ${redact(url)}`,
      durability: `one transaction per checkpoint, committed with the server's synchronous_commit=${sync} (fsync=${fsync})`,
    };
  } catch (error) {
    return { available: false, reason: `cannot reach PostgreSQL at ${redact(url)}: ${describeError(error)}` };
  } finally {
    await client?.end().catch(() => {});
  }
}

/** Connects once; reports the server version and its persistence settings (when CONFIG is allowed). */
export async function probeRedis(url: string): Promise<Availability> {
  let client: Redis | undefined;
  try {
    const connected = await redisClient(url);
    client = connected;
    const version = /redis_version:(\S+)/.exec(await connected.info("server"))?.[1] ?? "?";
    let persistence: string;
    try {
      const setting = async (name: string) => ((await connected.config("GET", name)) as string[])[1] ?? "?";
      const aof = await setting("appendonly");
      const save = await setting("save");
      const rdb = save === "" ? "no RDB snapshots" : `RDB snapshots "${save}"`;
      persistence =
        aof === "yes"
          ? `appendonly=yes, appendfsync=${await setting("appendfsync")}, ${rdb}`
          : `appendonly=no, ${rdb}${save === "" ? ": data lives in server memory only" : ""}`;
    } catch {
      persistence = "persistence settings unknown (CONFIG GET refused)";
    }
    return {
      available: true,
      server: `Redis ${version} at ${redact(url)}`,
      durability: `one Lua script per checkpoint; the server's persistence: ${persistence}`,
    };
  } catch (error) {
    return { available: false, reason: `cannot reach Redis at ${redact(url)}: ${describeError(error)}` };
  } finally {
    client?.disconnect();
  }
}

/** Drops the bench schema and everything in it. */
export async function dropPostgresSchema(url: string, schema: string): Promise<string> {
  const client = await pgClient(url);
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    return `dropped schema ${schema}`;
  } finally {
    await client.end();
  }
}

/** Deletes every key under the bench prefix: SCAN in batches, DEL each batch. */
export async function deleteRedisKeys(url: string, prefix: string): Promise<string> {
  const client = await redisClient(url);
  try {
    // The prefix holds no glob characters (letters, digits, '-', ':'), so MATCH takes it as is.
    const pattern = `${prefix}*`;
    let cursor = "0";
    let deleted = 0;
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      if (keys.length > 0) deleted += await client.del(...keys);
      cursor = next;
    } while (cursor !== "0");
    return `deleted ${deleted} keys under ${prefix}`;
  } finally {
    client.disconnect();
  }
}

/** Sum of `MEMORY USAGE` (exact: SAMPLES 0) of every key under `prefix`: what Redis holds for them. */
export async function redisKeyBytes(url: string, prefix: string): Promise<number> {
  const client = await redisClient(url);
  try {
    let cursor = "0";
    let bytes = 0;
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      for (const key of keys) bytes += Number((await client.memory("USAGE", key, "SAMPLES", 0)) ?? 0);
      cursor = next;
    } while (cursor !== "0");
    return bytes;
  } finally {
    client.disconnect();
  }
}
