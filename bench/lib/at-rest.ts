/**
 * At rest (issue 13): what compression and encryption cost and save on each store.
 * - Bytes: the growth run (200 stages of ~100 KB in the full profile) written twice, plain and
 *   with the recommended compression (`compression: true`), and the bytes each leaves in the
 *   store, against the sum of its outputs.
 * - Time: checkpoint write and latest-checkpoint read of the 10 KB and 1 MB payloads with the
 *   layer off, with `compression: true`, and with encryption on (compression off), interleaved
 *   in the same rounds so that their ratios come from one run.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";
import { EncodedOutput } from "../../src/manager/build.js";
import {
  type CompressionAlgorithm,
  type CompressionSetting,
  type ResolvedCompression,
  resolveCompression,
} from "../../src/transforms/compression.js";
import { folderBytes, postgresBytes } from "./bytes.js";
import { compareInRounds, type Variant } from "./measure.js";
import { planFor } from "./options.js";
import { type MeterReading, makeReadings, stamp } from "./payload.js";
import { type Row, toRows } from "./results.js";
import type { ScenarioContext } from "./scenarios.js";
import { payloadCheckpoint } from "./scenarios.js";
import { benchKeyPrefix, benchSchema, REDIS_URL, redisKeyBytes } from "./servers.js";

/** Bytes one growth run leaves in the store, plain and compressed. */
export interface AtRestGrowth {
  stages: number;
  /** Bytes of the outputs' JSON, each counted once. */
  outputBytes: number;
  plainBytes: number;
  compressedBytes: number;
  /** How the bytes were measured on this store. */
  method: string;
  /** SQLite: the bytes of the body columns alone (checkpoint bodies and outputs), without page slack. */
  plainDataBytes?: number;
  compressedDataBytes?: number;
}

/** The at-rest measurements of one store. */
export interface AtRestResult {
  store: string;
  /** What `compression: true` resolved to, e.g. `gzip level 6, minBytes 1024`. */
  compression: string;
  growth?: AtRestGrowth;
  /** Cases `write 10 KB`, `write 1 MB`, `read 10 KB`, `read 1 MB`; variants off, compressed, encrypted. */
  rows: Row[];
  /** Why the encrypted variant was not measured (the store has no run key records). */
  encryptionSkipped?: string;
}

/** The variants' names in the rows. */
export const AT_REST_VARIANTS = { off: "off", compressed: "compressed", encrypted: "encrypted" } as const;

type Layer = keyof typeof AT_REST_VARIANTS;

const OUTPUT_BYTES = 100 * 1024;
const stageName = (i: number) => `stage_${String(i).padStart(3, "0")}`;

/**
 * The compression measured: `true` (the recommended one), or `CAIRN_BENCH_COMPRESSION=algorithm`
 * or `algorithm:level` to compare another on the same rows.
 */
function compressionSetting(): CompressionSetting {
  const chosen = process.env.CAIRN_BENCH_COMPRESSION;
  if (!chosen) return true;
  const [algorithm, level] = chosen.split(":");
  return { algorithm: algorithm as CompressionAlgorithm, ...(level ? { level: Number(level) } : {}) };
}

/** The store's measured configuration with the layer set as `layer` says. */
function optionsFor(ctx: ScenarioContext, dir: string, layer: Layer): CheckpointManagerOptions {
  const base = ctx.store.options(dir);
  if (layer === "compressed") return { ...base, compression: compressionSetting() };
  if (layer === "encrypted")
    return { ...base, encryption: { keys: { k1: randomBytes(32) }, activeKeyId: "k1" } };
  return base;
}

/** SQLite: sum of the stored lengths of the checkpoint and output bodies (what the rows hold). */
async function sqliteDataBytes(dir: string): Promise<number> {
  const { default: Database } = await import("better-sqlite3");
  const db = new Database(join(dir, "cairn.db"), { readonly: true });
  try {
    const tables = db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE '%checkpoints' OR name LIKE '%outputs')",
      )
      .all() as { name: string }[];
    let bytes = 0;
    for (const { name } of tables) {
      const row = db
        .prepare(`SELECT coalesce(sum(length(CAST(body AS BLOB))), 0) AS n FROM "${name}"`)
        .get() as {
        n: number;
      };
      bytes += row.n;
    }
    return bytes;
  } finally {
    db.close();
  }
}

