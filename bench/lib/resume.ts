/**
 * Resume by run length: `loadLatestCheckpoint` on runs of 10, 1,000 (and 10,000) checkpoints,
 * interleaved; on the stores with a LangGraph saver the same runs as LangGraph threads
 * (`langgraph`), and on every store CairnSaver's (`cairn-saver`), read with `getTuple`.
 */
import { join } from "node:path";
import { CheckpointManager, type CreateCheckpointInput } from "../../src/index.js";
import { hasSaver, openSaver, SAVER_VARIANT, type SaverHandle, saverDir } from "./cairn-saver.js";
import { compareInRounds, type Variant } from "./measure.js";
import { hasPeer, openPeer, type Peer, PeerThread, peerLatest, peerResume } from "./peer.js";
import { requestsPerOp, type Sent, sentText } from "./requests.js";
import type { Row } from "./results.js";
import { COUNTED_OPS, type ScenarioContext } from "./scenarios.js";
import { summarize } from "./stats.js";

const RESUME_STAGES = Array.from({ length: 10 }, (_, i) => `stage-${i}`);

/**
 * Checkpoint `i` of a long run: a 10-stage pipeline run over and over in one run, small state,
 * the outputs of the stages completed so far in this pass (at most 10 small objects). Earlier
 * outputs repeat their parent's, so cairn stores only the new stage's output, as in a real run.
 */
function smallCheckpoint(pipelineId: string, i: number): CreateCheckpointInput {
  const index = i % RESUME_STAGES.length;
  const pass = Math.floor(i / RESUME_STAGES.length);
  const agentOutputs: Record<string, unknown> = {};
  for (let j = 0; j <= index; j++) agentOutputs[`stage-${j}`] = { pass, rows: 100 + j, status: "ok" };
  return {
    pipelineId,
    stageName: RESUME_STAGES[index] as string,
    stageIndex: index,
    stateData: { source: "meters/2024.csv", cursor: i },
    completedStages: RESUME_STAGES.slice(0, index + 1),
    pendingStages: RESUME_STAGES.slice(index + 1),
    agentOutputs,
  };
}

