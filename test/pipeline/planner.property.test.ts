/**
 * Property: after any edit of a pipeline whose run failed part-way, the plan a dry run prints
 * is exactly what `execute()` then does (which agents run, what is skipped, what re-runs and
 * why), and it matches a small model of the linear resume rules.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline, type StepDefinition } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

interface StageSpec {
  name: string;
  kind: "Hasher" | "Mixer";
  version: string;
  /** A constant input. */
  n?: number;
  /** An earlier stage whose output `v` this one reads. */
  ref?: string;
  config?: { level: number };
}

/** A small stable string hash, so outputs depend deterministically on inputs. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16);
}

function build(specs: readonly StageSpec[], store: CheckpointManager, calls: string[], failAt?: string) {
  const steps = specs.map((s): StepDefinition => {
    const inputs = {
      ...(s.n !== undefined ? { n: s.n } : {}),
      ...(s.ref !== undefined ? { up: `$${s.ref}.v` } : {}),
    };
    return {
      name: s.name,
      agent: {
        name: s.kind,
        version: s.version,
        process: (received, ctx) => {
          calls.push(ctx.stageName);
          if (ctx.stageName === failAt) throw new Error(`${ctx.stageName} broke`);
          const sorted = Object.entries(received).sort(([a], [b]) => (a < b ? -1 : 1));
          return {
            v: hash(`${s.kind}@${s.version}:${JSON.stringify(sorted)}:${JSON.stringify(ctx.config)}`),
          };
        },
      },
      ...(Object.keys(inputs).length > 0 ? { inputs } : {}),
      ...(s.config ? { config: s.config } : {}),
    };
  });
  return new Pipeline({ name: "prop", checkpointEnabled: true, checkpointStore: store, steps });
}

/** Drops references to stages that no longer run earlier, as a user fixing the file would. */
function fixRefs(specs: StageSpec[]): StageSpec[] {
  return specs.map((s, i) => {
    if (s.ref === undefined || specs.slice(0, i).some((e) => e.name === s.ref)) return s;
    const { ref: _dropped, ...rest } = s;
    return rest;
  });
}

interface RawStage {
  kind: StageSpec["kind"];
  version: string;
  n: number | undefined;
  ref: number | undefined;
  config: number | undefined;
}

const stageArb: fc.Arbitrary<RawStage> = fc.record({
  kind: fc.constantFrom("Hasher" as const, "Mixer" as const),
  version: fc.constantFrom("1", "2"),
  n: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  ref: fc.option(fc.nat(), { nil: undefined }),
  config: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
});

function pipelineOf(raw: readonly RawStage[]): StageSpec[] {
  return raw.map((r, i) => ({
    name: `s${i}`,
    kind: r.kind,
    version: r.version,
    ...(r.n !== undefined ? { n: r.n } : {}),
    ...(r.ref !== undefined && i > 0 ? { ref: `s${r.ref % i}` } : {}),
    ...(r.config !== undefined ? { config: { level: r.config } } : {}),
  }));
}

interface Edit {
  kind: "insert" | "remove" | "reorder" | "rename" | "version" | "inputs" | "config";
  at: number;
  value: number;
}

const editArb: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom("insert", "remove", "reorder", "rename", "version", "inputs", "config"),
  at: fc.nat(),
  value: fc.nat(),
});

function applyEdit(specs: StageSpec[], edit: Edit, fresh: () => string): StageSpec[] {
  const out = specs.map((s) => ({ ...s }));
  const i = edit.at % out.length;
  const target = out[i] as StageSpec;
  switch (edit.kind) {
    case "insert": {
      const earlier = out.slice(0, i);
      const ref =
        earlier.length > 0 && edit.value % 2 === 0 ? earlier[edit.value % earlier.length] : undefined;
      out.splice(i, 0, {
        name: fresh(),
        kind: "Mixer",
        version: "1",
        n: edit.value % 4,
        ...(ref ? { ref: ref.name } : {}),
      });
      break;
    }
    case "remove":
      if (out.length > 1) out.splice(i, 1);
      break;
    case "reorder": {
      const j = edit.value % out.length;
      [out[i], out[j]] = [out[j] as StageSpec, target];
      break;
    }
    case "rename": {
      const name = fresh();
      for (const s of out) if (s.ref === target.name) s.ref = name;
      target.name = name;
      break;
    }
    case "version":
      target.version = target.version === "1" ? "2" : "1";
      break;
    case "inputs":
      if (edit.value % 2 === 0) target.n = ((target.n ?? 0) + 1) % 4;
      else if (target.ref !== undefined) delete target.ref;
      else if (i > 0) target.ref = (out[edit.value % i] as StageSpec).name;
      else target.n = ((target.n ?? 0) + 1) % 4;
      break;
    case "config":
      target.config = { level: ((target.config?.level ?? -1) + 1) % 3 };
      break;
  }
  return fixRefs(out);
}

const same = (a: StageSpec, b: StageSpec) =>
  a.n === b.n && a.ref === b.ref && a.config?.level === b.config?.level;

/** The linear resume rules, written independently of the planner: action and reason shape. */
function model(
  old: readonly StageSpec[],
  completed: ReadonlySet<string>,
  next: readonly StageSpec[],
  inputsChanged: boolean,
): { stageName: string; action: string; reason: RegExp | undefined }[] {
  let cause: { name: string; action: string } | undefined;
  return next.map((s) => {
    const before = old.find((o) => o.name === s.name);
    const done = before !== undefined && completed.has(s.name);
    if (cause) {
      const verb = cause.action === "run" ? "runs" : "runs again";
      return done
        ? {
            stageName: s.name,
            action: "rerun",
            reason: new RegExp(`^an earlier stage \\(${cause.name}\\) ${verb}$`),
          }
        : { stageName: s.name, action: "run", reason: undefined };
    }
    let reason: RegExp | undefined;
    if (!done) cause = { name: s.name, action: "run" };
    else if (before.kind !== s.kind || before.version !== s.version) reason = /agent changed/;
    else if (!same(before, s)) reason = /step definition/;
    // The run's inputs reach every stage: changed, they change the first completed one.
    else if (inputsChanged) reason = /resolved inputs changed/;
    if (reason) cause = { name: s.name, action: "rerun" };
    return { stageName: s.name, action: done ? (reason ? "rerun" : "skip") : "run", reason };
  });
}

describe("resume planner", () => {
  it("execute() does exactly what the dry run planned, after any edit", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(stageArb, { minLength: 3, maxLength: 7 }),
        fc.nat(),
        fc.array(editArb, { minLength: 1, maxLength: 3 }),
        // The run's inputs change in one case of five: changed, they hide every other edit.
        fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
        async (raw, failPick, edits, changeInputs) => {
          const old = pipelineOf(raw);
          const failIndex = failPick % old.length;
          const failAt = (old[failIndex] as StageSpec).name;
          let names = 0;
          const next = edits.reduce((specs, e) => applyEdit(specs, e, () => `n${names++}`), old);
          const store = new CheckpointManager({ store: new MemoryStore() });
          const runId = `case-${++runs}`;
          try {
            const oldCalls: string[] = [];
            await expect(
              build(old, store, oldCalls, failAt).execute({ runId, inputs: { seed: 1 } }),
            ).rejects.toMatchObject({ stageName: failAt });
            const completed = new Set(old.slice(0, failIndex).map((s) => s.name));

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
            expect(calls).toEqual(plan.stages.filter((s) => s.action !== "skip").map((s) => s.stageName));
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