/** The stores whose bytes are measured, and how: what the store holds, never what the API returns. */
function bytesOf(
  ctx: ScenarioContext,
  dir: string,
): { method: string; measure: () => Promise<number> } | undefined {
  const name = dir.split("/").at(-1) ?? "";
  switch (ctx.store.name) {
    case "file":
      return {
        method: "sum of file sizes in the store folder",
        measure: () => folderBytes(join(dir, "checkpoints")),
      };
    case "sqlite":
      // Closing the last connection checkpoints the WAL into the database file.
      return { method: "database file size after close (WAL checkpointed)", measure: () => folderBytes(dir) };
    case "redis":
      return {
        method: "sum of MEMORY USAGE of the run's keys",
        measure: () => redisKeyBytes(REDIS_URL, `${benchKeyPrefix(process.pid)}${name}:`),
      };
    case "postgres":
      return {
        method: "pg_total_relation_size of the store's tables (TOAST lz4 on top)",
        measure: () => postgresBytes(benchSchema(process.pid), `${name}_`),
      };
    default: {
      // Object stores: what the bucket holds under the store's prefix; memory: nothing outside the process.
      const stored = ctx.store.storedBytes;
      return stored ? { method: stored.method, measure: () => stored.measure(dir) } : undefined;
    }
  }
}

/** Writes a growth run of `outputs` through `options`; returns the bytes the store holds after close. */
async function growthRun(
  options: CheckpointManagerOptions,
  outputs: MeterReading[][],
  measure: () => Promise<number>,
): Promise<number> {
  const manager = new CheckpointManager(options);
  try {
    const names = outputs.map((_, i) => stageName(i));
    const encoded: Record<string, EncodedOutput> = {};
    for (const [i, output] of outputs.entries()) {
      const name = names[i] as string;
      encoded[name] = EncodedOutput.of(output, `agentOutputs.${name}`);
      await manager.createCheckpoint({
        pipelineId: "growth",
        stageName: name,
        stageIndex: i,
        stateData: { source: "meters/2024.csv", stage: i },
        completedStages: names.slice(0, i + 1),
        pendingStages: names.slice(i + 1),
        agentOutputs: encoded,
      });
    }
    const latest = await manager.loadLatestCheckpoint("growth");
    if (Object.keys(latest?.agentOutputs ?? {}).length !== outputs.length) {
      throw new Error(`the growth run does not hold ${outputs.length} outputs`);
    }
  } finally {
    await manager.close();
  }
  return measure();
}

async function measureGrowthBytes(ctx: ScenarioContext): Promise<AtRestGrowth | undefined> {
  const plainDir = join(ctx.dir, "atrest_growth_plain");
  const packedDir = join(ctx.dir, "atrest_growth_z");
  const plainBytes = bytesOf(ctx, plainDir);
  const packedBytes = bytesOf(ctx, packedDir);
  if (!plainBytes || !packedBytes) return undefined;
  const stages = Math.max(...ctx.profile.growthStages);
  const outputs = Array.from({ length: stages }, (_, i) => makeReadings(OUTPUT_BYTES, 7000 + i));
  const outputBytes = outputs.reduce((sum, o) => sum + Buffer.byteLength(JSON.stringify(o)), 0);
  ctx.log(`at rest: growth ${stages}, plain and compressed`);
  const growth: AtRestGrowth = {
    stages,
    outputBytes,
    plainBytes: await growthRun(optionsFor(ctx, plainDir, "off"), outputs, plainBytes.measure),
    compressedBytes: await growthRun(optionsFor(ctx, packedDir, "compressed"), outputs, packedBytes.measure),
    method: plainBytes.method,
  };
  if (ctx.store.name === "sqlite") {
    growth.plainDataBytes = await sqliteDataBytes(plainDir);
    growth.compressedDataBytes = await sqliteDataBytes(packedDir);
  }
  ctx.log(
    `at rest: growth ${stages}: plain ${growth.plainBytes} bytes, compressed ${growth.compressedBytes} bytes`,
  );
  return growth;
}

