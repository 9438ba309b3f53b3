import { afterEach, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline, type PipelineEvent, type StepDefinition } from "../../src/index.js";
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

/** Steps named `names`, each adding its name to the journal; `fail` throws. */
function steps(names: string[], calls: string[], fail?: string): StepDefinition[] {
  return names.map((name) => ({
    name,
    agent: (inputs: Record<string, unknown>) => {
      calls.push(name);
      if (name === fail) throw new Error(`${name} broke`);
      return { from: name, seen: Object.keys(inputs).sort() };
    },
  }));
}

function pipeline(manager: CheckpointManager, names: string[], calls: string[], fail?: string) {
  const events: PipelineEvent[] = [];
  const p = new Pipeline({
    name: "lin",
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: steps(names, calls, fail),
    onEvent: (e) => events.push(e),
  });
  return { p, events };
}

describe("the resume plan is the plan that runs", () => {
  it("re-runs every completed stage after an inserted stage, and says why", async () => {
    const manager = memory();
    const first: string[] = [];
    await expect(
      pipeline(manager, ["a", "b", "c"], first, "c").p.execute({ runId: "r1", inputs: { k: 1 } }),
    ).rejects.toMatchObject({ stageName: "c" });
    expect(first).toEqual(["a", "b", "c"]);

    const calls: string[] = [];
    const { p, events } = pipeline(manager, ["a", "x", "b", "c"], calls);
    const plan = await p.execute({ runId: "r1", dryRun: true });
    expect(plan.stages.map((s) => [s.stageName, s.action, s.reason])).toEqual([
      ["a", "skip", undefined],
      ["x", "run", undefined],
      ["b", "rerun", "an earlier stage (x) runs"],
      ["c", "run", undefined],
    ]);
    const results = await p.execute({ runId: "r1" });
    expect(calls).toEqual(["x", "b", "c"]);
    expect(results.skippedStages).toEqual(["a"]);
    expect(results.rerunStages).toEqual([{ stageName: "b", reason: "an earlier stage (x) runs" }]);
    expect(events.flatMap((e) => (e.type === "stage_rerun" ? [`${e.stageName}: ${e.reason}`] : []))).toEqual([
      "b: an earlier stage (x) runs",
    ]);
  });

  it("ignores the outputs of removed stages and skips unchanged later ones", async () => {
    const manager = memory();
    await pipeline(manager, ["a", "b", "c", "d"], [], "d")
      .p.execute({ runId: "r2" })
      .catch(() => undefined);
    const calls: string[] = [];
    const { p } = pipeline(manager, ["a", "c", "d"], calls);
    const plan = await p.execute({ runId: "r2", dryRun: true });
    expect(plan.stages.map((s) => s.action)).toEqual(["skip", "skip", "run"]);
    const results = await p.execute({ runId: "r2" });
    expect(calls).toEqual(["d"]);
    expect(Object.keys(results.finalOutputs).sort()).toEqual(["a", "c", "d"]);
  });

  it("plans a finished run as all skipped, naming what changed, and runs nothing", async () => {
    const manager = memory();
    await pipeline(manager, ["a", "b"], []).p.execute({ runId: "r3" });
    const calls: string[] = [];
    const { p } = pipeline(manager, ["a", "x", "b"], calls);
    const plan = await p.execute({ runId: "r3", dryRun: true });
    expect(plan.stages.map((s) => [s.action, s.reason])).toEqual([
      ["skip", undefined],
      ["skip", "the run already completed without this stage"],
      ["skip", "the run already completed (changed since: an earlier stage (x) runs)"],
    ]);
    const results = await p.execute({ runId: "r3" });
    expect(calls).toEqual([]);
    expect(results.skippedStages).toEqual(plan.stages.map((s) => s.stageName));
  });

  it("re-runs a stage whose input reference no longer resolves, and fails there", async () => {
    const manager = memory();
    const old = new Pipeline({
      name: "refs",
      checkpointEnabled: true,
      checkpointStore: manager,
      steps: [
        { name: "a", agent: () => ({ v: 1 }) },
        { name: "b", agent: (i) => ({ got: i.x }), inputs: { x: "$a.v" } },
        {
          name: "c",
          agent: () => {
            throw new Error("c broke");
          },
        },
      ],
    });
    await old.execute({ runId: "r4" }).catch(() => undefined);
    const changed = new Pipeline({
      name: "refs",
      checkpointEnabled: true,
      checkpointStore: manager,
      steps: [
        { name: "a", agent: () => ({ v: 1 }) },
        { name: "b", agent: (i) => ({ got: i.x }), inputs: { x: "$a.missing" } },
        { name: "c", agent: () => 3 },
      ],
    });
    const plan = await changed.execute({ runId: "r4", dryRun: true });
    expect(plan.stages.map((s) => s.action)).toEqual(["skip", "rerun", "run"]);
    expect(plan.stages[1]?.reason).toMatch(/cannot be resolved any more.*\$a\.missing/);
    await expect(changed.execute({ runId: "r4" })).rejects.toMatchObject({ stageName: "b" });
  });
});
