/**
 * Pipeline versions: the planner's skip / migrate / rerun / run decisions for output versions,
 * what a migrated stage records, and the validation of the options.
 */
import { afterEach, describe, expect, it } from "vitest";
import { sha256 } from "../../src/core/record.js";
import {
  CheckpointManager,
  InvalidPipelineError,
  Pipeline,
  type PipelineCheckpoint,
  type PipelineEvent,
  type StepDefinition,
} from "../../src/index.js";
import { validatePipeline } from "../../src/pipeline/validate.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

const managers: CheckpointManager[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
});
function memory(): CheckpointManager {
  const m = new CheckpointManager({ store: new MemoryStore() });
  managers.push(m);
  return m;
}

/** The v1 shape of `totals`: `{ sum }`; v2: `{ total, currency }`. */
const totalsV1 = (calls: string[]): StepDefinition => ({
  name: "totals",
  agent: function totals(inputs: Record<string, unknown>) {
    calls.push("totals");
    return { sum: (inputs.values as number[]).reduce((a, b) => a + b, 0), n: 3 };
  },
});
const totalsV2 = (calls: string[], extra: Partial<StepDefinition> = {}): StepDefinition => ({
  name: "totals",
  outputVersion: 2,
  agent: function totals(inputs: Record<string, unknown>) {
    calls.push("totals");
    return { total: (inputs.values as number[]).reduce((a, b) => a + b, 0), currency: "EUR", n: 3 };
  },
  migrateOutput: (output, from) => {
    const { sum, ...rest } = output as { sum: number };
    if (from !== 1) throw new Error(`unexpected version ${from}`);
    return { ...rest, total: sum, currency: "EUR" };
  },
  ...extra,
});
/** Reads only `n` of totals: untouched by the migration. */
const count = (calls: string[]): StepDefinition => ({
  name: "count",
  inputs: { n: "$totals.n" },
  agent: function count(inputs: Record<string, unknown>) {
    calls.push("count");
    return { n: inputs.n };
  },
});
/** Reads the whole output of totals: its resolved inputs follow the migrated shape. */
const report = (calls: string[]): StepDefinition => ({
  name: "report",
  inputs: { totals: "$totals" },
  agent: function report(inputs: Record<string, unknown>, ctx) {
    calls.push("report");
    if (process.env[`FAIL_${ctx.pipelineId}`]) throw new Error("report broke");
    return { seen: inputs.totals };
  },
});

async function latestOf(manager: CheckpointManager, runId: string): Promise<PipelineCheckpoint> {
  const checkpoint = await manager.loadLatestCheckpoint(runId);
  if (!checkpoint) throw new Error(`run ${runId} has no checkpoint`);
  return checkpoint;
}

function build(
  manager: CheckpointManager,
  steps: StepDefinition[],
  extra: { version?: string; events?: PipelineEvent[] } = {},
) {
  return new Pipeline({
    name: "versions",
    checkpointEnabled: true,
    checkpointStore: manager,
    steps,
    ...(extra.version !== undefined ? { version: extra.version } : {}),
    ...(extra.events ? { onEvent: (e: PipelineEvent) => extra.events?.push(e) } : {}),
  });
}

/** Runs totals (v1), count and report with report failing: the v1 run stops after two stages. */
async function failedV1Run(manager: CheckpointManager, runId: string): Promise<void> {
  process.env[`FAIL_${runId}`] = "1";
  try {
    await expect(
      build(manager, [totalsV1([]), count([]), report([])], { version: "1.0.0" }).execute({
        runId,
        inputs: { values: [1, 2] },
      }),
    ).rejects.toMatchObject({ stageName: "report" });
  } finally {
    delete process.env[`FAIL_${runId}`];
  }
}

