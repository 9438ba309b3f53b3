/**
 * The stores the benchmark knows. Each is one entry in {@link BENCH_STORES}: how to configure
 * cairn for it, how to fill long runs fast, and its raw floor. Adding postgres or redis later is
 * adding an entry here (plus its raw floor); nothing else needs to know about stores.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";
import {
  openFileFloor,
  openMemoryFloor,
  openSqlite,
  openSqliteFloor,
  type RawFloor,
  SQLITE_STORE_PRAGMAS,
} from "./raw-floors.js";

/** A manager that fills runs with checkpoints quickly, and how to release it. */
export interface Filler {
  manager: CheckpointManager;
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
  rawFloor: "writeFile temp + fsync + rename + fsync folder / readFile + JSON.parse",
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

/** Every store measured by default, in report order. */
export const BENCH_STORES: readonly BenchStore[] = [memory, file, sqlite];

/** The store of that name, or an error listing the known ones. */
export function benchStore(name: string): BenchStore {
  const store = BENCH_STORES.find((s) => s.name === name);
  if (!store) {
    throw new Error(`unknown store "${name}" (known: ${BENCH_STORES.map((s) => s.name).join(", ")})`);
  }
  return store;
}
