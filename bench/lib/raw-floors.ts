/**
 * The raw floors: what the same payload costs written and read by the bare driver, with the
 * same durability the store promises but none of cairn's work (codec, hashing, checksums,
 * metadata, parent lookup, verification). cairn/raw is the price of what cairn adds.
 */
import { closeSync, fsync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type BetterSqlite3 from "better-sqlite3";
import type { Pool } from "pg";

/** Stores and loads one JSON document per key. */
export interface RawFloor {
  write(key: string, value: unknown): Promise<void>;
  read(key: string): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * The pragmas `SqliteStore.open` sets (src/stores/sqlite/sqlite-store.ts); repeated here because
 * the store does not export them. Keep in step with the store, or the floor is not comparable.
 */
export const SQLITE_STORE_PRAGMAS = [
  "PRAGMA journal_mode = WAL",
  "PRAGMA synchronous = FULL",
  "PRAGMA busy_timeout = 5000",
  "PRAGMA foreign_keys = ON",
];

/** Loads better-sqlite3 only when a SQLite floor or filler is opened, as the store does. */
export async function openSqlite(path: string, pragmas: readonly string[]): Promise<BetterSqlite3.Database> {
  const { default: Database } = await import("better-sqlite3");
  const db = new Database(path);
  for (const pragma of pragmas) db.exec(pragma);
  return db;
}

/** `JSON.stringify` into a Map, `JSON.parse` out: the least any in-process store can do. */
export async function openMemoryFloor(): Promise<RawFloor> {
  const map = new Map<string, string>();
  return {
    write: async (key, value) => {
      map.set(key, JSON.stringify(value));
    },
    read: async (key) => JSON.parse(map.get(key) as string),
    close: async () => map.clear(),
  };
}

/**
 * Atomic, durable file write as the file store does it: temp file beside the target, fsync,
 * rename, fsync the folder. One file per key, so the folder grows as cairn's run folders do.
 */
export async function openFileFloor(dir: string): Promise<RawFloor> {
  await mkdir(dir, { recursive: true });
  let temps = 0;
  // The same system calls the file store makes: synchronous open, write, rename and read (each
  // microseconds), the flushes on libuv's thread pool, so the floor is the best of either way.
  const flush = promisify(fsync);
  const flushPath = async (path: string) => {
    const fd = openSync(path, "r");
    try {
      await flush(fd);
    } finally {
      closeSync(fd);
    }
  };
  return {
    write: async (key, value) => {
      const text = JSON.stringify(value);
      const temp = join(dir, `.${key}.${temps++}.tmp`);
      const fd = openSync(temp, "wx");
      try {
        writeFileSync(fd, text, "utf8");
        await flush(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, join(dir, `${key}.json`));
      await flushPath(dir);
    },
    read: async (key) => JSON.parse(readFileSync(join(dir, `${key}.json`), "utf8")),
    close: async () => {},
  };
}

/** One autocommitted single-row INSERT of the JSON text per write, with the store's pragmas. */
export async function openSqliteFloor(dir: string): Promise<RawFloor> {
  await mkdir(dir, { recursive: true });
  const db = await openSqlite(join(dir, "raw.db"), SQLITE_STORE_PRAGMAS);
  db.exec("CREATE TABLE IF NOT EXISTS raw (key TEXT PRIMARY KEY, body TEXT NOT NULL)");
  const insert = db.prepare("INSERT INTO raw (key, body) VALUES (?, ?)");
  const select = db.prepare("SELECT body FROM raw WHERE key = ?");
  return {
    write: async (key, value) => {
      insert.run(key, JSON.stringify(value));
    },
    read: async (key) => JSON.parse((select.get(key) as { body: string }).body),
    close: async () => {
      db.close();
    },
  };
}

/**
 * The PostgreSQL store's pool settings (src/stores/postgres/config.ts: default poolSize 10,
 * 10 s connection timeout, TCP keepalive), repeated because the store does not export them.
 */
export const POSTGRES_POOL_OPTIONS = { max: 10, connectionTimeoutMillis: 10_000, keepAlive: true };

/** A pg Pool as the store makes one; an idle connection that drops must not crash the process. */
export async function openPgPool(connectionString: string, applicationName: string): Promise<Pool> {
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ ...POSTGRES_POOL_OPTIONS, connectionString, application_name: applicationName });
  pool.on("error", () => {});
  return pool;
}

/**
 * One autocommitted single-row INSERT of the JSON text into a TEXT column per write (the
 * server's default synchronous_commit, as the store commits), SELECT by primary key to read.
 * One pg Pool, as the store has; named prepared statements, as the store uses, so both sides
 * parse and plan once per connection. The column gets lz4 TOAST compression when the server
 * has it, as the store's body columns do (its migration 2): otherwise a 1 MB row would pay
 * pglz here and lz4 in cairn, and the difference would be the compressor, not cairn.
 */
export async function openPostgresFloor(
  connectionString: string,
  schema: string,
  table: string,
): Promise<RawFloor> {
  const pool = await openPgPool(connectionString, "cairn-bench-raw");
  const name = `"${schema}"."${table}"`;
  try {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await pool.query(
      `CREATE TABLE IF NOT EXISTS ${name} (key TEXT COLLATE "C" PRIMARY KEY, body TEXT NOT NULL)`,
    );
    const { rows } = await pool.query(
      "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)",
    );
    if (rows.length > 0) await pool.query(`ALTER TABLE ${name} ALTER COLUMN body SET COMPRESSION lz4`);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const insert = { name: `bench_${table}_insert`, text: `INSERT INTO ${name} (key, body) VALUES ($1, $2)` };
  const select = { name: `bench_${table}_select`, text: `SELECT body FROM ${name} WHERE key = $1` };
  return {
    write: async (key, value) => {
      await pool.query({ ...insert, values: [key, JSON.stringify(value)] });
    },
    read: async (key) => {
      const { rows } = await pool.query({ ...select, values: [key] });
      return JSON.parse((rows[0] as { body: string }).body);
    },
    close: () => pool.end(),
  };
}

/**
 * `SET key json` / `GET key` + `JSON.parse` on one ioredis client, with the options the store
 * connects with (src/stores/redis/connection.ts): no offline queue, no retries. Durability is
 * the server's persistence configuration, the same for the store and this floor.
 */
export async function openRedisFloor(url: string, prefix: string): Promise<RawFloor> {
  const { Redis } = await import("ioredis");
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
  });
  client.on("error", () => {});
  await client.connect();
  return {
    write: async (key, value) => {
      await client.set(`${prefix}${key}`, JSON.stringify(value));
    },
    read: async (key) => JSON.parse((await client.get(`${prefix}${key}`)) as string),
    close: async () => {
      await client.quit();
    },
  };
}
