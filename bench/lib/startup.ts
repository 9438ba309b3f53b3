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

/** One store of the comparison: its own namespace, pipeline and unfinished run. */
interface Subject {
  others: number;
  fillSeconds: number;
  manager: CheckpointManager;
  close(): Promise<void>;
  /** Times one `execute()` until stage b begins. */
  once(): Promise<number>;
}

async function openSubject(ctx: ScenarioContext, others: number): Promise<Subject> {
  const dir = join(ctx.dir, `startup-${others}`);
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
  await once(); // creates the unfinished run, before the others: the index must not be scanned past them
  const fillStart = performance.now();
  await addOtherRuns(filler.manager, 0, others);
  const fillSeconds = (performance.now() - fillStart) / 1000;
  await filler.close();
  return { others, fillSeconds, manager, once, close: () => manager.close() };
}

/**
 * `execute()` start-up in stores holding 0 and more other runs: one store (namespace) per size,
 * filled first, then measured in interleaved rounds so that warm-up and machine noise fall on
 * every size alike.
 */
export async function measureStartup(ctx: ScenarioContext): Promise<StartupRow> {
  const plan = ctx.profile.startup;
  const subjects: Subject[] = [];
  try {
    for (const others of ctx.profile.startupSizes) {
      subjects.push(await openSubject(ctx, others));
      ctx.log(
        `startup: store with ${others} other runs filled in ${subjects.at(-1)?.fillSeconds.toFixed(1)} s`,
      );
    }
    const samples = new Map<Subject, number[]>(subjects.map((s) => [s, []]));
    for (const subject of subjects) for (let i = 0; i < plan.warmup; i++) await subject.once();
    for (let round = 0; round < plan.rounds; round++) {
      const order = round % 2 === 0 ? subjects : [...subjects].reverse();
      for (const subject of order) {
        const into = samples.get(subject) as number[];
        for (let i = 0; i < plan.batch; i++) into.push(await subject.once());
      }
    }
    const points = subjects.map((s) => ({
      others: s.others,
      fillSeconds: s.fillSeconds,
      summary: summarize(samples.get(s) as number[]),
    }));
    for (const p of points)
      ctx.log(`startup with ${p.others} other runs: p50 ${p.summary.p50Ms.toFixed(2)} ms`);
    return { store: ctx.store.name, points };
  } finally {
    for (const subject of subjects) await subject.close();
  }
}