describe("the planner and output versions", () => {
  it("migrates an older output when the step has migrateOutput; later stages see the migrated shape", async () => {
    const manager = memory();
    await failedV1Run(manager, "m1");
    const calls: string[] = [];
    const events: PipelineEvent[] = [];
    const p = build(manager, [totalsV2(calls), count(calls), report(calls)], { version: "2.0.0", events });
    const plan = await p.execute({ runId: "m1", dryRun: true });
    expect(plan.pipelineVersion).toBe("2.0.0");
    expect(plan.stages.map((s) => [s.stageName, s.action, s.reason])).toEqual([
      ["totals", "migrate", "its output version changed (1 → 2); migrateOutput converts it"],
      // count reads totals.n, which the migration keeps: its fingerprint still matches.
      ["count", "skip", undefined],
      ["report", "run", undefined],
    ]);
    expect(plan.stages[0]).toMatchObject({ fromVersion: 1, toVersion: 2 });
    expect(calls).toEqual([]);

    const results = await p.execute({ runId: "m1" });
    expect(calls).toEqual(["report"]);
    expect(results.migratedStages).toEqual([{ stageName: "totals", fromVersion: 1, toVersion: 2 }]);
    expect(results.skippedStages).toEqual(["count"]);
    expect(results.stepsResults.totals).toMatchObject({ status: "migrated", attempts: 0 });
    expect(results.finalOutputs.totals).toEqual({ total: 3, currency: "EUR", n: 3 });
    expect(results.finalOutputs.report).toEqual({ seen: { total: 3, currency: "EUR", n: 3 } });
    expect(events.filter((e) => e.type === "stage_migrated")).toMatchObject([
      { stageName: "totals", stageIndex: 0, fromVersion: 1, toVersion: 2 },
    ]);
    // The migrated output is what the stored run now holds.
    const latest = await latestOf(manager, "m1");
    expect(latest.agentOutputs.totals).toEqual({ total: 3, currency: "EUR", n: 3 });
  });

  it("re-runs a stage whose output version changed without a migration, and every later stage", async () => {
    const manager = memory();
    await failedV1Run(manager, "m2");
    const calls: string[] = [];
    const { migrateOutput: _none, ...noMigration } = totalsV2(calls);
    const p = build(manager, [noMigration, count(calls), report(calls)], { version: "2.0.0" });
    const plan = await p.execute({ runId: "m2", dryRun: true });
    expect(plan.stages.map((s) => [s.action, s.reason])).toEqual([
      ["rerun", "its output version changed (1 → 2) and the step has no migrateOutput"],
      ["rerun", "an earlier stage (totals) runs again"],
      ["run", undefined],
    ]);
    const results = await p.execute({ runId: "m2" });
    expect(calls).toEqual(["totals", "count", "report"]);
    expect(results.migratedStages).toEqual([]);
    expect(results.rerunStages.map((r) => r.stageName)).toEqual(["totals", "count"]);
  });

  it("re-runs a later stage whose resolved inputs follow the migrated shape", async () => {
    const manager = memory();
    // report completed too in this run: it read the whole v1 output of totals.
    const failing: StepDefinition = {
      name: "last",
      agent: () => {
        throw new Error("last broke");
      },
    };
    await expect(
      build(manager, [totalsV1([]), report([]), failing], { version: "1.0.0" }).execute({
        runId: "m3",
        inputs: { values: [4] },
      }),
    ).rejects.toMatchObject({ stageName: "last" });
    const calls: string[] = [];
    const p = build(manager, [totalsV2(calls), report(calls), { name: "last", agent: () => 1 }], {
      version: "2.0.0",
    });
    const plan = await p.execute({ runId: "m3", dryRun: true });
    expect(plan.stages.map((s) => [s.action, s.reason])).toEqual([
      ["migrate", "its output version changed (1 → 2); migrateOutput converts it"],
      ["rerun", "its resolved inputs changed"],
      ["run", undefined],
    ]);
    await p.execute({ runId: "m3" });
    expect(calls).toEqual(["report"]);
  });

  it("plans later stages with a migrated output of null, not the stored one", async () => {
    const manager = memory();
    const failing: StepDefinition = {
      name: "last",
      agent: () => {
        throw new Error("last broke");
      },
    };
    await expect(
      build(manager, [totalsV1([]), report([]), failing], { version: "1.0.0" }).execute({
        runId: "m7",
        inputs: { values: [4] },
      }),
    ).rejects.toMatchObject({ stageName: "last" });
    const calls: string[] = [];
    const p = build(
      manager,
      [totalsV2(calls, { migrateOutput: () => null }), report(calls), { name: "last", agent: () => 1 }],
      {
        version: "2.0.0",
      },
    );
    const plan = await p.execute({ runId: "m7", dryRun: true });
    expect(plan.stages.map((s) => [s.action, s.reason])).toEqual([
      ["migrate", "its output version changed (1 → 2); migrateOutput converts it"],
      ["rerun", "its resolved inputs changed"],
      ["run", undefined],
    ]);
    const results = await p.execute({ runId: "m7" });
    expect(calls).toEqual(["report"]);
    expect(results.finalOutputs).toMatchObject({ totals: null, report: { seen: null } });
  });

  it("re-runs instead of migrating when the stage's own inputs changed", async () => {
    const manager = memory();
    await failedV1Run(manager, "m4");
    const calls: string[] = [];
    const p = build(manager, [totalsV2(calls), count(calls), report(calls)], { version: "2.0.0" });
    const plan = await p.execute({ runId: "m4", dryRun: true, inputs: { values: [5, 6] } });
    expect(plan.stages.map((s) => [s.action, s.reason])).toEqual([
      ["rerun", "its resolved inputs changed"],
      ["rerun", "an earlier stage (totals) runs again"],
      ["run", undefined],
    ]);
  });

  it("re-runs a stage whose stored output is newer than the step's (a rolled-back deploy)", async () => {
    const manager = memory();
    process.env.FAIL_m5 = "1";
    await expect(
      build(manager, [totalsV2([]), count([]), report([])], { version: "2.0.0" }).execute({
        runId: "m5",
        inputs: { values: [1] },
      }),
    ).rejects.toMatchObject({ stageName: "report" });
    delete process.env.FAIL_m5;
    const calls: string[] = [];
    const p = build(manager, [totalsV1(calls), count(calls), report(calls)], { version: "1.0.0" });
    const plan = await p.execute({ runId: "m5", dryRun: true });
    expect(plan.stages.map((s) => [s.action, s.reason])).toEqual([
      ["rerun", "its stored output version 2 is newer than the step's (1)"],
      ["rerun", "an earlier stage (totals) runs again"],
      ["run", undefined],
    ]);
    await p.execute({ runId: "m5" });
    expect(calls).toEqual(["totals", "count", "report"]);
  });

  it("skips a migrated stage on the next resume, and plans a finished run without migrating", async () => {
    const manager = memory();
    await failedV1Run(manager, "m6");
    let migrations = 0;
    const step = totalsV2([], {
      migrateOutput: (output) => {
        migrations++;
        const { sum, ...rest } = output as { sum: number };
        return { ...rest, total: sum, currency: "EUR" };
      },
    });
    // The v2 run stops before its last stage: the migrated output is in its checkpoint.
    process.env.FAIL_m6 = "1";
    await expect(
      build(manager, [step, count([]), report([])], { version: "2.0.0" }).execute({ runId: "m6" }),
    ).rejects.toMatchObject({ stageName: "report" });
    delete process.env.FAIL_m6;
    expect(migrations).toBe(1);
    const calls: string[] = [];
    const p = build(manager, [step, count(calls), report(calls)], { version: "2.0.0" });
    const plan = await p.execute({ runId: "m6", dryRun: true });
    expect(plan.stages.map((s) => s.action)).toEqual(["skip", "skip", "run"]);
    await p.execute({ runId: "m6" });
    expect(calls).toEqual(["report"]);
    expect(migrations).toBe(1);

    // A finished run under a newer output version: nothing runs, the migration is not called.
    const v3 = build(
      manager,
      [
        totalsV2([], {
          outputVersion: 3,
          migrateOutput: () => {
            migrations++;
            return {};
          },
        }),
        count([]),
        report([]),
      ],
      { version: "3.0.0" },
    );
    const finished = await v3.execute({ runId: "m6", dryRun: true });
    expect(finished.stages[0]).toMatchObject({
      action: "skip",
      reason:
        "the run already completed (changed since: its output version changed (2 → 3); migrateOutput converts it)",
    });
    expect((await v3.execute({ runId: "m6" })).alreadyComplete).toBe(true);
    expect(migrations).toBe(1);
  });
});

