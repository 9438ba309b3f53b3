/**
 * The stores the benchmark knows. Each is one entry in {@link BENCH_STORES}: how to configure
 * cairn for it, how to fill long runs fast, and its raw floor; server stores also say how to
 * reach the server and how to remove what the bench wrote. Nothing else needs to know about stores.
 */
import { mkdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";
import { azureStore, s3Store } from "./object-stores.js";
import type { ScenarioName } from "./options.js";
import { dropPeerSchemas } from "./peer.js";
import {
  openFileFloor,
  openMemoryFloor,
  openPgPool,
  openPostgresFloor,
  openRedisFloor,
  openSqlite,
  openSqliteFloor,
  type RawFloor,
  SQLITE_STORE_PRAGMAS,
} from "./raw-floors.js";
import {
  type Availability,
  benchKeyPrefix,
  benchSchema,
  deleteRedisKeys,
  driverUrl,
  dropPostgresSchema,
  POSTGRES_URL,
  probePostgres,
  probeRedis,
  REDIS_URL,
  withParams,
} from "./servers.js";

/** A manager that fills runs with checkpoints quickly, and how to release it. */
export interface Filler {
  manager: CheckpointManager;
  /**
   * Called once a run is filled through `manager`, when the manager writes into a staging store
   * (the object stores: see object-stores.ts) and the run must then be moved into the measured one.
   */
  finish?(runId: string): Promise<void>;
  close(): Promise<void>;
}

/** One store under benchmark. */
export interface BenchStore {
  name: string;
  /** What the measured configuration guarantees, for the report. */
  durability: string;
  /** What the raw floor does, for the report. */
  rawFloor: string;
  /** The manager that is measured: the store as a user gets it by default. `dir` is empty. */
  options(dir: string): CheckpointManagerOptions;
  /**
   * A manager writing the same data as `options(dir)` but without waiting for the disk, so that
   * filling a 10,000-checkpoint run for the resume test takes seconds, not minutes. Only setup
   * uses it; every timed operation goes through `options(dir)`.
   */
  openFiller(dir: string): Promise<Filler>;
  /** The bare-driver floor, with the same durability as the store. */
  openRaw(dir: string): Promise<RawFloor>;
  /**
   * Server stores: connects once before anything is measured. Unavailable means the store's
   * rows are skipped (with the reason in the report), not that the bench fails.
   */
  connect?(): Promise<Availability>;
  /** Server stores: removes everything bench process `pid` wrote; says what it removed. */
  cleanup?(pid: number): Promise<string>;
  /** Scenarios not run on this store, each with why (logged and reported, not a failure). */
  skips?: Partial<Record<ScenarioName, string>>;
  /** HTTP stores: the write, read and resume rows also count HTTP requests per operation. */
  countsRequests?: boolean;
  /** Bytes the store holds for the namespace of `dir` (growth), when not measured otherwise. */
  storedBytes?: { method: string; measure(dir: string): Promise<number> };
}

const managerFiller = (options: CheckpointManagerOptions): Filler => {
  const manager = new CheckpointManager(options);
  return { manager, close: () => manager.close() };
};

const memory: BenchStore = {
  name: "memory",
  durability: "none (process memory)",
  rawFloor: "JSON.stringify + Map.set / Map.get + JSON.parse",
  // A named memory store is shared by every manager in the process, so filler and reader meet.
  options: (dir) => ({ strategy: "memory", config: { name: dir } }),
  openFiller: async (dir) => managerFiller(memory.options(dir)),
  openRaw: () => openMemoryFloor(),
};

const file: BenchStore = {
  name: "file",
  durability: "fsync file + rename + fsync folder per write",
  rawFloor:
    "write temp + fsync + rename + fsync folder / read + JSON.parse, the store's system calls (synchronous open, write, rename, read; flushes on the thread pool)",
  options: (dir) => ({ strategy: "file", config: { basePath: join(dir, "checkpoints") } }),
  openFiller: async (dir) =>
    managerFiller({ strategy: "file", config: { basePath: join(dir, "checkpoints"), fsync: false } }),
  openRaw: (dir) => openFileFloor(dir),
};

const sqlite: BenchStore = {
  name: "sqlite",
  durability: "WAL, synchronous=FULL, one transaction per checkpoint",
  rawFloor: "better-sqlite3, same pragmas, one-row INSERT of JSON text / SELECT + JSON.parse",
  options: (dir) => ({ strategy: "sqlite", config: { dbPath: join(dir, "cairn.db") } }),
  openFiller: async (dir) => {
    // The store adopts a caller's connection with the caller's pragmas: here, no fsync per commit.
    const pragmas = SQLITE_STORE_PRAGMAS.map((p) => p.replace("synchronous = FULL", "synchronous = OFF"));
    await mkdir(dir, { recursive: true });
    const db = await openSqlite(join(dir, "cairn.db"), pragmas);
    const manager = new CheckpointManager({ strategy: "sqlite", config: { database: db } });
    return {
      manager,
      close: async () => {
        await manager.close();
        db.close();
      },
    };
  },
  openRaw: (dir) => openSqliteFloor(dir),
};

/**
 * The name a scenario folder gives a server namespace: each scenario gets its own tables or
 * keys, as it gets its own folder on the embedded stores (`.../write` → `write`).
 */
const tag = (dir: string) => basename(dir).replace(/[^A-Za-z0-9_]/g, "_");

// Server stores write into the namespace of the process that measures them (see servers.ts).
const schema = () => benchSchema(process.pid);

const postgres: BenchStore = {
  name: "postgres",
  durability: "one transaction per checkpoint, the server's default synchronous_commit",
  rawFloor:
    "pg Pool, autocommitted single-row INSERT of the JSON text into a TEXT column (lz4, as the store's) / SELECT by primary key + JSON.parse",
  connect: () => probePostgres(POSTGRES_URL),
  options: (dir) => ({
    strategy: "postgres",
    config: {
      connectionString: withParams(POSTGRES_URL, { schema: schema(), tablePrefix: `${tag(dir)}_` }),
    },
  }),
  openFiller: async (dir) => {
    // The store adopts a caller's pool; this one's sessions commit without waiting for the WAL
    // flush (synchronous_commit=off). Same rows, same tables; only the commit wait is gone.
    const pool = await openPgPool(driverUrl(POSTGRES_URL), "cairn-bench-fill");
    pool.on("connect", (client) => {
      client.query("SET synchronous_commit = off").catch(() => {});
    });
    const manager = new CheckpointManager({
      strategy: "postgres",
      config: { pool, schema: schema(), tablePrefix: `${tag(dir)}_` },
    });
    return {
      manager,
      close: async () => {
        await manager.close();
        await pool.end();
      },
    };
  },
  openRaw: (dir) => openPostgresFloor(driverUrl(POSTGRES_URL), schema(), `${tag(dirname(dir))}_${tag(dir)}`),
  cleanup: async (pid) =>
    `${await dropPostgresSchema(POSTGRES_URL, benchSchema(pid))}; ${await dropPeerSchemas(pid)}`,
};

const redis: BenchStore = {
  name: "redis",
  durability: "one Lua script per checkpoint; the server's persistence configuration",
  rawFloor: "one ioredis client, SET key json / GET + JSON.parse",
  connect: () => probeRedis(REDIS_URL),
  options: (dir) => ({
    strategy: "redis",
    config: { url: withParams(REDIS_URL, { keyPrefix: `${benchKeyPrefix(process.pid)}${tag(dir)}:` }) },
  }),
  // Redis has no per-client durability setting to relax (persistence is the server's), so runs
  // are filled through the measured configuration.
  openFiller: async (dir) => managerFiller(redis.options(dir)),
  openRaw: (dir) =>
    openRedisFloor(driverUrl(REDIS_URL), `${benchKeyPrefix(process.pid)}${tag(dirname(dir))}:${tag(dir)}:`),
  cleanup: (pid) => deleteRedisKeys(REDIS_URL, benchKeyPrefix(pid)),
};

/** Every store measured by default, in report order. */
export const BENCH_STORES: readonly BenchStore[] = [
  memory,
  file,
  sqlite,
  postgres,
  redis,
  s3Store,
  azureStore,
];

/** The store of that name, or an error listing the known ones. */
export function benchStore(name: string): BenchStore {
  const store = BENCH_STORES.find((s) => s.name === name);
  if (!store) {
    throw new Error(`unknown store "${name}" (known: ${BENCH_STORES.map((s) => s.name).join(", ")})`);
  }
  return store;
}
