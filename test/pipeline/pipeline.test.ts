import { afterEach, describe, expect, it } from "vitest";
import {
  CheckpointManager,
  InvalidPipelineError,
  Pipeline,
  type PipelineEvent,
  type PipelineOptions,
  registerAgent,
  StageFailedError,
  unregisterAgent,
} from "../../src/index.js";

const managers: CheckpointManager[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
});
function memory(): CheckpointManager {
  const m = new CheckpointManager({ strategy: "memory" });
  managers.push(m);
  return m;
}

/** A 3-stage ETL whose agents count their calls. */
function etl(
  manager: CheckpointManager,
  overrides: Partial<PipelineOptions> = {},
  failAt?: { stage: string; times: number },
  transform: { version?: string; retries?: number; retryDelayMs?: number } = {},
) {
  const calls: string[] = [];
  let failures = 0;
  const maybeFail = (stage: string) => {
    calls.push(stage);
    if (failAt?.stage === stage && failures < failAt.times) {
      failures++;
      throw new Error(`${stage} broke`);
    }
  };
  const options: PipelineOptions = {
    name: "etl",
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: [
      {
        name: "extract",
        agent: (inputs) => {
          maybeFail("extract");
          return {
            rows: [1, 2, 3].map((n) => n * (inputs.scale as number)),
            at: new Date("2024-01-01T00:00:00Z"),
          };
        },
      },
      {
        name: "transform",
        agent: {
          name: "Doubler",
          version: transform.version ?? "1",
          process: (inputs) => {
            maybeFail("transform");
            return (inputs.rows as number[]).map((n) => n * 2);
          },
        },
        inputs: { rows: "$extract.rows" },
        ...(transform.retries !== undefined ? { retries: transform.retries } : {}),
        ...(transform.retryDelayMs !== undefined ? { retryDelayMs: transform.retryDelayMs } : {}),
      },
      {
        name: "load",
        agent: async (inputs) => {
          maybeFail("load");
          const values = inputs.values as number[];
          return { written: values.length, sum: values.reduce((a, b) => a + b, 0) };
        },
        inputs: { values: "$transform" },
      },
    ],
    ...overrides,
  };
  return { pipeline: new Pipeline(options), calls };
}

