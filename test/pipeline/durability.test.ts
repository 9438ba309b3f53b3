/**
 * Durability modes in one process: which checkpoints each mode writes and when the next stage
 * starts; an async write error fails the run at the next stage boundary with the store's typed
 * error (a real refusal: a PostgreSQL trigger); the option's validation and its alias
 * `checkpointAfterEachStep: false`. Crashes are in durability-sigkill.test.ts.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, InvalidPipelineError, Pipeline, type PipelineEvent } from "../../src/index.js";
import { loadPipelineOptions } from "../../src/pipeline/from-file.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";
import { checkpointsOf, DIAMOND, graphPipeline, newTrace } from "./dag-support.js";

let dir: string;
const managers: CheckpointManager[] = [];
const schemas: string[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-durability-"));
});
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
  await rm(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await dropSchemas(...schemas);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sqliteManager(): CheckpointManager {
  const manager = new CheckpointManager({ store: `sqlite:${join(dir, "c.db")}` });
  managers.push(manager);
  return manager;
}

/** A linear pipeline a → b → c whose agents log their start, with the events in `log`. */
function linear(
  manager: CheckpointManager,
  log: string[],
  options: Record<string, unknown> = {},
  hook: (stage: string) => Promise<void> | void = () => undefined,
): Pipeline {
  const agent = async (_inputs: Record<string, unknown>, ctx: { stageName: string }) => {
    await hook(ctx.stageName);
    await sleep(2);
    return { stage: ctx.stageName };
  };
  return new Pipeline({
    name: "durable",
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: ["a", "b", "c"].map((name) => ({ name, agent })),
    onEvent: (e: PipelineEvent) => {
      if (e.type === "stage_started") log.push(`start ${e.stageName}`);
      if (e.type === "checkpoint_created") log.push(`checkpoint ${e.stageName}`);
    },
    ...options,
  });
}

const stagesOf = async (manager: CheckpointManager, runId: string) =>
  (await manager.getCheckpointHistory(runId))
    .sort((x, y) => x.sequence - y.sequence)
    .map((m) => `${m.stageName}:${m.status}`);

