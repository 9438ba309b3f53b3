/**
 * For the "a record of a newer format" tests: turning a stored checkpoint into one a newer cairn
 * wrote (its `format_version` raised, around cairn), and a snapshot of everything a store holds
 * (file tree and contents, SQLite rows, PostgreSQL rows of the schema, Redis keys and values under
 * the prefix, the memory store's maps) to prove an operation changed nothing.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import pg from "pg";
import type { MemoryStore } from "../../src/stores/memory/memory-store.js";
import type { CheckpointRecord } from "../../src/stores/types.js";
import { checkpointFile } from "./file-store.js";
import { POSTGRES_URL, REDIS_URL } from "./services.js";

/** Where one store of a test lives. */
export type StorePlace =
  | { kind: "memory"; instance: MemoryStore }
  | { kind: "file"; basePath: string }
  | { kind: "sqlite"; dbPath: string }
  | { kind: "postgres"; schema: string }
  | { kind: "redis"; prefix: string };

interface MemoryInternals {
  runs: Map<string, { checkpoints: Map<string, CheckpointRecord>; outputs: Map<string, string> }>;
  keys: Map<string, string>;
}

async function withPg<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function withRedis<T>(fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(REDIS_URL);
  try {
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/** Sets a stored checkpoint's `format_version`, leaving everything else (its checksum too) as it is. */
export async function setFormatVersion(
  place: StorePlace,
  pipelineId: string,
  checkpointId: string,
  version: number,
): Promise<void> {
  switch (place.kind) {
    case "memory": {
      const runs = (place.instance as unknown as MemoryInternals).runs;
      const record = runs.get(pipelineId)?.checkpoints.get(checkpointId);
      if (!record) throw new Error(`no checkpoint ${checkpointId}`);
      record.metadata.format_version = version;
      return;
    }
    case "file": {
      const path = await checkpointFile(place.basePath, pipelineId, checkpointId);
      const text = await readFile(path, "utf8");
      const changed = text.replace(/"format_version":\d+/, `"format_version":${version}`);
      if (changed === text) throw new Error(`no format_version in ${path}`);
      await writeFile(path, changed);
      return;
    }
    case "sqlite": {
      const db = new Database(place.dbPath);
      try {
        const done = db
          .prepare("UPDATE cairn_checkpoints SET format_version = ? WHERE checkpoint_id = ?")
          .run(version, checkpointId);
        if (done.changes !== 1) throw new Error(`no row for ${checkpointId}`);
      } finally {
        db.close();
      }
      return;
    }
    case "postgres":
      await withPg(async (client) => {
        const done = await client.query(
          `UPDATE "${place.schema}".cairn_checkpoints SET format_version = $1 WHERE checkpoint_id = $2`,
          [version, checkpointId],
        );
        if (done.rowCount !== 1) throw new Error(`no row for ${checkpointId}`);
      });
      return;
    case "redis":
      await withRedis(async (client) => {
        const key = `${place.prefix}ckpt:${checkpointId}`;
        const meta = await client.hget(key, "meta");
        if (meta === null) throw new Error(`no hash ${key}`);
        await client.hset(key, "meta", JSON.stringify({ ...JSON.parse(meta), format_version: version }));
      });
  }
}

/** Everything the store holds, as sorted `where → content` text, for before/after comparisons. */
export async function snapshot(place: StorePlace): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  switch (place.kind) {
    case "memory": {
      const store = place.instance as unknown as MemoryInternals;
      for (const [id, run] of store.runs) {
        for (const [cid, record] of run.checkpoints) out[`${id}/${cid}`] = JSON.stringify(record);
        for (const [hash, text] of run.outputs) out[`${id}/${hash}`] = text;
      }
      for (const [id, record] of store.keys) out[`key ${id}`] = record;
      break;
    }
    case "file":
      for (const entry of await readdir(place.basePath, { withFileTypes: true, recursive: true })) {
        const path = join(entry.parentPath, entry.name);
        out[path] = entry.isFile()
          ? await readFile(path, "utf8")
          : `<${entry.isDirectory() ? "dir" : "other"}>`;
      }
      break;
    case "sqlite": {
      const db = new Database(place.dbPath, { readonly: true });
      try {
        const tables = db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
          .all() as { name: string }[];
        for (const { name } of tables) {
          const rows = db.prepare(`SELECT * FROM "${name}"`).raw().all() as unknown[][];
          const text = rows.map((r) => JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? `${v}` : v)));
          out[name] = text.sort().join("\n");
        }
      } finally {
        db.close();
      }
      break;
    }
    case "postgres":
      await withPg(async (client) => {
        const { rows: tables } = await client.query(
          "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
          [place.schema],
        );
        for (const { table_name } of tables as { table_name: string }[]) {
          const { rows } = await client.query(
            `SELECT r::text AS row FROM "${place.schema}"."${table_name}" r`,
          );
          out[table_name] = (rows as { row: string }[])
            .map((r) => r.row)
            .sort()
            .join("\n");
        }
      });
      break;
    case "redis":
      await withRedis(async (client) => {
        const keys: string[] = [];
        let cursor = "0";
        do {
          const [next, found] = await client.scan(cursor, "MATCH", `${place.prefix}*`, "COUNT", 1000);
          keys.push(...found);
          cursor = next;
        } while (cursor !== "0");
        for (const key of keys) {
          const type = await client.type(key);
          if (type === "string") out[key] = String(await client.get(key));
          else if (type === "hash")
            out[key] = JSON.stringify(Object.entries(await client.hgetall(key)).sort());
          else if (type === "zset") out[key] = JSON.stringify(await client.zrange(key, 0, -1, "WITHSCORES"));
          else out[key] = `<${type}>`;
        }
      });
  }
  return out;
}
