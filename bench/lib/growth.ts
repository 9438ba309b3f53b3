/**
 * Growth: a run of 50 (and, in the full run, 200) stages where each stage adds a ~100 KB output
 * of seeded meter readings, checkpointed after every stage with all outputs so far. Measures the
 * total time of the checkpoint writes and the bytes stored, for cairn on every store and for the
 * LangGraph saver of the same store (one channel per stage, `newVersions` naming only the new
 * channel) and for CairnSaver driven the same way (every store but the object stores), against
 * the sum of the outputs and the naive full-snapshot layout (every checkpoint holding every
 * output so far: computed, not written). Each run is written once, not sampled.
 * The run of `grownResumeStages` stages is then resumed: a fresh reader on each side loads its
 * newest checkpoint, with every output, in interleaved samples.
 */
import { join } from "node:path";
import { CheckpointManager } from "../../src/index.js";
// The Pipeline encodes each stage output once and hands the encoded output to every later
// checkpoint (src/pipeline/execution.ts); the bench does the same, so that cairn's numbers are
// the Pipeline's and not those of a caller who re-encodes every output at every stage.
import { EncodedOutput } from "../../src/manager/build.js";
import { storeBytes } from "./bytes.js";
import { hasSaver, openSaver, SAVER_VARIANT, type SaverHandle, saverDir } from "./cairn-saver.js";
import { compareInRounds, type Variant } from "./measure.js";
import { type MeterReading, makeReadings } from "./payload.js";
import { hasPeer, openPeer, type Peer, PeerThread, peerLatest, peerResume } from "./peer.js";
import type { GrownResume, GrowthRow } from "./results.js";
import type { ScenarioContext } from "./scenarios.js";
import { summarize } from "./stats.js";

const OUTPUT_BYTES = 100 * 1024;
const stageName = (i: number) => `stage_${String(i).padStart(3, "0")}`;

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
      [measure, method] = await storeBytes(ctx.store, dir, manager, runId);
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
      const saverAt = hasSaver(ctx.store.name) ? saverDir(ctx.dir, peerTag) : undefined;
      if (saverAt) await writeSaverGrowth(ctx, row, saverAt, names, outputs);
      // After the bytes are measured, so that no reader's connection or WAL is in them.
      if (stages === ctx.profile.grownResumeStages) {
        const peerAt = peer ? peerTag : undefined;
        row.resume = await measureGrownResume(ctx, dir, runId, stages, peerAt, saverAt);
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
 * The same run as a LangGraph thread through CairnSaver in `dir` (the store's measured
 * configuration): its time and its bytes, measured as cairn's are on this store, into `row`.
 */
async function writeSaverGrowth(
  ctx: ScenarioContext,
  row: GrowthRow,
  dir: string,
  names: string[],
  outputs: MeterReading[][],
): Promise<void> {
  const runId = `growth-${row.stages}`;
  const handle = await openSaver(ctx.store, dir);
  try {
    await peerLatest(handle.saver, runId); // opens (and migrates) the store before the clock starts
    const thread = new PeerThread(handle.saver, runId);
    const start = performance.now();
    for (let i = 0; i < row.stages; i++) await thread.stage(names[i] as string, outputs[i]);
    row.saverSeconds = (performance.now() - start) / 1000;
    const tuple = await peerLatest(handle.saver, runId);
    if (Object.keys(tuple?.checkpoint.channel_values ?? {}).length !== row.stages) {
      throw new Error(`CairnSaver ${runId} does not hold ${row.stages} channels`);
    }
    const { bytes, method } = await handle.bytes(runId);
    row.saverBytes = bytes;
    row.saverBytesMethod = method;
    ctx.log(`growth ${row.stages}: CairnSaver ${row.saverSeconds.toFixed(2)} s, ${bytes} bytes`);
  } finally {
    await handle.close();
  }
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
  saverAt: string | undefined,
): Promise<GrownResume> {
  const manager = new CheckpointManager(ctx.store.options(dir));
  let peer: Peer | undefined;
  let reader: SaverHandle | undefined;
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
      variants.push({ name: "langgraph", run: () => peerResume(saver, runId) });
    }
    if (saverAt !== undefined) {
      reader = await openSaver(ctx.store, saverAt);
      const saver = reader.saver;
      const tuple = await peerLatest(saver, runId);
      if (Object.keys(tuple?.checkpoint.channel_values ?? {}).length !== stages) {
        throw new Error(`CairnSaver ${runId} does not resume with ${stages} channels`);
      }
      variants.push({ name: SAVER_VARIANT, run: () => peerResume(saver, runId) });
    }
    const samples = await compareInRounds(variants, ctx.profile.grownResume);
    const result: GrownResume = {
      cairn: summarize(samples.get("cairn") ?? []),
      cairnDecoded: summarize(samples.get("cairn-decoded") ?? []),
    };
    if (samples.has("langgraph")) result.langgraph = summarize(samples.get("langgraph") ?? []);
    if (samples.has(SAVER_VARIANT)) result.saver = summarize(samples.get(SAVER_VARIANT) ?? []);
    const peerP50 = [
      result.langgraph ? `, LangGraph ${result.langgraph.p50Ms.toFixed(1)} ms` : "",
      result.saver ? `, CairnSaver ${result.saver.p50Ms.toFixed(1)} ms` : "",
    ].join("");
    ctx.log(
      `growth ${stages}: resume p50 cairn ${result.cairn.p50Ms.toFixed(1)} ms (all decoded ${result.cairnDecoded?.p50Ms.toFixed(1)} ms)${peerP50}`,
    );
    return result;
  } finally {
    await manager.close();
    // The reader only: the writer in measureGrowth drops the data.
    await peer?.close();
    await reader?.close();
  }
}