describe("durability modes", () => {
  it("sync (default): each stage starts after the checkpoint of the one before is written", async () => {
    const manager = sqliteManager();
    const log: string[] = [];
    const result = await linear(manager, log).execute();
    expect(log).toEqual([
      "start a",
      "checkpoint a",
      "start b",
      "checkpoint b",
      "start c",
      "checkpoint c",
      "checkpoint pipeline_complete",
    ]);
    expect(result.checkpointsCreated).toBe(4);
  });

  it("async: the next stage starts before the checkpoint is written; the same chain is stored", async () => {
    const manager = sqliteManager();
    const log: string[] = [];
    const result = await linear(manager, log, { durability: "async" }).execute();
    expect(log.indexOf("start b")).toBeLessThan(log.indexOf("checkpoint a"));
    expect(log.indexOf("start c")).toBeLessThan(log.indexOf("checkpoint b"));
    // Writes stay serialised and in completion order.
    expect(log.filter((l) => l.startsWith("checkpoint"))).toEqual([
      "checkpoint a",
      "checkpoint b",
      "checkpoint c",
      "checkpoint pipeline_complete",
    ]);
    expect(await stagesOf(manager, result.pipelineId)).toEqual([
      "a:completed",
      "b:completed",
      "c:completed",
      "pipeline_complete:completed",
    ]);
    expect(result.checkpointsCreated).toBe(4);
    // Each stage result names its checkpoint once it is written; each record holds its completions.
    for (const stage of ["a", "b", "c"]) expect(result.stepsResults[stage]?.checkpointId).toBeDefined();
    const b = await manager.loadCheckpoint(result.stepsResults.b?.checkpointId as string);
    expect(b.completedStages).toEqual(["a", "b"]);
    expect(Object.keys(b.agentOutputs).sort()).toEqual(["a", "b"]);
    // The write time of a's checkpoint is recorded in the next record.
    const timings = b.stateData.stage_timings as Record<string, { checkpoint_ms?: number }>;
    expect(timings.a?.checkpoint_ms).toBeGreaterThanOrEqual(0);
  });

  it("async: a stage with side effects starts after every earlier checkpoint, and the next waits for its own", async () => {
    const manager = sqliteManager();
    const log: string[] = [];
    const agent = async (_inputs: Record<string, unknown>, ctx: { stageName: string }) => {
      await sleep(2);
      return { stage: ctx.stageName };
    };
    const pipeline = new Pipeline({
      name: "durable",
      checkpointEnabled: true,
      checkpointStore: manager,
      durability: "async",
      steps: [
        { name: "a", agent },
        { name: "b", agent, sideEffects: true },
        { name: "c", agent },
        { name: "d", agent },
      ],
      onEvent: (e: PipelineEvent) => {
        if (e.type === "stage_started") log.push(`start ${e.stageName}`);
        if (e.type === "checkpoint_created") log.push(`checkpoint ${e.stageName}`);
      },
    });
    await pipeline.execute();
    expect(log.slice(0, 5)).toEqual(["start a", "checkpoint a", "start b", "checkpoint b", "start c"]);
    // After c, plain async again: d starts before c's checkpoint is written.
    expect(log.indexOf("start d")).toBeLessThan(log.indexOf("checkpoint c"));
  });

  it("async: a stage failure waits for the queued checkpoints, then writes the failed one", async () => {
    const manager = sqliteManager();
    const log: string[] = [];
    const pipeline = linear(manager, log, { durability: "async" }, (stage) => {
      if (stage === "c") throw new Error("c broke");
    });
    const error = await pipeline.execute().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "CAIRN_STAGE_FAILED", stageName: "c" });
    expect(await stagesOf(manager, pipeline.pipelineId as string)).toEqual([
      "a:completed",
      "b:completed",
      "c:failed",
    ]);
    // The resume skips what the queued checkpoints hold.
    const again = await linear(manager, [], { durability: "async" }).execute();
    expect(again.skippedStages).toEqual(["a", "b"]);
  });

  it("async on a DAG: one checkpoint per completion, in completion order, each stage run once", async () => {
    const manager = sqliteManager();
    const trace = newTrace();
    const nodes = DIAMOND.map((n) => (n.name === "b" ? { ...n, delayMs: 30 } : n));
    const result = await graphPipeline(manager, nodes, trace, {}, { durability: "async" }).execute();
    expect(trace.calls.sort()).toEqual(["a", "b", "c", "d"]);
    const records = await checkpointsOf(manager, result.pipelineId);
    const order = trace.ends;
    expect(records.map((r) => r.metadata.stageName)).toEqual([...order, "pipeline_complete"]);
    records.slice(0, 4).forEach((r, i) => {
      expect(r.completedStages).toEqual(order.slice(0, i + 1));
    });
    expect(result.checkpointsCreated).toBe(5);
  });

  for (const options of [{ durability: "exit" }, { checkpointAfterEachStep: false }]) {
    it(`${JSON.stringify(options)}: checkpoints only at completion, pause and failure`, async () => {
      const manager = sqliteManager();
      const log: string[] = [];
      const done = await linear(manager, log, options).execute();
      expect(await stagesOf(manager, done.pipelineId)).toEqual(["pipeline_complete:completed"]);
      let pipeline: Pipeline | undefined;
      pipeline = linear(manager, [], options, (stage) => {
        if (stage === "b") pipeline?.pause();
      });
      const paused = await pipeline.execute({ resume: false });
      expect(paused.status).toBe("paused");
      expect(await stagesOf(manager, paused.pipelineId)).toEqual(["b:in_progress"]);
      const failing = linear(manager, [], options, (stage) => {
        if (stage === "c") throw new Error("c broke");
      });
      await expect(failing.execute()).rejects.toMatchObject({ code: "CAIRN_STAGE_FAILED" });
      expect(await stagesOf(manager, paused.pipelineId)).toEqual(["b:resumed", "c:failed"]);
    });
  }

  it("YAML: durability, checkpoint_policy and a step's side_effects; bad values reported", async () => {
    Pipeline.registerAgent("DurableEcho", () => ({ ok: true }));
    const file = join(dir, "p.yaml");
    await writeFile(
      file,
      "name: p\ndurability: async\ncheckpoint_policy: auto\nsteps:\n  - { name: a, agent: DurableEcho, side_effects: true }\n",
    );
    const options = await loadPipelineOptions(file);
    expect(options).toMatchObject({ durability: "async", checkpointPolicy: "auto" });
    expect(options.steps[0]?.sideEffects).toBe(true);
    expect(() => new Pipeline(options)).not.toThrow();
    await writeFile(
      file,
      "name: p\ndurability: later\nsteps:\n  - { name: a, agent: DurableEcho, side_effects: 1 }\n",
    );
    await expect(Pipeline.fromFile(file)).rejects.toThrow(
      /durability must be one of[\s\S]*step a: sideEffects must be a boolean/,
    );
  });

  it("validation: unknown values, and checkpointAfterEachStep: false against another durability", () => {
    const steps = [{ name: "a", agent: () => 1, sideEffects: "yes" }];
    const error = (() => {
      try {
        new Pipeline({
          name: "p",
          // biome-ignore lint/suspicious/noExplicitAny: invalid on purpose
          steps: steps as any,
          // biome-ignore lint/suspicious/noExplicitAny: invalid on purpose
          durability: "eventually" as any,
          // biome-ignore lint/suspicious/noExplicitAny: invalid on purpose
          checkpointPolicy: "sometimes" as any,
        });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidPipelineError);
    expect((error as InvalidPipelineError).problems).toEqual([
      'durability must be one of "sync", "async", "exit", got "eventually"',
      'checkpointPolicy must be one of "every-stage", "auto", got "sometimes"',
      "step a: sideEffects must be a boolean",
    ]);
    expect(
      () =>
        new Pipeline({
          name: "p",
          steps: [{ name: "a", agent: () => 1 }],
          durability: "async",
          checkpointAfterEachStep: false,
        }),
    ).toThrow(/checkpointAfterEachStep: false is durability "exit"/);
    expect(
      () =>
        new Pipeline({
          name: "p",
          steps: [{ name: "a", agent: () => 1 }],
          durability: "exit",
          checkpointAfterEachStep: false,
        }),
    ).not.toThrow();
  });
});

