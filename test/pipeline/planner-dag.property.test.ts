/**
 * Property, for DAG pipelines: after any edit of a random graph whose run failed part-way (with
 * branches running concurrently), the plan a dry run prints is exactly what `execute()` then
 * does, and it matches a small model of the build-system rules: a completed stage is reused only
 * if it is unchanged and every dependency is reused; otherwise it re-runs, naming the earliest
 * ancestor (in definition order) that runs or re-runs for its own reason.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline, type StepDefinition } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

interface NodeSpec {
  name: string;
  version: string;
  deps: string[];
  n?: number;
  /** A dependency (direct or transitive) whose output `v` this one reads. */
  ref?: string;
  config?: number;
}

function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function build(specs: readonly NodeSpec[], store: CheckpointManager, calls: string[], failAt?: string) {
  const steps = specs.map(
    (s, i): StepDefinition => ({
      name: s.name,
      dependsOn: s.deps,
      ...(s.n !== undefined || s.ref !== undefined
        ? {
            inputs: {
              ...(s.n !== undefined ? { n: s.n } : {}),
              ...(s.ref !== undefined ? { up: `$${s.ref}.v` } : {}),
            },
          }
        : {}),
      ...(s.config !== undefined ? { config: { level: s.config } } : {}),
      agent: {
        name: "Node",
        version: s.version,
        process: async (received, ctx) => {
          calls.push(ctx.stageName);
          // Uneven durations, so branches finish in varying orders.
          await sleep((i * 7) % 4);
          if (ctx.stageName === failAt) throw new Error(`${ctx.stageName} broke`);
          return { v: hash(`${s.version}:${JSON.stringify(received)}:${JSON.stringify(ctx.config)}`) };
        },
      },
    }),
  );
  return new Pipeline({
    name: "dagprop",
    checkpointEnabled: true,
    checkpointStore: store,
    maxConcurrency: 3,
    steps,
  });
}

function ancestors(specs: readonly NodeSpec[], name: string): Set<string> {
  const found = new Set<string>();
  const stack = [...(specs.find((s) => s.name === name)?.deps ?? [])];
  while (stack.length > 0) {
    const next = stack.pop() as string;
    if (found.has(next)) continue;
    found.add(next);
    stack.push(...(specs.find((s) => s.name === next)?.deps ?? []));
  }
  return found;
}

/** Keeps dependencies and references on existing earlier stages, as a user fixing the file would. */
function fix(specs: NodeSpec[]): NodeSpec[] {
  const out: NodeSpec[] = [];
  for (const s of specs) {
    const deps = s.deps.filter((d) => out.some((e) => e.name === d));
    const node = { ...s, deps };
    if (node.ref !== undefined && !ancestors([...out, node], node.name).has(node.ref)) delete node.ref;
    out.push(node);
  }
  return out;
}

interface RawNode {
  version: string;
  deps: number;
  n: number | undefined;
  ref: number | undefined;
  config: number | undefined;
}

const nodeArb: fc.Arbitrary<RawNode> = fc.record({
  version: fc.constantFrom("1", "2"),
  deps: fc.nat(),
  n: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  ref: fc.option(fc.nat(), { nil: undefined }),
  config: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
});

function graphOf(raw: readonly RawNode[]): NodeSpec[] {
  const specs: NodeSpec[] = [];
  raw.forEach((r, i) => {
    // Each earlier stage is a dependency when its bit is set.
    const deps = specs.filter((_, j) => (r.deps >> j) & 1).map((s) => s.name);
    const node: NodeSpec = { name: `s${i}`, version: r.version, deps };
    if (r.n !== undefined) node.n = r.n;
    if (r.config !== undefined) node.config = r.config;
    const reachable = [...ancestors([...specs, node], node.name)].sort();
    if (r.ref !== undefined && reachable.length > 0) node.ref = reachable[r.ref % reachable.length];
    specs.push(node);
  });
  return specs;
}

interface Edit {
  kind: "insert" | "remove" | "rename" | "version" | "inputs" | "config" | "addDep" | "dropDep";
  at: number;
  value: number;
}

const editArb: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom("insert", "remove", "rename", "version", "inputs", "config", "addDep", "dropDep"),
  at: fc.nat(),
  value: fc.nat(),
});

