/**
 * Walks (issue 11): `validateRun` and analyze of a run of 1,000, 10,000 and 20,000 checkpoints,
 * a new write at the end of each run, and (file store) the run's export. A walk lists the run
 * once and reads each checkpoint once, so its time must grow linearly with the run: the target
 * is 20,000 ≤ 25 × the time at 1,000. A write must not grow with the run at all. Each walk is
 * timed 3 times by the same fresh manager, and the fastest reported.
 */
import { execFileSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { analyzePipeline } from "../../src/debug/analyze.js";
import { CheckpointManager } from "../../src/index.js";
import type { WalksRow } from "./results.js";
import type { ScenarioContext } from "./scenarios.js";
import { summarize } from "./stats.js";

/** Writes timed at the end of each run; their p50 is reported. */
const WRITES = 7;

const checkpoint = (pipelineId: string, i: number) => ({
  pipelineId,
  pipelineName: "walks",
  stageName: `stage-${i % 10}`,
  stageIndex: i % 10,
  stateData: { cursor: i },
  completedStages: [`stage-${i % 10}`],
  pendingStages: [],
  agentOutputs: { [`stage-${i % 10}`]: { pass: Math.floor(i / 10), rows: 100 } },
});

/** Fills a run of `n` checkpoints under its lease, each write fenced, as the Pipeline writes. */
async function fill(ctx: ScenarioContext, dir: string, runId: string, n: number): Promise<number> {
  const filler = await ctx.store.openFiller(dir);
  const start = performance.now();
  try {
    const store = await filler.manager.getStore();
    const attempt = await store.acquireLease(runId, "bench-filler", 3_600_000);
    if (!attempt.acquired) throw new Error(`lease on ${runId} not acquired`);
    for (let i = 0; i < n; i++) {
      await filler.manager.createCheckpoint(checkpoint(runId, i), { fence: attempt.lease });
    }
    await store.releaseLease(attempt.lease);
  } finally {
    await filler.close();
  }
  return (performance.now() - start) / 1000;
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await action();
  return performance.now() - start;
}

/** Walks timed per run length; the fastest is reported, the others absorb this VM's noise. */
const WALK_SAMPLES = 3;

async function fastest(action: () => Promise<unknown>): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < WALK_SAMPLES; i++) best = Math.min(best, await timed(action));
  return best;
}

/** The walks of one store: one run per size, each measured by a fresh manager (nothing cached). */
export async function measureWalks(ctx: ScenarioContext): Promise<WalksRow> {
  const row: WalksRow = { store: ctx.store.name, points: [] };
  const dir = join(ctx.dir, "walks");
  for (const n of ctx.profile.walkSizes) {
    const runId = `walks-${n}`;
    const fillSeconds = await fill(ctx, dir, runId, n);
    ctx.log(`walks: filled ${n} checkpoints in ${fillSeconds.toFixed(1)} s`);
    const manager = new CheckpointManager(ctx.store.options(dir));
    try {
      await manager.getStore();
      let listed = 0;
      const validateMs = await fastest(async () => {
        const result = await manager.validateRun(runId);
        listed = result.summary.valid;
      });
      if (listed !== n)
        throw new Error(`validateRun of ${runId} found ${listed} valid checkpoints, not ${n}`);
      const analyzeMs = await fastest(() => analyzePipeline(manager, runId));
      let exportMs: number | undefined;
      if (ctx.store.name === "file") {
        const path = join(ctx.dir, `${runId}.export.json`);
        exportMs = await fastest(() => manager.exportPipeline(runId, path));
        await rm(path, { force: true });
      }
      // The fill did not wait for the disk: flushed now, so the writes' own flushes do not pay for it.
      execFileSync("sync");
      const writes: number[] = [];
      for (let i = 0; i < WRITES; i++) {
        writes.push(await timed(() => manager.createCheckpoint(checkpoint(runId, n + i))));
      }
      const point = {
        checkpoints: n,
        fillSeconds,
        validateMs,
        analyzeMs,
        exportMs,
        write: summarize(writes),
      };
      row.points.push(point);
      const exported = exportMs === undefined ? "" : `, export ${exportMs.toFixed(0)} ms`;
      ctx.log(
        `walks ${n}: validate ${validateMs.toFixed(0)} ms, analyze ${analyzeMs.toFixed(0)} ms${exported}, write p50 ${point.write.p50Ms.toFixed(2)} ms`,
      );
    } finally {
      await manager.close();
    }
  }
  return row;
}