describe("Pipeline", () => {
  it("runs every stage, checkpoints after each, and returns the results", async () => {
    const manager = memory();
    const events: PipelineEvent["type"][] = [];
    const { pipeline, calls } = etl(manager, { onEvent: (e) => events.push(e.type) });
    const results = await pipeline.execute({ inputs: { scale: 10 } });
    expect(calls).toEqual(["extract", "transform", "load"]);
    expect(results).toMatchObject({
      name: "etl",
      status: "completed",
      checkpointsCreated: 4,
      skippedStages: [],
      finalOutputs: { transform: [20, 40, 60], load: { written: 3, sum: 120 } },
    });
    expect(results.stepsResults.load).toMatchObject({ status: "completed", attempts: 1 });
    const history = await pipeline.getCheckpointHistory();
    expect(history.map((m) => m.stageName)).toEqual(["pipeline_complete", "load", "transform", "extract"]);
    expect(events).toContain("checkpoint_created");
    expect(events.at(-1)).toBe("run_completed");
    expect(pipeline.visualizeProgress()).toContain("✓ load");
  });

  it("writes a failed checkpoint, rejects with StageFailedError, and resumes at the failed stage", async () => {
    const manager = memory();
    const first = etl(manager, {}, { stage: "load", times: 1 });
    const error = await first.pipeline.execute({ inputs: { scale: 1 } }).catch((e) => e);
    expect(error).toBeInstanceOf(StageFailedError);
    expect(error).toMatchObject({ code: "CAIRN_STAGE_FAILED", stageName: "load" });
    const failed = await manager.loadCheckpoint(error.checkpointId);
    expect(failed.metadata).toMatchObject({
      status: "failed",
      errorMessage: "load broke",
      stageName: "load",
    });
    expect(failed.pendingStages).toEqual(["load"]);
    expect(failed.completedStages).toEqual(["extract", "transform"]);

    const second = etl(manager);
    const results = await second.pipeline.execute();
    expect(second.calls).toEqual(["load"]);
    expect(results.pipelineId).toBe(error.pipelineId);
    expect(results.skippedStages).toEqual(["extract", "transform"]);
    expect(results.resumedFrom).toBe(error.checkpointId);
    expect(results.finalOutputs.load).toEqual({ written: 3, sum: 12 });
    expect((await manager.getStatistics()).resumeSuccessRate).toBe(1);
  });

  it("retries with backoff before failing", async () => {
    const manager = memory();
    const events: PipelineEvent[] = [];
    const { pipeline, calls } = etl(
      manager,
      { onEvent: (e) => events.push(e) },
      { stage: "transform", times: 2 },
      { retries: 2, retryDelayMs: 5 },
    );
    const results = await pipeline.execute({ inputs: { scale: 1 } });
    expect(calls).toEqual(["extract", "transform", "transform", "transform", "load"]);
    expect(results.stepsResults.transform?.attempts).toBe(3);
    expect(
      events.filter((e) => e.type === "stage_retry").map((e) => e.type === "stage_retry" && e.delayMs),
    ).toEqual([5, 10]);
  });

  it("never resumes a completed run and starts a fresh one instead", async () => {
    const manager = memory();
    const a = await etl(manager).pipeline.execute({ inputs: { scale: 1 } });
    const second = etl(manager);
    const b = await second.pipeline.execute({ inputs: { scale: 1 } });
    expect(b.pipelineId).not.toBe(a.pipelineId);
    expect(second.calls).toEqual(["extract", "transform", "load"]);
    // Naming the completed run returns its results without running anything.
    const third = etl(manager);
    const c = await third.pipeline.execute({ runId: a.pipelineId });
    expect(third.calls).toEqual([]);
    expect(c.finalOutputs).toEqual(a.finalOutputs);
  });

  it("re-runs a completed stage and the ones after it when its agent changed", async () => {
    const manager = memory();
    const first = etl(manager, {}, { stage: "load", times: 1 });
    await first.pipeline.execute({ inputs: { scale: 1 } }).catch(() => undefined);
    const changed = etl(manager, {}, undefined, { version: "2" });
    const results = await changed.pipeline.execute();
    expect(changed.calls).toEqual(["transform", "load"]);
    expect(results.skippedStages).toEqual(["extract"]);
    expect(results.rerunStages[0]).toMatchObject({ stageName: "transform" });
    expect(results.rerunStages[0]?.reason).toMatch(/agent changed/);
  });

  it("re-runs stages whose inputs changed", async () => {
    const manager = memory();
    const first = etl(manager, {}, { stage: "load", times: 1 });
    await first.pipeline.execute({ inputs: { scale: 1 } }).catch(() => undefined);
    const again = etl(manager);
    const results = await again.pipeline.execute({ inputs: { scale: 2 } });
    expect(again.calls).toEqual(["extract", "transform", "load"]);
    expect(results.rerunStages.map((r) => r.stageName)).toEqual(["extract", "transform"]);
    expect(results.finalOutputs.load).toEqual({ written: 3, sum: 24 });
  });

  it("starts a fresh run with resume: false", async () => {
    const manager = memory();
    const first = etl(manager, {}, { stage: "load", times: 1 });
    const error = await first.pipeline.execute({ inputs: { scale: 1 } }).catch((e) => e);
    const fresh = etl(manager);
    const results = await fresh.pipeline.execute({ inputs: { scale: 1 }, resume: false });
    expect(results.pipelineId).not.toBe(error.pipelineId);
    expect(fresh.calls).toEqual(["extract", "transform", "load"]);
  });

  it("pauses after the current stage with a checkpoint, and resumes later", async () => {
    const manager = memory();
    let pipeline!: Pipeline;
    const built = etl(manager, {
      onEvent: (e) => {
        if (e.type === "stage_completed" && e.stageName === "extract") pipeline.pause();
      },
    });
    pipeline = built.pipeline;
    const paused = await pipeline.execute({ inputs: { scale: 1 } });
    expect(paused).toMatchObject({ status: "paused", pendingStages: ["transform", "load"] });
    const resumed = await etl(manager).pipeline.execute();
    expect(resumed).toMatchObject({
      status: "completed",
      pipelineId: paused.pipelineId,
      skippedStages: ["extract"],
    });
  });

  it("stops on an AbortSignal after the current stage", async () => {
    const manager = memory();
    const controller = new AbortController();
    const built = etl(manager, {
      onEvent: (e) => {
        if (e.type === "stage_completed" && e.stageName === "transform") controller.abort();
      },
    });
    await expect(
      built.pipeline.execute({ inputs: { scale: 1 }, signal: controller.signal }),
    ).rejects.toMatchObject({
      code: "CAIRN_ABORTED",
    });
    expect(built.calls).toEqual(["extract", "transform"]);
    const later = etl(manager);
    await later.pipeline.execute();
    expect(later.calls).toEqual(["load"]);
  });

  it("runs without checkpoints when checkpointing is off", async () => {
    const { pipeline, calls } = etl(memory(), { checkpointEnabled: false });
    const results = await pipeline.execute({ inputs: { scale: 1 } });
    expect(calls).toHaveLength(3);
    expect(results.checkpointsCreated).toBe(0);
    expect(await pipeline.getCheckpointHistory()).toEqual([]);
  });

  it("shows the plan in a dry run without running agents or writing checkpoints", async () => {
    const manager = memory();
    const first = etl(manager, {}, { stage: "load", times: 1 });
    await first.pipeline.execute({ inputs: { scale: 1 } }).catch(() => undefined);
    const before = (await manager.getStatistics()).totalCheckpoints;
    const dry = etl(manager);
    const plan = await dry.pipeline.execute({ dryRun: true });
    expect(dry.calls).toEqual([]);
    expect(plan.stages.map((s) => s.action)).toEqual(["skip", "skip", "run"]);
    expect((await manager.getStatistics()).totalCheckpoints).toBe(before);
  });

  it("validates the whole definition up front and lists every problem", () => {
    try {
      new Pipeline({
        name: "bad name",
        steps: [
          { name: "a", agent: "NoSuchAgent" },
          { name: "a", agent: () => 1, inputs: { x: "$later.rows" }, retries: -1 },
          { name: "later", agent: 42 as unknown as () => 1, timeoutMs: 0 },
        ],
      });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidPipelineError);
      const problems = (error as InvalidPipelineError).problems;
      expect(problems.length).toBeGreaterThanOrEqual(6);
      expect(problems.join("\n")).toMatch(/NoSuchAgent/);
      expect(problems.join("\n")).toMatch(/does not run before it/);
    }
  });

  it("reports a bad checkpoint store together with every other problem", () => {
    for (const checkpointEnabled of [true, undefined]) {
      const error = (() => {
        try {
          new Pipeline({
            name: "p",
            steps: [],
            checkpointEnabled,
            checkpointStrategy: "nope",
            colour: 1,
          } as unknown as ConstructorParameters<typeof Pipeline>[0]);
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(InvalidPipelineError);
      const problems = (error as InvalidPipelineError).problems.join("\n");
      expect(problems).toMatch(/unknown option colour/);
      expect(problems).toMatch(/steps must be a non-empty array/);
      expect(problems).toMatch(/checkpoint store: unknown checkpoint strategy "nope"/);
    }
  });

  it("resolves agents by name from the options and the registry", async () => {
    registerAgent("Upper", { version: "1", process: (inputs) => String(inputs.text).toUpperCase() });
    try {
      const pipeline = new Pipeline({
        name: "names",
        agents: { Exclaim: (inputs) => `${String(inputs.text)}!` },
        steps: [
          { name: "upper", agent: "Upper" },
          { name: "exclaim", agent: "Exclaim", inputs: { text: "$upper" } },
        ],
      });
      const results = await pipeline.execute({ inputs: { text: "hi" } });
      expect(results.finalOutputs).toEqual({ upper: "HI", exclaim: "HI!" });
    } finally {
      unregisterAgent("Upper");
    }
  });

  it("times out a slow attempt and fails the stage", async () => {
    const pipeline = new Pipeline({
      name: "slow",
      steps: [
        {
          name: "wait",
          agent: (_i, ctx) => new Promise((r) => setTimeout(r, 5000, ctx.signal)),
          timeoutMs: 30,
        },
      ],
    });
    await expect(pipeline.execute()).rejects.toMatchObject({
      code: "CAIRN_STAGE_FAILED",
      cause: { code: "CAIRN_STAGE_TIMEOUT" },
    });
  });

  it("gives agents their context with a stable idempotency key", async () => {
    const manager = memory();
    const seen: unknown[] = [];
    const make = (fail: boolean) =>
      new Pipeline({
        name: "ctx",
        checkpointEnabled: true,
        checkpointStore: manager,
        steps: [
          {
            name: "only",
            agent: (_inputs, ctx) => {
              seen.push({
                key: ctx.idempotencyKey,
                attempt: ctx.attempt,
                resumeCount: ctx.resumeCount,
                index: ctx.stageIndex,
              });
              if (fail) throw new Error("no");
              return 1;
            },
          },
        ],
      });
    const error = await make(true)
      .execute()
      .catch((e) => e);
    await make(false).execute();
    expect(seen).toEqual([
      { key: `${error.pipelineId}:only`, attempt: 1, resumeCount: 0, index: 0 },
      { key: `${error.pipelineId}:only`, attempt: 1, resumeCount: 1, index: 0 },
    ]);
  });

  it("refuses outputs that cannot be checkpointed, naming the path", async () => {
    const pipeline = new Pipeline({
      name: "unser",
      checkpointEnabled: true,
      checkpointStore: memory(),
      steps: [{ name: "bad", agent: () => ({ fn: () => 1 }) }],
    });
    await expect(pipeline.execute()).rejects.toMatchObject({
      code: "CAIRN_STAGE_FAILED",
      cause: { code: "CAIRN_UNSERIALIZABLE", path: "agentOutputs.bad.fn" },
    });
  });
});
