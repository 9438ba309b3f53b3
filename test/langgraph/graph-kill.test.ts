/**
 * A real LangGraph StateGraph (parallel nodes, a compiled subgraph as a node, an `interrupt()`)
 * on CairnSaver over persistent stores, SIGKILLed between nodes in child processes and resumed
 * in new ones: the answer goes in with `Command({ resume })`, then time travel forks the thread.
 * The states and the history's shape must match the same steps on MemorySaver without a kill,
 * no node that finished before a kill may run again, and cairn must see valid runs.
 */
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import { beforeAll, describe, expect, it } from "vitest";
import {
  CairnSaver,
  threadCheckpointId,
  threadPipelineName,
  threadRunId,
} from "../../src/langgraph/index.js";
import type { StoredMetadata } from "../../src/stores/types.js";
import {
  buildGraph,
  type GraphOutcome,
  type GraphReference,
  historyShape,
  memoryReference,
} from "../support/lg-graph.js";
import { graphProcesses, outcomeOf } from "../support/lg-graph-runner.js";

const { dir, runProcess, entries, stores } = graphProcesses("lg-kill");

/** Not name-safe on purpose: cairn sanitizes and hashes it into the run id. */
const THREAD = "ticket 42/ü";

/**
 * How often each node runs over the steps below: `fast` finished before the first kill (its
 * writes are pending writes of the checkpoint) and `s1` before the second (its subgraph
 * checkpoint), so neither runs again; `slow` and `s2` were killed inside and run again; `review`
 * runs once to interrupt and once with the answer; `finish` once per branch of the fork.
 */
const ENTRIES = { plan: 1, fast: 1, slow: 2, s1: 1, s2: 2, review: 2, finish: 2 };

/** Five child processes per test, each loading LangGraph: slow on a loaded machine. */
const LONG = { timeout: 120_000 };

let expected: GraphReference;
beforeAll(async () => {
  expected = await memoryReference(THREAD);
});

/** The steps, one process each: killed in `slow`, killed in `s2`, interrupted, answered, forked. */
async function killResumeAnswerFork(store: string): Promise<GraphOutcome[]> {
  expect(await runProcess({ store, thread: THREAD, action: "start", hang: ["slow"] })).toMatchObject({
    event: "hang",
    node: "slow",
  });
  expect(await runProcess({ store, thread: THREAD, action: "resume", hang: ["s2"] })).toMatchObject({
    event: "hang",
    node: "s2",
  });
  const asked = outcomeOf(await runProcess({ store, thread: THREAD, action: "resume" }));
  const answered = outcomeOf(await runProcess({ store, thread: THREAD, action: "answer", answer: "yes" }));
  const forked = outcomeOf(await runProcess({ store, thread: THREAD, action: "fork" }));
  return [asked, answered, forked];
}

describe("graph killed between nodes", () => {
  it("reference: LangGraph's own SqliteSaver gives the states and node counts expected", LONG, async () => {
    const path = `${dir()}/lg.db`;
    expect(await killResumeAnswerFork(`lg-sqlite:${path}`)).toEqual([
      expected.started,
      expected.answered,
      expected.forked,
    ]);
    expect(await entries()).toEqual(ENTRIES);
    const saver = SqliteSaver.fromConnString(path);
    expect(await historyShape(buildGraph(saver), THREAD)).toEqual(expected.historyForked);
  });
});

describe.each(stores)("graph killed between nodes on CairnSaver ($name)", ({ url, skip }) => {
  it.skipIf(skip)(
    "resumes, answers and forks like MemorySaver, and cairn sees valid runs and the fork",
    LONG,
    async () => {
      const store = url();
      expect(await killResumeAnswerFork(store)).toEqual([
        expected.started,
        expected.answered,
        expected.forked,
      ]);
      expect(await entries()).toEqual(ENTRIES);

      const saver = new CairnSaver({ store });
      try {
        const graph = buildGraph(saver);
        expect(await historyShape(graph, THREAD)).toEqual(expected.historyForked);

        // One run per namespace (the root and the subgraph's), all under the thread's name, all valid.
        const runs = (await saver.manager.listRuns(threadPipelineName(THREAD))).runs.map((r) => r.pipelineId);
        expect(runs).toHaveLength(2);
        expect(runs).toContain(threadRunId(THREAD));
        const records: StoredMetadata[] = [];
        for (const run of runs) {
          const validation = await saver.manager.validateRun(run);
          expect(validation.valid, JSON.stringify(validation.checkpoints)).toBe(true);
          for (const entry of validation.listing)
            if (entry.ok && run === threadRunId(THREAD)) records.push(entry.metadata);
        }

        // The fork: the checkpoint before `review` has two checkpoint children, the answer "yes"
        // (LangGraph's loop) and the `updateState` answering "no".
        let before: string | undefined;
        for await (const snapshot of graph.getStateHistory({ configurable: { thread_id: THREAD } }))
          if (snapshot.next.join() === "review")
            before = snapshot.config.configurable?.checkpoint_id as string;
        const beforeId = threadCheckpointId(threadRunId(THREAD), before as string);
        const children = records.filter(
          (r) => r.parent_checkpoint_id === beforeId && r.stage_name !== "writes",
        );
        expect(children.map((r) => r.stage_name).sort()).toEqual(["loop", "update"]);
        const checkpoints = records.filter((r) => r.stage_name !== "writes");
        const parents = checkpoints.map((r) => r.parent_checkpoint_id);
        expect(parents.filter((p) => p === beforeId)).toHaveLength(2);
        // Every other checkpoint has one child at most: the history is a chain with one fork.
        expect(new Set(parents).size).toBe(parents.length - 1);
        // Pending writes hang under the checkpoint they belong to.
        const ids = new Set(checkpoints.map((r) => r.checkpoint_id));
        const writes = records.filter((r) => r.stage_name === "writes");
        expect(writes.length).toBeGreaterThan(0);
        for (const w of writes)
          expect(ids.has(w.parent_checkpoint_id as string), JSON.stringify(w)).toBe(true);
      } finally {
        await saver.close();
      }
    },
  );
});
