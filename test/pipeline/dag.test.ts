/**
 * DAG execution on the memory store: readiness order, the concurrency limit, a failure with a
 * sibling in flight, pause, invalidation by the graph, and what each checkpoint records.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  CheckpointManager,
  LeaseLostError,
  PIPELINE_COMPLETE_STAGE,
  type PipelineEvent,
  StageFailedError,
} from "../../src/index.js";
import { checkpointsOf, DIAMOND, graphPipeline, type NodeSpec, newTrace } from "./dag-support.js";

const managers: CheckpointManager[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
});
function memory(): CheckpointManager {
  const m = new CheckpointManager({ strategy: "memory" });
  managers.push(m);
  return m;
}

/** Five independent roots joined by one stage. */
const FAN: NodeSpec[] = [
  ...["r1", "r2", "r3", "r4", "r5"].map((name, i) => ({ name, dependsOn: [], delayMs: 10 + 7 * i })),
  { name: "join", dependsOn: ["r1", "r2", "r3", "r4", "r5"], inputs: { first: "$r1.stage" } },
];

describe("DAG execution", () => {
  it("runs independent stages at most maxConcurrency at once, and a stage only after its dependencies", async () => {
    const manager = memory();
    const trace = newTrace();
    const events: PipelineEvent[] = [];
    const pipeline = graphPipeline(
      manager,
      FAN,
      trace,
      {},
      { maxConcurrency: 2, onEvent: (e) => events.push(e) },
    );
    const result = await pipeline.execute();
    expect(result.status).toBe("completed");
    expect(trace.maxActive).toBe(2);
    // Ready stages start in definition order; the join starts after every root ended.
    expect(trace.calls.slice(0, 5)).toEqual(["r1", "r2", "r3", "r4", "r5"]);
    expect(trace.calls[5]).toBe("join");
    expect(trace.ends.indexOf("join")).toBe(5);
    const started = events.filter((e) => e.type === "stage_started").map((e) => e.stageName);
    expect(started).toEqual(trace.calls);

    // One checkpoint per completion, in completion order, plus the final one; the chain is linear.
    const checkpoints = await checkpointsOf(manager, result.pipelineId);
    expect(checkpoints.map((c) => c.metadata.stageName)).toEqual([...trace.ends, PIPELINE_COMPLETE_STAGE]);
    checkpoints.forEach((c, i) => {
      expect(c.metadata.parentCheckpointId).toBe(checkpoints[i - 1]?.metadata.checkpointId);
      expect(c.completedStages).toEqual(trace.ends.slice(0, Math.min(i + 1, 6)));
    });
    const second = checkpoints[1];
    expect(second?.pendingStages).toEqual(
      FAN.map((n) => n.name).filter((n) => !trace.ends.slice(0, 2).includes(n)),
    );
    // Dependencies are recorded explicitly for every step.
    const config = checkpoints[0]?.stateData.pipeline_config as {
      steps: { name: string; depends_on: string[] }[];
    };
    expect(config.steps.map((s) => [s.name, s.depends_on])).toEqual(FAN.map((n) => [n.name, n.dependsOn]));
  });

  it("with maxConcurrency 1 runs one stage at a time, in definition order", async () => {
    const trace = newTrace();
    await graphPipeline(memory(), FAN, trace, {}, { maxConcurrency: 1 }).execute();
    expect(trace.maxActive).toBe(1);
    expect(trace.calls).toEqual(FAN.map((n) => n.name));
  });

  it("a failure lets the running sibling finish and be checkpointed, starts nothing new, and checkpoints the failure last", async () => {
    const manager = memory();
    const nodes: NodeSpec[] = [
      { name: "fast", dependsOn: [], delayMs: 5 },
      { name: "slow", dependsOn: [], delayMs: 60 },
      { name: "later", dependsOn: [], delayMs: 5 },
      { name: "join", dependsOn: ["fast", "slow"] },
      { name: "after", dependsOn: ["slow"] },
    ];
    const trace = newTrace();
    const failing = graphPipeline(manager, nodes, trace, { fail: ["fast"] }, { maxConcurrency: 2 });
    const error = await failing.execute().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageFailedError);
    expect((error as StageFailedError).stageName).toBe("fast");
    expect(trace.calls).toEqual(["fast", "slow"]);
    const runId = (error as StageFailedError).pipelineId;
    const checkpoints = await checkpointsOf(manager, runId);
    expect(checkpoints.map((c) => [c.metadata.stageName, c.metadata.status])).toEqual([
      ["slow", "completed"],
      ["fast", "failed"],
    ]);
    expect(checkpoints[1]?.completedStages).toEqual(["slow"]);
    const timings = checkpoints[1]?.stateData.stage_timings as Record<string, Record<string, unknown>>;
    expect(timings.fast).toMatchObject({ failed: true, attempts: 1 });
    expect(timings.slow).toMatchObject({ attempts: 1 });
    expect(timings.slow?.checkpoint_ms).toEqual(expect.any(Number));

    // The resume runs the failed stage, what depends on it, and what never ran; slow is reused.
    const again = newTrace();
    const fixed = graphPipeline(manager, nodes, again, {}, { maxConcurrency: 2 });
    const plan = await fixed.execute({ dryRun: true });
    expect(plan.stages.map((s) => [s.stageName, s.action])).toEqual([
      ["fast", "run"],
      ["slow", "skip"],
      ["later", "run"],
      ["join", "run"],
      ["after", "run"],
    ]);
    const result = await fixed.execute();
    expect(result.skippedStages).toEqual(["slow"]);
    expect([...again.calls].sort()).toEqual(["after", "fast", "join", "later"]);
    expect(result.finalOutputs.slow).toEqual({ stage: "slow", seen: {} });
  });

  it("a second failure while the first drains is reported; the error and the failed checkpoint are the first's", async () => {
    const manager = memory();
    const events: PipelineEvent[] = [];
    const nodes: NodeSpec[] = [
      { name: "first", dependsOn: [], delayMs: 5 },
      { name: "second", dependsOn: [], delayMs: 40 },
      { name: "ok", dependsOn: [], delayMs: 20 },
    ];
    const error = await graphPipeline(
      manager,
      nodes,
      newTrace(),
      { fail: ["first", "second"] },
      { onEvent: (e) => events.push(e) },
    )
      .execute()
      .catch((e: unknown) => e);
    expect((error as StageFailedError).stageName).toBe("first");
    expect(events.filter((e) => e.type === "stage_failed").map((e) => e.stageName)).toEqual([
      "first",
      "second",
    ]);
    const checkpoints = await checkpointsOf(manager, (error as StageFailedError).pipelineId);
    expect(checkpoints.map((c) => [c.metadata.stageName, c.metadata.status])).toEqual([
      ["ok", "completed"],
      ["first", "failed"],
    ]);
    const timings = checkpoints[1]?.stateData.stage_timings as Record<string, { failed?: true }>;
    expect([timings.first?.failed, timings.second?.failed, timings.ok?.failed]).toEqual([
      true,
      true,
      undefined,
    ]);
  });

  it("abandon() stops every running branch at once and writes nothing more; another runner resumes them", async () => {
    const manager = memory();
    const nodes: NodeSpec[] = [
      { name: "a", dependsOn: [] },
      { name: "b", dependsOn: ["a"], delayMs: 300 },
      { name: "c", dependsOn: ["a"], delayMs: 300 },
      { name: "d", dependsOn: ["b", "c"] },
    ];
    let abandoned: Promise<void> | undefined;
    const pipeline = graphPipeline(manager, nodes, newTrace(), {
      onStart: (stage) => {
        if (stage === "c") abandoned = pipeline.abandon();
      },
    });
    await expect(pipeline.execute({ runId: "r" })).rejects.toBeInstanceOf(LeaseLostError);
    await abandoned;
    expect((await checkpointsOf(manager, "r")).map((c) => c.metadata.stageName)).toEqual(["a"]);
    const trace = newTrace();
    const result = await graphPipeline(manager, nodes, trace).execute({ runId: "r" });
    expect(result.skippedStages).toEqual(["a"]);
    expect(trace.calls).toEqual(["b", "c", "d"]);
  });

  it("pause lets the running stages finish and checkpoint them; the resume runs only the rest", async () => {
    const manager = memory();
    const nodes: NodeSpec[] = [
      { name: "a", dependsOn: [], delayMs: 5 },
      { name: "b", dependsOn: [], delayMs: 40 },
      { name: "c", dependsOn: ["a"] },
      { name: "d", dependsOn: ["b", "c"] },
    ];
    const trace = newTrace();
    let pipeline = graphPipeline(manager, nodes, trace, {
      onStart: (stage) => {
        if (stage === "a") pipeline.pause();
      },
    });
    const paused = await pipeline.execute();
    expect(paused.status).toBe("paused");
    expect(trace.calls).toEqual(["a", "b"]);
    expect(paused.pendingStages).toEqual(["c", "d"]);
    const checkpoints = await checkpointsOf(manager, paused.pipelineId);
    expect(checkpoints.map((c) => c.metadata.stageName)).toEqual(trace.ends);
    expect(checkpoints.at(-1)?.completedStages).toEqual(trace.ends);

    const again = newTrace();
    pipeline = graphPipeline(manager, nodes, again);
    const result = await pipeline.execute();
    expect(result.status).toBe("completed");
    expect(again.calls).toEqual(["c", "d"]);
    expect(result.skippedStages).toEqual(["a", "b"]);
  });

  it("a stop signal with checkpointAfterEachStep off saves the finished stages in one checkpoint", async () => {
    const manager = memory();
    const stop = new AbortController();
    const trace = newTrace();
    const nodes: NodeSpec[] = [
      { name: "a", dependsOn: [], delayMs: 5 },
      { name: "b", dependsOn: [], delayMs: 30 },
      { name: "c", dependsOn: ["a", "b"] },
    ];
    const pipeline = graphPipeline(
      manager,
      nodes,
      trace,
      { onStart: (stage) => stage === "b" && stop.abort() },
      { checkpointAfterEachStep: false },
    );
    const error = await pipeline.execute({ signal: stop.signal }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/stopped before stage c/);
    const checkpoints = await checkpointsOf(manager, pipeline.pipelineId as string);
    expect(checkpoints.map((c) => [c.metadata.status, c.completedStages])).toEqual([
      ["in_progress", trace.ends],
    ]);
  });
});

