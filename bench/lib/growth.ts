/**
 * Growth: a run of 50 (and, in the full run, 200) stages where each stage adds a ~100 KB output
 * of seeded meter readings, checkpointed after every stage with all outputs so far. Measures the
 * total time of the checkpoint writes and the bytes stored, for cairn on every store and for the
 * LangGraph saver of the same store (one channel per stage, `newVersions` naming only the new
 * channel), against the sum of the outputs and the naive full-snapshot layout (every checkpoint
 * holding every output so far: computed, not written). Each run is written once, not sampled.
 * The run of `grownResumeStages` stages is then resumed: a fresh reader on each side loads its
 * newest checkpoint, with every output, in interleaved samples.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointManager } from "../../src/index.js";
// The Pipeline encodes each stage output once and hands the encoded output to every later
// checkpoint (src/pipeline/execution.ts); the bench does the same, so that cairn's numbers are
// the Pipeline's and not those of a caller who re-encodes every output at every stage.
import { EncodedOutput } from "../../src/manager/build.js";
import { compareInRounds, type Variant } from "./measure.js";
import { type MeterReading, makeReadings } from "./payload.js";
import { hasPeer, openPeer, type Peer, PeerThread, peerLatest } from "./peer.js";
import { openPgPool } from "./raw-floors.js";
import type { GrownResume, GrowthRow } from "./results.js";
import type { ScenarioContext } from "./scenarios.js";
import { benchSchema, driverUrl, POSTGRES_URL } from "./servers.js";
import { summarize } from "./stats.js";

const OUTPUT_BYTES = 100 * 1024;
const stageName = (i: number) => `stage_${String(i).padStart(3, "0")}`;

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
async function cairnBytes(
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

/** The growth runs of one store. */
export async function measureGrowth(ctx: ScenarioContext): Promise<GrowthRow[]> {
  const most = Math.max(...ctx.profile.growthStages);
  const outputs: MeterReading[][] = Array.from({ length: most }, (_, i) =>
    makeReadings(OUTPUT_BYTES, 7000 + i),
  );
  const sizes = outputs.map((o) => Buffer.byteLength(JSON.stringify(o)));
  const rows: GrowthRow[] = [];
  for (const stages of ctx.profile.growthStages) {
    const dir = join(ctx.dir, `growth_${stages}`);
    const runId = `growth-${stages}`;
    const names = Array.from({ length: stages }, (_, i) => stageName(i));
    let outputBytes = 0;
    let naiveBytes = 0;
    for (let i = 0; i < stages; i++) {
      outputBytes += sizes[i] as number;
      naiveBytes += outputBytes;
    }

    const manager = new CheckpointManager(ctx.store.options(dir));
    let cairnSeconds: number;
    let measure: () => Promise<number>;
    let method: string;
    try {
      await manager.getStore(); // open and migrate before the clock starts, as LangGraph's setup()
      const start = performance.now();
      const encoded: Record<string, EncodedOutput> = {};
      for (let i = 0; i < stages; i++) {
        const name = names[i] as string;
        encoded[name] = EncodedOutput.of(outputs[i], `agentOutputs.${name}`);
        await manager.createCheckpoint({
          pipelineId: runId,
          stageName: name,
          stageIndex: i,
          stateData: { source: "meters/2024.csv", stage: i },
          completedStages: names.slice(0, i + 1),
          pendingStages: names.slice(i + 1),
          agentOutputs: encoded,
        });
      }
      cairnSeconds = (performance.now() - start) / 1000;
      const latest = await manager.loadLatestCheckpoint(runId);
      if (Object.keys(latest?.agentOutputs ?? {}).length !== stages) {
        throw new Error(`cairn ${runId} does not hold ${stages} outputs`);
      }
      const stored = ctx.store.storedBytes;
      [measure, method] = stored
        ? [() => stored.measure(dir), stored.method]
        : await cairnBytes(ctx.store.name, dir, manager, runId);
    } finally {
      await manager.close();
    }
    const row: GrowthRow = {
      store: ctx.store.name,
      stages,
      outputBytes,
      naiveBytes,
      cairnSeconds,
      cairnBytes: await measure(),
      cairnBytesMethod: method,
    };
    ctx.log(`growth ${stages}: cairn ${cairnSeconds.toFixed(2)} s, ${row.cairnBytes} bytes`);

    const peerTag = `growth_${stages}`;
    let peer: Peer | undefined;
    try {
      if (hasPeer(ctx.store.name)) {
        peer = await openPeer(ctx.store.name, join(dir, "langgraph"), peerTag);
        const thread = new PeerThread(peer.saver, runId);
        const start = performance.now();
        for (let i = 0; i < stages; i++) await thread.stage(names[i] as string, outputs[i]);
        row.langgraphSeconds = (performance.now() - start) / 1000;
        const tuple = await peerLatest(peer.saver, runId);
        if (Object.keys(tuple?.checkpoint.channel_values ?? {}).length !== stages) {
          throw new Error(`LangGraph ${runId} does not hold ${stages} channels`);
        }
        if (ctx.store.name === "sqlite") await peer.close();
        row.langgraphBytes = await peer.bytes();
        row.langgraphBytesMethod = {
          memory: "serialized checkpoints + metadata held by MemorySaver",
          sqlite: "database file size after close (WAL checkpointed)",
          postgres: "pg_total_relation_size of its schema's tables (TOAST pglz)",
        }[ctx.store.name];
        ctx.log(
          `growth ${stages}: LangGraph ${row.langgraphSeconds?.toFixed(2)} s, ${row.langgraphBytes} bytes`,
        );
      }
      // After the bytes are measured, so that no reader's connection or WAL is in them.
      if (stages === ctx.profile.grownResumeStages) {
        row.resume = await measureGrownResume(ctx, dir, runId, stages, peer ? peerTag : undefined);
      }
    } finally {
      // The writer's data (the PostgreSQL schema, the MemorySaver) goes only after the resume.
      await peer?.close({ drop: true });
    }
    rows.push(row);
  }
  return rows;
}