function applyEdit(specs: NodeSpec[], edit: Edit, fresh: () => string): NodeSpec[] {
  const out = specs.map((s) => ({ ...s, deps: [...s.deps] }));
  const i = edit.at % out.length;
  const target = out[i] as NodeSpec;
  const earlier = out.slice(0, i);
  switch (edit.kind) {
    case "insert":
      out.splice(i, 0, {
        name: fresh(),
        version: "1",
        deps: earlier.filter((_, j) => (edit.value >> j) & 1).map((s) => s.name),
        n: edit.value % 4,
      });
      break;
    case "remove":
      if (out.length > 1) out.splice(i, 1);
      break;
    case "rename": {
      const name = fresh();
      for (const s of out) {
        s.deps = s.deps.map((d) => (d === target.name ? name : d));
        if (s.ref === target.name) s.ref = name;
      }
      target.name = name;
      break;
    }
    case "version":
      target.version = target.version === "1" ? "2" : "1";
      break;
    case "inputs":
      target.n = ((target.n ?? 0) + 1) % 4;
      break;
    case "config":
      target.config = ((target.config ?? -1) + 1) % 3;
      break;
    case "addDep": {
      const dep = earlier[edit.value % Math.max(1, earlier.length)];
      if (dep && !target.deps.includes(dep.name)) target.deps.push(dep.name);
      break;
    }
    case "dropDep":
      if (target.deps.length > 0) target.deps.splice(edit.value % target.deps.length, 1);
      break;
  }
  return fix(out);
}

/** The build-system rules, written independently of the planner. */
function model(
  old: readonly NodeSpec[],
  completed: ReadonlySet<string>,
  next: readonly NodeSpec[],
  inputsChanged: boolean,
): { stageName: string; action: string; reason: RegExp | undefined }[] {
  const actions = new Map<string, string>();
  const causes: string[] = [];
  return next.map((s) => {
    const before = old.find((o) => o.name === s.name);
    const done = before !== undefined && completed.has(s.name);
    const blocked = s.deps.some((d) => actions.get(d) !== "skip");
    let action: string;
    let reason: RegExp | undefined;
    if (!done) {
      action = "run";
      if (!blocked) causes.push(s.name);
    } else if (blocked) {
      const up = ancestors(next, s.name);
      const cause = causes.find((c) => up.has(c)) as string;
      const verb = actions.get(cause) === "run" ? "runs" : "runs again";
      action = "rerun";
      reason = new RegExp(`^an earlier stage \\(${cause}\\) ${verb}$`);
    } else {
      if (before.version !== s.version) reason = /agent changed/;
      else if (before.n !== s.n || before.ref !== s.ref || before.config !== s.config)
        reason = /step definition/;
      else if (inputsChanged) reason = /resolved inputs changed/;
      action = reason ? "rerun" : "skip";
      if (reason) causes.push(s.name);
    }
    actions.set(s.name, action);
    return { stageName: s.name, action, reason };
  });
}

describe("resume planner over DAGs", () => {
  it("execute() does exactly what the dry run planned, after any edit of a random graph", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(nodeArb, { minLength: 3, maxLength: 7 }),
        fc.nat(),
        fc.array(editArb, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
        async (raw, failPick, edits, changeInputs) => {
          const old = graphOf(raw);
          const failAt = (old[failPick % old.length] as NodeSpec).name;
          let names = 0;
          const next = edits.reduce((specs, e) => applyEdit(specs, e, () => `n${names++}`), old);
          const store = new CheckpointManager({ store: new MemoryStore() });
          const runId = `case-${++runs}`;
          try {
            await expect(
              build(old, store, [], failAt).execute({ runId, inputs: { seed: 1 } }),
            ).rejects.toMatchObject({ stageName: failAt });
            const failed = await store.loadLatestCheckpoint(runId);
            const completed = new Set(failed?.completedStages ?? []);

            const calls: string[] = [];
            const pipeline = build(next, store, calls);
            const inputs = changeInputs ? { inputs: { seed: 2 } } : {};
            const plan = await pipeline.execute({ runId, dryRun: true, ...inputs });
            const expected = model(old, completed, next, changeInputs);
            expect(plan.stages.map((s) => [s.stageName, s.action])).toEqual(
              expected.map((e) => [e.stageName, e.action]),
            );
            plan.stages.forEach((s, i) => {
              const reason = expected[i]?.reason;
              if (reason) expect(s.reason).toMatch(reason);
              else expect(s.reason).toBeUndefined();
            });

            const results = await pipeline.execute({ runId, ...inputs });
            expect([...calls].sort()).toEqual(
              plan.stages
                .filter((s) => s.action !== "skip")
                .map((s) => s.stageName)
                .sort(),
            );
            expect(results.skippedStages).toEqual(
              plan.stages.filter((s) => s.action === "skip").map((s) => s.stageName),
            );
            expect(results.rerunStages).toEqual(
              plan.stages
                .filter((s) => s.action === "rerun")
                .map((s) => ({ stageName: s.stageName, reason: s.reason })),
            );
          } finally {
            await store.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