describe("what a migrated stage records", () => {
  it("records the pipeline version, output versions and the migration; provenance covers it", async () => {
    const manager = memory();
    await failedV1Run(manager, "r1");
    const before = await latestOf(manager, "r1");
    expect(before.pipelineVersion).toBe("1.0.0");
    expect(before.outputVersions).toEqual({ totals: 1, count: 1 });
    expect(before.outputMigrations).toEqual({});

    const p = build(manager, [totalsV2([]), count([]), report([])], { version: "2.0.0" });
    await p.execute({ runId: "r1" });
    const history = await manager.getCheckpointHistory("r1");
    for (const m of history.filter((h) => h.sequence > 3)) {
      const c = await manager.loadCheckpoint(m.checkpointId);
      expect(c.pipelineVersion).toBe("2.0.0");
      expect(c.outputVersions).toMatchObject({ totals: 2, count: 1 });
      expect(c.outputMigrations).toEqual({ totals: { from: 1, to: 2, by: "2.0.0" } });
    }
    const after = await latestOf(manager, "r1");
    expect(after.outputVersions).toEqual({ totals: 2, count: 1, report: 1 });
    // The same output made by the agent would have another provenance: this one says it was migrated.
    expect(after.provenanceHashes.totals).not.toBe(before.provenanceHashes.totals);
    expect(after.provenanceHashes.count).toBe(before.provenanceHashes.count);
    const fresh = build(manager, [totalsV2([]), count([]), report([])], { version: "2.0.0" });
    const freshRun = await fresh.execute({ runId: "r1-fresh", inputs: { values: [1, 2] } });
    expect(after.agentOutputs).toEqual(freshRun.finalOutputs);
    const freshLatest = await latestOf(manager, "r1-fresh");
    expect(after.provenanceHashes.totals).not.toBe(freshLatest.provenanceHashes.totals);
    expect(freshLatest.outputMigrations).toEqual({});
  });
});