describe("invalidation over the graph", () => {
  /** a → (b, c) → d → e, where e fails the first time: everything before it completed. */
  const GRAPH: NodeSpec[] = [...DIAMOND, { name: "e", dependsOn: ["d"] }];
  async function failedAtE(manager: CheckpointManager): Promise<void> {
    const error = await graphPipeline(manager, GRAPH, newTrace(), { fail: ["e"] })
      .execute()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageFailedError);
  }

  it("a new agent version of one branch re-runs it and its descendants only", async () => {
    const manager = memory();
    await failedAtE(manager);
    const edited = GRAPH.map((n) => (n.name === "c" ? { ...n, version: "2" } : n));
    const trace = newTrace();
    const pipeline = graphPipeline(manager, edited, trace);
    const plan = await pipeline.execute({ dryRun: true });
    expect(plan.stages.map((s) => [s.stageName, s.action, s.reason])).toEqual([
      ["a", "skip", undefined],
      ["b", "skip", undefined],
      ["c", "rerun", "its agent changed (Node-c@1 → Node-c@2)"],
      ["d", "rerun", "an earlier stage (c) runs again"],
      ["e", "run", undefined],
    ]);
    const result = await pipeline.execute();
    expect(trace.calls).toEqual(["c", "d", "e"]);
    expect(result.skippedStages).toEqual(["a", "b"]);
    expect(result.rerunStages.map((r) => r.stageName)).toEqual(["c", "d"]);
  });

  it("editing a leaf re-runs only that leaf", async () => {
    const manager = memory();
    // c is a leaf: nothing depends on it; e fails.
    const nodes: NodeSpec[] = [
      { name: "a" },
      { name: "b", dependsOn: ["a"] },
      { name: "c", dependsOn: ["a"] },
      { name: "e", dependsOn: ["b"] },
    ];
    await graphPipeline(manager, nodes, newTrace(), { fail: ["e"] })
      .execute()
      .catch(() => undefined);
    const trace = newTrace();
    const edited = nodes.map((n) => (n.name === "c" ? { ...n, inputs: { extra: 1 } } : n));
    const result = await graphPipeline(manager, edited, trace).execute();
    expect(trace.calls.sort()).toEqual(["c", "e"]);
    expect(result.rerunStages).toEqual([
      { stageName: "c", reason: "its step definition (inputs or config) changed" },
    ]);
  });

  it("a re-run names the earliest ancestor that changed, in definition order", async () => {
    const manager = memory();
    await failedAtE(manager);
    const edited = GRAPH.map((n) => (n.name === "b" || n.name === "c" ? { ...n, version: "2" } : n));
    const plan = await graphPipeline(manager, edited, newTrace()).execute({ dryRun: true });
    expect(plan.stages.find((s) => s.stageName === "d")?.reason).toBe("an earlier stage (b) runs again");
  });

  it("carries stage timings of reused stages forward and replaces those that re-ran", async () => {
    const manager = memory();
    await failedAtE(manager);
    const before = (
      await checkpointsOf(manager, (await manager.listRuns("dag")).runs[0]?.pipelineId as string)
    ).at(-1);
    const oldTimings = before?.stateData.stage_timings as Record<string, { started_at: string }>;
    const edited = GRAPH.map((n) => (n.name === "c" ? { ...n, version: "2" } : n));
    const result = await graphPipeline(manager, edited, newTrace()).execute();
    const last = (await checkpointsOf(manager, result.pipelineId)).at(-1);
    const timings = last?.stateData.stage_timings as Record<string, { started_at: string; failed?: true }>;
    expect(Object.keys(timings).sort()).toEqual(["a", "b", "c", "d", "e"]);
    expect(timings.a).toEqual(oldTimings.a);
    expect(timings.b).toEqual(oldTimings.b);
    expect(timings.c?.started_at).not.toBe(oldTimings.c?.started_at);
    expect(timings.e?.failed).toBeUndefined();
  });

  it("a migrated branch is reused with its migrated output; its dependents decide on it", async () => {
    const manager = memory();
    const nodes: NodeSpec[] = [
      { name: "a", dependsOn: [] },
      { name: "b", dependsOn: ["a"] },
      { name: "c", dependsOn: ["a"] },
      { name: "d", dependsOn: ["b"], inputs: { up: "$b.stage" } },
      { name: "e", dependsOn: ["c"], inputs: { up: "$c" } },
    ];
    await graphPipeline(manager, nodes, newTrace(), { fail: ["d"] }, { maxConcurrency: 1 })
      .execute()
      .catch(() => undefined);
    // e never ran (d failed first); c's output gains a field, which its dependent e reads.
    const bumped = nodes.map((n) =>
      n.name === "c"
        ? {
            ...n,
            extra: {
              outputVersion: 2,
              migrateOutput: (output: unknown) => ({ ...(output as object), v2: true }),
            },
          }
        : n,
    );
    const trace = newTrace();
    const pipeline = graphPipeline(manager, bumped, trace);
    const plan = await pipeline.execute({ dryRun: true });
    expect(plan.stages.map((s) => [s.stageName, s.action])).toEqual([
      ["a", "skip"],
      ["b", "skip"],
      ["c", "migrate"],
      ["d", "run"],
      ["e", "run"],
    ]);
    const result = await pipeline.execute();
    expect(trace.calls.sort()).toEqual(["d", "e"]);
    expect(result.migratedStages.map((m) => m.stageName)).toEqual(["c"]);
    expect(result.finalOutputs.e).toMatchObject({ seen: { up: { stage: "c", v2: true } } });
  });

  it("retries one branch while the other runs", async () => {
    const manager = memory();
    const events: PipelineEvent[] = [];
    const nodes: NodeSpec[] = [
      { name: "flaky", dependsOn: [], extra: { retries: 2, retryDelayMs: 1 } },
      { name: "steady", dependsOn: [], delayMs: 30 },
      { name: "join", dependsOn: ["flaky", "steady"] },
    ];
    const result = await graphPipeline(
      manager,
      nodes,
      newTrace(),
      { flaky: { flaky: 2 } },
      { onEvent: (e) => events.push(e) },
    ).execute();
    expect(result.stepsResults.flaky?.attempts).toBe(3);
    expect(events.filter((e) => e.type === "stage_retry").map((e) => e.stageName)).toEqual([
      "flaky",
      "flaky",
    ]);
    const last = (await checkpointsOf(manager, result.pipelineId)).at(-1);
    const timings = last?.stateData.stage_timings as Record<string, { attempts: number }> | undefined;
    expect(timings?.flaky?.attempts).toBe(3);
  });
});
