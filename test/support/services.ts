/**
 * The real servers the tests use: PostgreSQL and Redis on loopback. When one is unreachable its
 * tests are skipped with a loud message naming the URL tried, except under CI (`CI` set), where
 * a missing server fails the run instead of silently testing less.
 */
import { createConnection } from "node:net";

/** URL of the PostgreSQL server the tests use. */
export const POSTGRES_URL = process.env.CAIRN_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** URL of the Redis server the tests use. */
export const REDIS_URL = process.env.CAIRN_TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0";

function reachable(url: string, timeoutMs = 1500): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * True when the server answers. Otherwise: under CI, throws (the suite fails); elsewhere, prints
 * a warning and returns false so the caller skips its tests.
 */
export async function serviceAvailable(name: string, url: string): Promise<boolean> {
  if (await reachable(url)) return true;
  const message = `${name} is not reachable at ${url}`;
  if (process.env.CI)
    throw new Error(
      `${message}: CI requires it (set CAIRN_TEST_${name.toUpperCase()}_URL to point elsewhere)`,
    );
  console.warn(`\n⚠⚠⚠ SKIPPING ${name} tests: ${message}. Start the server to run them. ⚠⚠⚠\n`);
  return false;
}

/** Resolved once at import: top-level await keeps `describe.skipIf` synchronous. */
export const postgresUp = await serviceAvailable("postgres", POSTGRES_URL);
/** Resolved once at import. */
export const redisUp = await serviceAvailable("redis", REDIS_URL);

/** A name unique to this process and call, for schemas and key prefixes. */
let counter = 0;
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${++counter}`;
}

/** Drops test schemas from the PostgreSQL server (CASCADE). */
export async function dropSchemas(...schemas: string[]): Promise<void> {
  if (schemas.length === 0) return;
  const pg = new (await import("pg")).default.Client({ connectionString: POSTGRES_URL });
  await pg.connect();
  try {
    for (const schema of schemas) await pg.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await pg.end();
  }
}

/** Deletes every Redis key under the given prefixes (SCAN, never KEYS). */
export async function deleteKeyPrefixes(...prefixes: string[]): Promise<void> {
  if (prefixes.length === 0) return;
  const redis = new (await import("ioredis")).Redis(REDIS_URL);
  try {
    for (const prefix of prefixes) {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== "0");
    }
  } finally {
    redis.disconnect();
  }
}
