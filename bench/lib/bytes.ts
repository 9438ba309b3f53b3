/**
 * Bytes a store holds for a run, measured the same way wherever the bench reports them (growth,
 * at rest, CairnSaver's growth rows): files on disk, relation sizes, or the store API.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { CheckpointManager } from "../../src/index.js";
import { openPgPool } from "./raw-floors.js";
import { benchSchema, driverUrl, POSTGRES_URL } from "./servers.js";
import type { BenchStore } from "./stores.js";

/** Sum of the sizes of every file under `dir` (what `du --apparent-size` counts). */
export async function folderBytes(dir: string): Promise<number> {
  let sum = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) sum += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return sum;
}

/** Logical bytes through the store API: every checkpoint body plus every stored output. */
async function logicalBytes(manager: CheckpointManager, runId: string): Promise<number> {
  const store = await manager.getStore();
  let sum = 0;
  for (const listed of await store.listCheckpoints(runId)) {
    if (!listed.ok) throw new Error(`corrupt checkpoint in ${runId}`);
    const record = await store.getCheckpoint(listed.metadata.checkpoint_id);
    sum += Buffer.byteLength(record?.body ?? "");
  }
  const outputs = await store.getOutputs(runId, await store.listOutputHashes(runId));
  for (const body of outputs.values()) sum += Buffer.byteLength(body);
  return sum;
}

/** pg_total_relation_size of the tables of `schema` whose name starts with `prefix`. */
export async function postgresBytes(schema: string, prefix: string): Promise<number> {
  const pool = await openPgPool(driverUrl(POSTGRES_URL), "cairn-bench-size");
  try {
    const { rows } = await pool.query(
      `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind = 'r' AND left(c.relname, length($2)) = $2`,
      [schema, prefix],
    );
    return Number((rows[0] as { bytes: string }).bytes);
  } finally {
    await pool.end();
  }
}

/** cairn's bytes for the run in `dir` (measured after the manager is closed), and how. */
export async function cairnBytes(
  store: string,
  dir: string,
  manager: CheckpointManager,
  runId: string,
): Promise<[() => Promise<number>, string]> {
  switch (store) {
    case "file":
      return [() => folderBytes(join(dir, "checkpoints")), "sum of file sizes in the store folder"];
    case "sqlite":
      // Closing the last connection checkpoints the WAL into the database file.
      return [() => folderBytes(dir), "database file size after close (WAL checkpointed)"];
    case "postgres": {
      const prefix = `${dir
        .split("/")
        .at(-1)
        ?.replace(/[^A-Za-z0-9_]/g, "_")}_`;
      return [
        () => postgresBytes(benchSchema(process.pid), prefix),
        "pg_total_relation_size of the store's tables (TOAST lz4)",
      ];
    }
    default: {
      // Memory and Redis: measured before close, through the store API.
      const bytes = await logicalBytes(manager, runId);
      return [async () => bytes, "checkpoint bodies + stored outputs (logical)"];
    }
  }
}

/**
 * `store`'s bytes for `runId` in `dir`, and how they were measured: the store's own measure when
 * it has one, else {@link cairnBytes}. Call the returned function after the store is closed.
 */
export async function storeBytes(
  store: BenchStore,
  dir: string,
  manager: CheckpointManager,
  runId: string,
): Promise<[() => Promise<number>, string]> {
  const stored = store.storedBytes;
  return stored ? [() => stored.measure(dir), stored.method] : cairnBytes(store.name, dir, manager, runId);
}