/** loadLatestCheckpoint on runs of 10, 1,000 (and 10,000) checkpoints, interleaved. */
export async function measureResume(ctx: ScenarioContext): Promise<Row[]> {
  const dir = join(ctx.dir, "resume");
  const sizes = ctx.profile.resumeSizes;
  const runId = (n: number) => `resume-${n}`;
  const fillSeconds = new Map<number, number>();
  const filler = await ctx.store.openFiller(dir);
  try {
    for (const n of sizes) {
      const start = performance.now();
      // Written as the Pipeline writes a run: under the run's lease, each write fenced by it.
      const store = await filler.manager.getStore();
      const attempt = await store.acquireLease(runId(n), "bench-filler", 3_600_000);
      if (!attempt.acquired) throw new Error(`lease on ${runId(n)} not acquired`);
      const fence = attempt.lease;
      for (let i = 0; i < n; i++)
        await filler.manager.createCheckpoint(smallCheckpoint(runId(n), i), { fence });
      await store.releaseLease(fence);
      await filler.finish?.(runId(n));
      fillSeconds.set(n, (performance.now() - start) / 1000);
      ctx.log(`resume: filled ${n} checkpoints in ${fillSeconds.get(n)?.toFixed(1)} s`);
    }
  } finally {
    await filler.close();
  }
  const peerDir = join(dir, "langgraph");
  let peerFill = new Map<number, number>();
  let peer: Peer | undefined;
  if (hasPeer(ctx.store.name)) {
    const fill = await openPeer(ctx.store.name, peerDir, "resume", true);
    peerFill = await fillThreads(ctx, fill.saver, "LangGraph").finally(() => fill.close());
    peer = await openPeer(ctx.store.name, peerDir, "resume");
  }
  // CairnSaver: filled through the store's fast filler as cairn's runs are, read through the default.
  let saverFill = new Map<number, number>();
  let reader: SaverHandle | undefined;
  if (hasSaver(ctx.store.name)) {
    const at = saverDir(ctx.dir, "resume");
    const fill = await openSaver(ctx.store, at, "fill");
    saverFill = await fillThreads(ctx, fill.saver, "CairnSaver").finally(() => fill.close());
    reader = await openSaver(ctx.store, at);
  }
  const manager = new CheckpointManager(ctx.store.options(dir));
  try {
    for (const n of sizes) {
      const latest = await manager.loadLatestCheckpoint(runId(n));
      if (latest?.metadata.sequence !== n)
        throw new Error(`run ${runId(n)} does not resume from checkpoint ${n}`);
      for (const held of [peer, reader]) {
        if (!held) continue;
        const tuple = await peerLatest(held.saver, runId(n));
        if (tuple?.metadata?.step !== n - 1)
          throw new Error(`LangGraph thread ${runId(n)} does not resume from step ${n - 1}`);
      }
    }
    const variants: Variant[] = sizes.map((n) => ({
      name: String(n),
      // Every output read, so the decoding LangGraph's getTuple always does is timed here too.
      run: async () => Object.values((await manager.loadLatestCheckpoint(runId(n)))?.agentOutputs ?? {}),
    }));
    const saver = peer?.saver;
    if (saver) {
      for (const n of sizes)
        variants.push({ name: `langgraph ${n}`, run: () => peerResume(saver, runId(n)) });
    }
    const cairnSaver = reader?.saver;
    if (cairnSaver) {
      for (const n of sizes)
        variants.push({ name: `${SAVER_VARIANT} ${n}`, run: () => peerResume(cairnSaver, runId(n)) });
    }
    const samples = await compareInRounds(variants, ctx.profile.resume);
    const requests = new Map<number, Sent>();
    if (ctx.store.countsRequests) {
      for (const n of sizes) {
        const variant = variants.find((v) => v.name === String(n)) as Variant;
        const sent = await requestsPerOp(variant, COUNTED_OPS);
        requests.set(n, sent);
        ctx.log(`resume ${n}: ${sentText(sent)} per loadLatestCheckpoint`);
      }
    }
    const row = (n: number, variant: string, name: string, fill: Map<number, number>): Row => ({
      scenario: "resume",
      store: ctx.store.name,
      case: String(n),
      variant,
      summary: summarize(samples.get(name) ?? []),
      fillSeconds: fill.get(n) as number,
      ...(variant === "cairn" && requests.has(n) ? { requests: requests.get(n) } : {}),
    });
    return [
      ...sizes.map((n) => row(n, "cairn", String(n), fillSeconds)),
      ...(saver ? sizes.map((n) => row(n, "langgraph", `langgraph ${n}`, peerFill)) : []),
      ...(cairnSaver ? sizes.map((n) => row(n, SAVER_VARIANT, `${SAVER_VARIANT} ${n}`, saverFill)) : []),
    ];
  } finally {
    await manager.close();
    await peer?.close({ drop: true });
    await reader?.close();
  }
}

/**
 * The resume runs as LangGraph threads through `saver`: one channel per stage, each superstep
 * writes one, the same small values as cairn's runs. Seconds per run length.
 */
async function fillThreads(
  ctx: ScenarioContext,
  saver: Peer["saver"],
  label: string,
): Promise<Map<number, number>> {
  const seconds = new Map<number, number>();
  for (const n of ctx.profile.resumeSizes) {
    const start = performance.now();
    const thread = new PeerThread(saver, `resume-${n}`);
    for (let i = 0; i < n; i++) {
      const index = i % RESUME_STAGES.length;
      const value = { pass: Math.floor(i / RESUME_STAGES.length), rows: 100 + index, status: "ok" };
      await thread.stage(RESUME_STAGES[index] as string, value);
    }
    seconds.set(n, (performance.now() - start) / 1000);
    ctx.log(`resume: filled ${n} ${label} checkpoints in ${seconds.get(n)?.toFixed(1)} s`);
  }
  return seconds;
}
