/**
 * Start-up: the time from `execute()` to the first stage starting, for a pipeline with one
 * unfinished run to resume, as the store fills with other runs. `execute()` finds that run
 * through the store's runs-by-name index (`listRuns`), takes its lease and loads its resume
 * point; nothing of it should grow with the number of other runs. Half the other runs are
 * finished runs of the same pipeline (created after the unfinished one, so they come first in
 * the index), half belong to other pipelines.
 */
import { join } from "node:path";
import { CheckpointManager, PIPELINE_COMPLETE_STAGE, Pipeline, StageFailedError } from "../../src/index.js";
import type { StartupRow } from "./results.js";
import type { ScenarioContext } from "./scenarios.js";
import { summarize } from "./stats.js";

const NAME = "startup";

/** Writes `count` more other runs through the fast filler, a few at a time. */
async function addOtherRuns(manager: CheckpointManager, from: number, count: number): Promise<void> {
  const write = async (i: number) => {
    const sameName = i % 2 === 0;
    const pipelineId = `other-${i}`;
    const pipelineName = sameName ? NAME : `other${i % 50}`;
    await manager.createCheckpoint({ pipelineId, pipelineName, stageName: "a", stageIndex: 0 });
    if (sameName)
      await manager.createCheckpoint({
        pipelineId,
        pipelineName,
        stageName: PIPELINE_COMPLETE_STAGE,
        stageIndex: 2,
      });
  };
  const CONCURRENCY = 32;
  for (let start = from; start < from + count; start += CONCURRENCY) {
    const batch: Promise<void>[] = [];
    for (let i = start; i < Math.min(start + CONCURRENCY, from + count); i++) batch.push(write(i));
    await Promise.all(batch);
  }
}

/** `execute()` start-up with 0 and more other runs in the store. */
export async function measureStartup(ctx: ScenarioContext): Promise<StartupRow> {
  const dir = join(ctx.dir, "startup");
  const filler = await ctx.store.openFiller(dir);
  const manager = new CheckpointManager(ctx.store.options(dir));
  let began = 0;
  const pipeline = new Pipeline({
    name: NAME,
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: [
      { name: "a", agent: () => ({ ok: true }) },
      {
        name: "b",
        agent: () => {
          began = performance.now();
          // Failing keeps the run unfinished, so the next execute() resumes it again.
          throw new Error("stop here");
        },
      },
    ],
  });
  const once = async (): Promise<number> => {
    const start = performance.now();
    await pipeline.execute().then(
      () => {
        throw new Error("the startup run completed; it must fail at stage b");
      },
      (error: unknown) => {
        if (!(error instanceof StageFailedError)) throw error;
      },
    );
    return began - start;
  };
  const plan = ctx.profile.startup;
  const points: StartupRow["points"] = [];
  try {
    await once(); // creates the unfinished run
    let others = 0;
    for (const target of ctx.profile.startupSizes) {
      const fillStart = performance.now();
      await addOtherRuns(filler.manager, others, target - others);
      const fillSeconds = (performance.now() - fillStart) / 1000;
      others = target;
      for (let i = 0; i < plan.warmup; i++) await once();
      const samples: number[] = [];
      for (let i = 0; i < plan.rounds * plan.batch; i++) samples.push(await once());
      points.push({ others: target, fillSeconds, summary: summarize(samples) });
      ctx.log(`startup with ${target} other runs: p50 ${points.at(-1)?.summary.p50Ms.toFixed(2)} ms`);
    }
  } finally {
    await manager.close();
    await filler.close();
  }
  return { store: ctx.store.name, points };
}
