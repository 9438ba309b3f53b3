/**
 * The raw floors: what the same payload costs written and read by the bare driver, with the
 * same durability the store promises but none of cairn's work (codec, hashing, checksums,
 * metadata, parent lookup, verification). cairn/raw is the price of what cairn adds.
 */
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type BetterSqlite3 from "better-sqlite3";

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

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Atomic, durable file write as the file store does it: temp file beside the target, fsync,
 * rename, fsync the folder. One file per key, so the folder grows as cairn's run folders do.
 */
export async function openFileFloor(dir: string): Promise<RawFloor> {
  await mkdir(dir, { recursive: true });
  let temps = 0;
  return {
    write: async (key, value) => {
      const text = JSON.stringify(value);
      const temp = join(dir, `.${key}.${temps++}.tmp`);
      const handle = await open(temp, "wx");
      try {
        await handle.writeFile(text, "utf8");
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, join(dir, `${key}.json`));
      await fsyncPath(dir);
    },
    read: async (key) => JSON.parse(await readFile(join(dir, `${key}.json`), "utf8")),
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
