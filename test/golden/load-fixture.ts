/**
 * Loads one store of one golden fixture version into a place of its own — a copy of the folder
 * or database file, a new PostgreSQL schema, a new Redis prefix, a new memory store — and gives
 * managers on it. The committed fixture files are only ever read.
 */
import { randomBytes } from "node:crypto";
import { copyFile, cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CheckpointManager,
  type CheckpointManagerOptions,
  type EncryptionOptions,
  keyFileOptions,
  repairCheckpoint,
} from "../../src/index.js";
import type { CheckpointRecord } from "../../src/stores/types.js";
import { type AtRest, type Expected, GOLDEN_COMPRESSION } from "../fixtures/golden/runs.js";
import { deleteRedisPrefix, loadPostgres, loadRedis, runSql } from "../fixtures/golden/stores.js";
import { POSTGRES_URL, postgresUp, REDIS_URL, redisUp, uniqueName } from "../support/services.js";

/** The store kinds of the fixtures. */
export const GOLDEN_KINDS: readonly string[] = ["memory", "file", "sqlite", "postgres", "redis"];

/** Whether this machine can load `kind` (postgres and redis need their server; see services.ts). */
export const kindAvailable = (kind: string): boolean =>
  kind === "postgres" ? postgresUp : kind === "redis" ? redisUp : true;

/** A fixture version folder, read. */
export interface FixtureVersion {
  name: string;
  dir: string;
  expected: Expected;
  /** The key ring of the encrypted run (from the committed test-only key file). */
  ring: EncryptionOptions;
}

/** Reads `expected.json` and the key file of a version folder. */
export async function readVersion(dir: string, name: string): Promise<FixtureVersion> {
  const expected = JSON.parse(await readFile(join(dir, "expected.json"), "utf8")) as Expected;
  const keyPath = join(dir, expected.keyFile);
  return { name, dir, expected, ring: keyFileOptions(await readFile(keyPath, "utf8"), keyPath) };
}

/**
 * What a manager is for: writing to a run with its own at-rest settings (`plain`, `compressed`,
 * `encrypted`), reading every run (`reader`: the key ring, which also reads plain runs), or
 * reading without any key (`keyless`).
 */
export type ManagerUse = AtRest | "reader" | "keyless";

/** One fixture store loaded into a private place. */
export interface LoadedStore {
  kind: string;
  /** A folder of the test's own, removed on close. */
  tmp: string;
  /** The store's URL. */
  url: string;
  /** A manager on the store (see {@link ManagerUse}; default `reader`). */
  manager(use?: ManagerUse): CheckpointManager;
  close(): Promise<void>;
}

/** The memory store's private map, edited the only way there is: on the instance. */
interface MemoryInternals {
  runs: Map<string, { checkpoints: Map<string, CheckpointRecord> }>;
}

/** Loads `kind` of `version` into a new private place. */
export async function loadStore(version: FixtureVersion, kind: string): Promise<LoadedStore> {
  const tmp = await mkdtemp(join(tmpdir(), `cairn-golden-${kind}-`));
  const managers: CheckpointManager[] = [];
  let url: string;
  let remove = async () => {};
  const manager = (use: ManagerUse = "reader") => {
    const options: CheckpointManagerOptions = { store: url };
    if (use === "compressed") options.compression = GOLDEN_COMPRESSION;
    // Only a run's own settings when writing: a manager with a ring seals what it imports.
    if (use === "encrypted" || use === "reader") options.encryption = version.ring;
    const m = new CheckpointManager(options);
    managers.push(m);
    return m;
  };
  if (kind === "file") {
    await cp(join(version.dir, "file"), join(tmp, "file"), { recursive: true });
    url = `file:${join(tmp, "file")}`;
  } else if (kind === "sqlite") {
    await copyFile(join(version.dir, "sqlite", "cairn.db"), join(tmp, "cairn.db"));
    url = `sqlite:${join(tmp, "cairn.db")}`;
  } else if (kind === "postgres") {
    const schema = uniqueName("cairn_golden");
    remove = () => runSql(POSTGRES_URL, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await loadPostgres(POSTGRES_URL, await readFile(join(version.dir, "postgres.sql"), "utf8"), schema);
    url = `${POSTGRES_URL}?schema=${schema}`;
  } else if (kind === "redis") {
    const prefix = `${uniqueName("cairn-golden")}:`;
    remove = () => deleteRedisPrefix(REDIS_URL, prefix);
    await loadRedis(REDIS_URL, await readFile(join(version.dir, "redis.jsonl"), "utf8"), prefix);
    url = `${REDIS_URL}?keyPrefix=${encodeURIComponent(prefix)}`;
  } else if (kind === "memory") {
    url = `memory:golden-${randomBytes(6).toString("hex")}`;
    await importExports(version, manager, tmp);
  } else throw new Error(`unknown store kind ${kind}`);
  return {
    kind,
    tmp,
    url,
    manager,
    async close() {
      await Promise.all(managers.splice(0).map((m) => m.close()));
      await remove();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/**
 * The memory store has no stored form but the exports: import them, each run with its at-rest
 * settings, then repeat the raw edit and the quarantine the other stores hold (an export never
 * carries a tampered checkpoint: exporting verifies).
 */
async function importExports(
  version: FixtureVersion,
  manager: (atRest: AtRest) => CheckpointManager,
  tmp: string,
): Promise<void> {
  for (const run of version.expected.runs) {
    const m = manager(run.atRest);
    await m.importPipeline(join(version.dir, "export", `${run.pipelineId}.json`));
    if (!run.tamper) continue;
    const store = (await m.getStore()).inner.inner as unknown as MemoryInternals;
    const record = store.runs.get(run.pipelineId)?.checkpoints.get(run.tamper.checkpointId);
    if (!record) throw new Error(`no checkpoint ${run.tamper.checkpointId} in the memory store`);
    if (!record.body.includes(run.tamper.find)) throw new Error("the tamper's text is not in the body");
    record.body = record.body.replace(run.tamper.find, run.tamper.replace);
    if (!run.tamper.quarantine) continue;
    const report = await repairCheckpoint(m, run.tamper.checkpointId, { backupDir: join(tmp, "backups") });
    if (report.status !== "quarantined")
      throw new Error(`repair of ${run.tamper.checkpointId}: ${report.status}`);
  }
}