describe("fingerprints across the upgrade", () => {
  it("keeps the definition text of a step without an output version exactly as before", () => {
    const [plain, configured, versioned, withOne] = validatePipeline({
      name: "pin",
      steps: [
        { name: "a", agent: () => 1 },
        { name: "b", agent: () => 1, inputs: { x: "$a.v", k: 2 }, config: { level: 3 } },
        { name: "c", agent: () => 1, outputVersion: 2 },
        { name: "d", agent: () => 1, outputVersion: 1 },
      ],
    });
    // The texts and hashes stored runs hold (written before output versions existed).
    expect(plain?.definitionText).toBe('{"config":{},"inputs":{}}');
    expect(sha256(plain?.definitionText ?? "")).toBe(
      "d50b93cbeefa8c36b9a75924601af8e2a3d5bc6ab46a152d62263dee757318eb",
    );
    expect(configured?.definitionText).toBe('{"config":{"level":3},"inputs":{"k":2,"x":"$a.v"}}');
    expect(withOne?.definitionText).toBe(plain?.definitionText);
    expect(versioned?.definitionText).toBe('{"config":{},"inputs":{},"outputVersion":2}');
  });
});

describe("option validation", () => {
  const agent = () => 1;
  const problemsOf = (options: Record<string, unknown>): readonly string[] => {
    try {
      new Pipeline({ name: "v", steps: [{ name: "a", agent }], ...options });
    } catch (error) {
      if (error instanceof InvalidPipelineError) return error.problems;
      throw error;
    }
    return [];
  };
  it("accepts a printable version and a positive integer outputVersion", () => {
    expect(problemsOf({ version: "2.0.0-rc.1 (friday)" })).toEqual([]);
    expect(problemsOf({ version: "x".repeat(128) })).toEqual([]);
  });
  it.each([
    [{ version: 2 }, /version must be a string such as "2.0.0", got 2/],
    [{ version: "" }, /version "" must be 1 to 128 printable characters/],
    [{ version: "x".repeat(129) }, /must be 1 to 128 printable characters/],
    [{ version: " 1.0" }, /without leading or trailing spaces/],
    [{ version: "1.0\n" }, /printable characters/],
    [{ migrateState: "./m.js:f" }, /migrateState must be a function/],
    [
      { steps: [{ name: "a", agent, outputVersion: 0 }] },
      /step a: outputVersion must be an integer ≥ 1, got 0/,
    ],
    [{ steps: [{ name: "a", agent, outputVersion: 1.5 }] }, /outputVersion must be an integer ≥ 1, got 1.5/],
    [{ steps: [{ name: "a", agent, outputVersion: "2" }] }, /outputVersion must be an integer ≥ 1, got "2"/],
    [
      { steps: [{ name: "a", agent, outputVersion: 2, migrateOutput: 3 }] },
      /step a: migrateOutput must be a function/,
    ],
    [
      { steps: [{ name: "a", agent, migrateOutput: (o: unknown) => o }] },
      /step a: migrateOutput .* outputVersion is 1/,
    ],
  ])("rejects %j", (options, problem) => {
    expect(problemsOf(options)).toEqual([expect.stringMatching(problem)]);
  });
});