/**
 * Writes and reads with the layer off, compressed and encrypted, interleaved in rounds. A store
 * without run key records cannot hold encrypted runs: its encrypted variant is skipped, with why.
 */
async function measureTimes(ctx: ScenarioContext): Promise<{ rows: Row[]; encryptionSkipped?: string }> {
  const layers: Layer[] = [];
  const managers = new Map<Layer, CheckpointManager>();
  let encryptionSkipped: string | undefined;
  for (const layer of Object.keys(AT_REST_VARIANTS) as Layer[]) {
    const opened = new CheckpointManager(optionsFor(ctx, join(ctx.dir, `atrest_${layer}`), layer));
    try {
      await opened.getStore();
    } catch (error) {
      await opened.close();
      if (layer !== "encrypted") throw error;
      encryptionSkipped = (error as Error).message;
      ctx.log(`at rest: encrypted variant skipped: ${encryptionSkipped}`);
      continue;
    }
    managers.set(layer, opened);
    layers.push(layer);
  }
  const manager = (layer: Layer) => managers.get(layer) as CheckpointManager;
  const rows: Row[] = [];
  try {
    for (const payload of ctx.payloads) {
      ctx.log(`at rest: write ${payload.label}`);
      let sample = 0;
      const prepare = (n: number) => {
        sample = n;
        stamp(payload, n);
      };
      const writes: Variant[] = layers.map((layer) => {
        let runId = "";
        return {
          name: AT_REST_VARIANTS[layer],
          // A fresh run per round keeps the history short, as in the write scenario.
          beforeRound: (round: number) => {
            runId = `atrest-write-${payload.key}-r${round}`;
          },
          prepare,
          run: () => manager(layer).createCheckpoint(payloadCheckpoint(runId, payload, sample)),
        };
      });
      rows.push(
        ...toRows(
          "atrest",
          ctx.store.name,
          `write ${payload.label}`,
          await compareInRounds(writes, planFor(ctx.profile, payload)),
        ),
      );

      ctx.log(`at rest: read ${payload.label}`);
      const id = `atrest-read-${payload.key}`;
      stamp(payload, 0);
      for (const layer of layers) await manager(layer).createCheckpoint(payloadCheckpoint(id, payload, 0));
      const reads: Variant[] = layers.map((layer) => ({
        name: AT_REST_VARIANTS[layer],
        // As the read scenario: the timed read includes decoding the payload.
        run: async () => {
          const records = (await manager(layer).loadLatestCheckpoint(id))?.agentOutputs.transform;
          if (!Array.isArray(records) || records.length !== payload.records.length) {
            throw new Error(`the ${layer} read did not return the ${payload.records.length} records written`);
          }
          return records;
        },
      }));
      rows.push(
        ...toRows(
          "atrest",
          ctx.store.name,
          `read ${payload.label}`,
          await compareInRounds(reads, planFor(ctx.profile, payload)),
        ),
      );
    }
  } finally {
    for (const m of managers.values()) await m.close();
  }
  return encryptionSkipped ? { rows, encryptionSkipped } : { rows };
}

/** The at-rest scenario on one store. */
export async function measureAtRest(ctx: ScenarioContext): Promise<AtRestResult> {
  const setting = compressionSetting();
  const resolved = resolveCompression(setting) as ResolvedCompression;
  const compression = `${setting === true ? "`true`: " : ""}${resolved.algorithm} level ${resolved.level}, minBytes ${resolved.minBytes}`;
  const growth = await measureGrowthBytes(ctx);
  const times = await measureTimes(ctx);
  return { store: ctx.store.name, compression, ...(growth ? { growth } : {}), ...times };
}