describe.skipIf(!postgresUp)("async write error (PostgreSQL refuses the insert)", () => {
  for (const durability of ["async", "sync"] as const) {
    it(`${durability}: the run fails with the store's typed error${durability === "async" ? " at the next stage boundary" : ""}`, async () => {
      const schema = uniqueName("cairn_durable");
      schemas.push(schema);
      const manager = new CheckpointManager({ store: `${POSTGRES_URL}?schema=${schema}&tablePrefix=t_` });
      managers.push(manager);
      const log: string[] = [];
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        // Stage a's agent makes the store refuse every checkpoint from now on: a's own write fails.
        const pipeline = linear(manager, log, { durability }, async (stage) => {
          // b outlasts a's failing write, so the boundary that fails the run is b's completion.
          if (stage === "b") await sleep(300);
          if (stage !== "a") return;
          await client.query(
            `CREATE FUNCTION "${schema}".refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse BEFORE INSERT ON "${schema}".t_checkpoints FOR EACH ROW EXECUTE FUNCTION "${schema}".refuse();`,
          );
        });
        const error = await pipeline.execute().catch((e: unknown) => e);
        expect(error, String((error as Error).message)).toMatchObject({ code: "CAIRN_STORE_FAILED" });
        expect((error as Error).message).toContain("refused by test");
        // async: b ran while a's write failed, and the run stopped when b finished; sync: a's write
        // failed before b could start. No checkpoint was ever reported written.
        expect(log).toEqual(durability === "async" ? ["start a", "start b"] : ["start a"]);
        expect(await manager.getCheckpointHistory(pipeline.pipelineId as string)).toEqual([]);
      } finally {
        await client.end();
      }
    });
  }
});