/**
 * Resume on a grown run: loads the newest checkpoint of `runId` with all `stages` outputs, as a
 * run resuming in a new process would. The readers are fresh (a new CheckpointManager on the
 * measured configuration; LangGraph's default saver, on `peerTag`'s tables), so only what the
 * store itself keeps (page cache, shared buffers, the named memory store) is warm.
 */
async function measureGrownResume(
  ctx: ScenarioContext,
  dir: string,
  runId: string,
  stages: number,
  peerTag: string | undefined,
): Promise<GrownResume> {
  const manager = new CheckpointManager(ctx.store.options(dir));
  let peer: Peer | undefined;
  try {
    // Checked once, untimed (this also opens the store), so a broken resume is never timed as a fast one.
    const latest = await manager.loadLatestCheckpoint(runId);
    if (Object.keys(latest?.agentOutputs ?? {}).length !== stages) {
      throw new Error(`cairn ${runId} does not resume with ${stages} outputs`);
    }
    // cairn verifies every output at load and decodes one when it is read: timed both ways, so
    // the load that decodes everything is the one set against LangGraph's, which always does.
    const variants: Variant[] = [
      { name: "cairn", run: () => manager.loadLatestCheckpoint(runId) },
      {
        name: "cairn-decoded",
        run: async () => {
          const loaded = await manager.loadLatestCheckpoint(runId);
          if (Object.values(loaded?.agentOutputs ?? {}).length !== stages) throw new Error("outputs lost");
        },
      },
    ];
    if (peerTag !== undefined) {
      peer = await openPeer(ctx.store.name, join(dir, "langgraph"), peerTag);
      const saver = peer.saver;
      const tuple = await peerLatest(saver, runId);
      if (Object.keys(tuple?.checkpoint.channel_values ?? {}).length !== stages) {
        throw new Error(`LangGraph ${runId} does not resume with ${stages} channels`);
      }
      variants.push({ name: "langgraph", run: () => peerLatest(saver, runId) });
    }
    const samples = await compareInRounds(variants, ctx.profile.grownResume);
    const result: GrownResume = {
      cairn: summarize(samples.get("cairn") ?? []),
      cairnDecoded: summarize(samples.get("cairn-decoded") ?? []),
    };
    if (samples.has("langgraph")) result.langgraph = summarize(samples.get("langgraph") ?? []);
    const peerP50 = result.langgraph ? `, LangGraph ${result.langgraph.p50Ms.toFixed(1)} ms` : "";
    ctx.log(
      `growth ${stages}: resume p50 cairn ${result.cairn.p50Ms.toFixed(1)} ms (all decoded ${result.cairnDecoded?.p50Ms.toFixed(1)} ms)${peerP50}`,
    );
    return result;
  } finally {
    await manager.close();
    // The reader only: the writer in measureGrowth drops the data.
    await peer?.close();
  }
}
