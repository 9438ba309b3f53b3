/**
 * The graph of `lg-graph.ts` on CairnSaver, driven to its end by processes that SIGKILL
 * themselves while a checkpoint or pending-writes write is in flight (at a random write call,
 * after a random 0–3 ms), then by one that is left alone. Whatever the kills left behind, the
 * thread must end as MemorySaver's does without a kill, with the same history, and every run
 * of the thread must validate. The seed is in the failure message; `CAIRN_LG_SEED` replays it.
 */
import { describe, expect, it } from "vitest";
import { CairnSaver, threadPipelineName } from "../../src/langgraph/index.js";
import { buildGraph, historyShape, memoryReference } from "../support/lg-graph.js";
import { graphProcesses, outcomeOf } from "../support/lg-graph-runner.js";

const { runProcess, entries, stores } = graphProcesses("lg-rkill");

const THREAD = "random kills";
const KILLS = 8;

/** mulberry32: a small seeded generator, so a failing sequence of kill points replays. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.each(stores)("graph killed inside saver writes ($name)", ({ url, skip }) => {
  it.skipIf(skip)(
    "ends like MemorySaver, with its history, and valid runs",
    { timeout: 180_000 },
    async () => {
      const seed = Number(process.env.CAIRN_LG_SEED ?? Math.floor(Math.random() * 2 ** 31));
      const random = generator(seed);
      const store = url();
      const points: string[] = [];
      for (let i = 0; i < KILLS; i++) {
        const dieAtCall = 1 + Math.floor(random() * 12);
        const dieDelayMs = Math.floor(random() * 4);
        const line = await runProcess({ store, thread: THREAD, action: "drive", dieAtCall, dieDelayMs });
        points.push(`${dieAtCall}+${dieDelayMs}ms:${line.event}`);
      }
      const why = `seed ${seed} (CAIRN_LG_SEED=${seed}); kills ${points.join(", ")}`;
      const reference = await memoryReference(THREAD);
      const last = outcomeOf(await runProcess({ store, thread: THREAD, action: "drive" }));
      expect(last, why).toEqual(reference.answered);
      // Every node ran, some more than once (the kills).
      const ran = await entries();
      for (const node of ["plan", "fast", "slow", "s1", "s2", "review", "finish"])
        expect(ran[node], why).toBeGreaterThanOrEqual(1);

      const saver = new CairnSaver({ store });
      try {
        expect(await historyShape(buildGraph(saver), THREAD), why).toEqual(reference.historyAnswered);
        const runs = (await saver.manager.listRuns(threadPipelineName(THREAD))).runs;
        expect(runs.length, why).toBeGreaterThanOrEqual(2);
        for (const run of runs) {
          const validation = await saver.manager.validateRun(run.pipelineId);
          expect(validation.valid, `${why}\n${JSON.stringify(validation.checkpoints)}`).toBe(true);
        }
      } finally {
        await saver.close();
      }
    },
  );
});
