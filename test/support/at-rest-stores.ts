/**
 * The stores for at-rest tests (the five of STORE_KINDS, plus s3 and azure in RAW_STORE_KINDS), each opened for one test in a place of its own (a memory
 * store instance, a temporary folder, a schema, a key prefix) and removed after it, with raw
 * access that goes around cairn: every stored byte as a reader of the files, the database or
 * the Redis server sees it, and in-place edits of a stored body, output or key record.
 */

import { mkdtempSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import type { CheckpointRecord } from "../../src/stores/types.js";
import { objectParts } from "./at-rest-objects.js";
import { postgresParts, redisParts } from "./at-rest-servers.js";
import { checkpointFile } from "./file-store.js";
import { azureUp, azureUrl, objectPrefix, s3Up, s3Url } from "./object-servers.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "./services.js";

/** The stores this machine can test: memory, file and sqlite always; postgres and redis when up. */
export const STORE_KINDS = [
  "memory",
  "file",
  "sqlite",
  ...(postgresUp ? ["postgres"] : []),
  ...(redisUp ? ["redis"] : []),
] as const as readonly string[];

/**
 * The stores `openRawStore` opens: STORE_KINDS, and the object stores when their server is up
 * (kept apart because other suites that loop over STORE_KINDS have no raw hooks for them).
 */
export const RAW_STORE_KINDS = [
  ...STORE_KINDS,
  ...(s3Up ? ["s3"] : []),
  ...(azureUp ? ["azure"] : []),
] as const as readonly string[];

/** One piece of what a store holds, as raw bytes, named after where it is. */
export interface RawPiece {
  where: string;
  bytes: Buffer;
}

/** Options of a manager on the test's store (the store itself is given by the helper). */
export type ManagerOptions = Omit<CheckpointManagerOptions, "store" | "strategy" | "config">;

/** One store opened for one test. */
export interface RawStore {
  kind: string;
  /** The store URL (undefined for memory: managers share one instance). */
  url: string | undefined;
  /** A manager on this store; closed by {@link RawStore.close}. */
  manager(options?: ManagerOptions): CheckpointManager;
  /** Everything the store holds, as raw bytes: files, database file and WAL, rows as text, Redis values. */
  dump(): Promise<RawPiece[]>;
  /** A checkpoint's body exactly as stored. */
  body(checkpointId: string): Promise<string>;
  /** Replaces a checkpoint's stored body in place, around cairn. */
  setBody(checkpointId: string, body: string): Promise<void>;
  /** A run's outputs exactly as stored: address → text. */
  outputs(pipelineId: string): Promise<Map<string, string>>;
  /** Replaces one stored output's text in place, around cairn. */
  setOutput(pipelineId: string, hash: string, text: string): Promise<void>;
  /** The run's key record as stored; undefined when there is none. */
  runKey(pipelineId: string): Promise<string | undefined>;
  /** Closes the managers and removes everything the test stored. */
  close(): Promise<void>;
}

/** The bytes of every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<RawPiece[]> {
  const pieces: RawPiece[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    pieces.push({ where: path, bytes: await readFile(path) });
  }
  return pieces;
}

/** The memory store's private maps, read the only way there is: from the instance. */
interface MemoryInternals {
  runs: Map<string, { checkpoints: Map<string, CheckpointRecord>; outputs: Map<string, string> }>;
  keys: Map<string, string>;
}

function memoryParts(instance: MemoryStore) {
  const store = instance as unknown as MemoryInternals;
  const find = (checkpointId: string) => {
    for (const run of store.runs.values()) {
      const record = run.checkpoints.get(checkpointId);
      if (record) return record;
    }
    throw new Error(`no checkpoint ${checkpointId} in the memory store`);
  };
  return {
    async dump() {
      const pieces: RawPiece[] = [];
      for (const [id, run] of store.runs) {
        for (const [cid, record] of run.checkpoints)
          pieces.push({ where: `${id}/${cid}`, bytes: Buffer.from(JSON.stringify(record)) });
        for (const [hash, text] of run.outputs)
          pieces.push({ where: `${id}/${hash}`, bytes: Buffer.from(text) });
      }
      for (const [id, record] of store.keys) pieces.push({ where: `key ${id}`, bytes: Buffer.from(record) });
      return pieces;
    },
    async body(checkpointId: string) {
      return find(checkpointId).body;
    },
    async setBody(checkpointId: string, body: string) {
      find(checkpointId).body = body;
    },
    async outputs(pipelineId: string) {
      return new Map(store.runs.get(pipelineId)?.outputs ?? []);
    },
    async setOutput(pipelineId: string, hash: string, text: string) {
      const outputs = store.runs.get(pipelineId)?.outputs;
      if (!outputs?.has(hash)) throw new Error(`no output ${hash} in run ${pipelineId}`);
      outputs.set(hash, text);
    },
    async runKey(pipelineId: string) {
      return store.keys.get(pipelineId);
    },
  };
}

/** `{"metadata":…,"body":<body>}\n`: the file store's layout (see checkpoint-file.ts). */
const BODY_KEY = ',"body":';

function fileParts(basePath: string) {
  /** The file of a checkpoint, whichever run folder holds it. */
  const fileOf = async (checkpointId: string) => {
    for (const entry of await readdir(basePath, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith(".")) continue;
      if ((await readdir(join(basePath, entry.name))).some((n) => n.endsWith(`-${checkpointId}.json`)))
        return checkpointFile(basePath, entry.name, checkpointId);
    }
    throw new Error(`no file for checkpoint ${checkpointId}`);
  };
  return {
    dump: () => filesUnder(basePath),
    async body(checkpointId: string) {
      const text = await readFile(await fileOf(checkpointId), "utf8");
      return text.slice(text.indexOf(BODY_KEY) + BODY_KEY.length, -2);
    },
    async setBody(checkpointId: string, body: string) {
      const path = await fileOf(checkpointId);
      const text = await readFile(path, "utf8");
      await writeFile(path, `${text.slice(0, text.indexOf(BODY_KEY) + BODY_KEY.length)}${body}}\n`);
    },
    async outputs(pipelineId: string) {
      const dir = join(basePath, pipelineId, "outputs");
      const out = new Map<string, string>();
      for (const name of await readdir(dir)) {
        const match = /^([0-9a-f]{64})\.json$/.exec(name);
        if (match) out.set(match[1] as string, await readFile(join(dir, name), "utf8"));
      }
      return out;
    },
    async setOutput(pipelineId: string, hash: string, text: string) {
      await writeFile(join(basePath, pipelineId, "outputs", `${hash}.json`), text);
    },
    async runKey(pipelineId: string) {
      try {
        return await readFile(join(basePath, pipelineId, "outputs", ".run-key"), "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
    },
  };
}

function sqliteParts(dbPath: string) {
  const withDb = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(dbPath);
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  const rows = (sql: string, ...values: unknown[]) =>
    withDb((db) => db.prepare(sql).all(...values) as Record<string, unknown>[]);
  return {
    async dump() {
      const pieces: RawPiece[] = [];
      // The bytes on disk, not the rows: what a copy of the files gives away.
      for (const suffix of ["", "-wal"]) {
        const bytes = await readFile(`${dbPath}${suffix}`).catch(() => undefined);
        if (bytes) pieces.push({ where: `${dbPath}${suffix}`, bytes });
      }
      return pieces;
    },
    async body(checkpointId: string) {
      const [row] = rows("SELECT body FROM cairn_checkpoints WHERE checkpoint_id = ?", checkpointId);
      if (!row) throw new Error(`no row for checkpoint ${checkpointId}`);
      return String(row.body);
    },
    async setBody(checkpointId: string, body: string) {
      withDb((db) =>
        db.prepare("UPDATE cairn_checkpoints SET body = ? WHERE checkpoint_id = ?").run(body, checkpointId),
      );
    },
    async outputs(pipelineId: string) {
      const found = rows("SELECT hash, body FROM cairn_outputs WHERE pipeline_id = ?", pipelineId);
      return new Map(found.map((r) => [String(r.hash), String(r.body)]));
    },
    async setOutput(pipelineId: string, hash: string, text: string) {
      withDb((db) =>
        db
          .prepare("UPDATE cairn_outputs SET body = ? WHERE pipeline_id = ? AND hash = ?")
          .run(text, pipelineId, hash),
      );
    },
    async runKey(pipelineId: string) {
      const [row] = rows("SELECT record FROM cairn_run_keys WHERE pipeline_id = ?", pipelineId);
      return row === undefined ? undefined : String(row.record);
    },
  };
}

/** Opens a store of `kind` in a place of its own for one test. */
export async function openRawStore(kind: string): Promise<RawStore> {
  const managers: CheckpointManager[] = [];
  let url: string | undefined;
  let instance: MemoryStore | undefined;
  let parts: Omit<RawStore, "kind" | "url" | "manager" | "close">;
  let remove: () => Promise<void>;
  if (kind === "memory") {
    instance = new MemoryStore({ name: "at-rest" });
    parts = memoryParts(instance);
    remove = async () => {};
  } else if (kind === "file" || kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), `cairn-at-rest-${kind}-`));
    if (kind === "file") {
      url = `file:${join(dir, "files")}`;
      parts = fileParts(join(dir, "files"));
    } else {
      url = `sqlite:${join(dir, "c.db")}`;
      parts = sqliteParts(join(dir, "c.db"));
    }
    remove = () => rm(dir, { recursive: true, force: true });
  } else if (kind === "postgres") {
    const schema = uniqueName("cairn_at_rest");
    url = `${POSTGRES_URL}?schema=${schema}`;
    parts = postgresParts(schema);
    remove = () => dropSchemas(schema);
  } else if (kind === "redis") {
    const prefix = `${uniqueName("cairn-at-rest")}:`;
    url = `${REDIS_URL}?keyPrefix=${encodeURIComponent(prefix)}`;
    const redis = redisParts(prefix);
    parts = redis;
    remove = async () => {
      await redis.quit();
      await deleteKeyPrefixes(prefix);
    };
  } else if (kind === "s3" || kind === "azure") {
    url = (kind === "s3" ? s3Url : azureUrl)(objectPrefix("at-rest"));
    const objects = await objectParts(url);
    parts = objects;
    remove = () => objects.removeAll();
  } else throw new Error(`unknown store kind ${kind}`);
  return {
    kind,
    url,
    ...parts,
    manager(options = {}) {
      const manager = new CheckpointManager({ ...options, store: instance ?? (url as string) });
      managers.push(manager);
      return manager;
    },
    async close() {
      for (const manager of managers) await manager.close();
      await remove();
    },
  };
}
