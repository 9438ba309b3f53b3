/**
 * Property: after any change of output versions (bumped with or without a migration, or rolled
 * back) between a failed run and its resume, `execute()` does what the dry run planned (the
 * agents of `run` and `rerun` stages are called, those of `skip` and `migrate` stages are not),
 * and the resumed run ends with exactly the outputs a fresh run of the new pipeline gives, when
 * each migration converts an output the way the new agent would have produced it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline, type StepDefinition } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

interface StageSpec {
  /** The output version (the agent's version too: a new shape comes with a new agent). */
  version: number;
  /** Whether the step has a migrateOutput. */
  migrates: boolean;
  /** An earlier stage whose whole output this one reads. */
  ref: number | undefined;
}

/** Key-sorted JSON, so a value hashes the same however its keys were ordered. */
function sortedJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${sortedJson(v)}`).join(",")}}`;
}

function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16);
}

/** Version 1 outputs `{ v }`; later versions `{ w, shape }`. */
const shaped = (h: string, version: number) => (version === 1 ? { v: h } : { w: h, shape: version });

function build(specs: readonly StageSpec[], store: CheckpointManager, calls: string[], failAt?: string) {
  const steps = specs.map((s, i): StepDefinition => {
    const migrateOutput = (output: unknown, from: number) => {
      const o = output as { v?: string; w?: string };
      return shaped((from === 1 ? o.v : o.w) as string, s.version);
    };
    return {
      name: `s${i}`,
      outputVersion: s.version,
      agent: {
        name: "Shaper",
        version: String(s.version),
        process: (inputs, ctx) => {
          calls.push(ctx.stageName);
          if (ctx.stageName === failAt) throw new Error(`${ctx.stageName} broke`);
          return shaped(hash(sortedJson(inputs)), s.version);
        },
      },
      ...(s.ref !== undefined ? { inputs: { up: `$s${s.ref}` } } : {}),
      ...(s.migrates && s.version > 1 ? { migrateOutput } : {}),
    };
  });
  return new Pipeline({ name: "shapes", checkpointEnabled: true, checkpointStore: store, steps });
}

const stageArb = fc.record({
  version: fc.integer({ min: 1, max: 3 }),
  change: fc.constantFrom("same", "same", "bump", "bump", "bump", "down"),
  migrates: fc.constantFrom(true, true, false),
  ref: fc.option(fc.nat(), { nil: undefined }),
});

describe("output versions across a resume", () => {
  it("execute() does what the dry run planned and ends as a fresh run of the new pipeline", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(stageArb, { minLength: 2, maxLength: 6 }),
        fc.nat(),
        async (raw, failPick) => {
          const refOf = (r: { ref: number | undefined }, i: number) =>
            r.ref !== undefined && i > 0 ? r.ref % i : undefined;
          const old: StageSpec[] = raw.map((r, i) => ({
            version: r.version,
            migrates: false,
            ref: refOf(r, i),
          }));
          const next: StageSpec[] = raw.map((r, i) => ({
            version:
              r.change === "bump"
                ? r.version + 1
                : r.change === "down" && r.version > 1
                  ? r.version - 1
                  : r.version,
            migrates: r.migrates,
            ref: refOf(r, i),
          }));
          // Late failures mostly: the stages completed before it are what a resume decides about.
          const failAt = `s${Math.max(0, old.length - 1 - (failPick % 3))}`;
          const store = new CheckpointManager({ store: new MemoryStore() });
          const runId = `r${runs++}`;
          await build(old, store, [], failAt)
            .execute({ runId, inputs: { seed: runs } })
            .catch(() => undefined);

          const calls: string[] = [];
          const upgraded = build(next, store, calls);
          const plan = await upgraded.execute({ runId, dryRun: true });
          const results = await upgraded.execute({ runId });
          const planned = (...actions: string[]) =>
            plan.stages.filter((s) => actions.includes(s.action)).map((s) => s.stageName);
          expect(calls).toEqual(planned("run", "rerun"));
          expect(results.migratedStages.map((m) => m.stageName)).toEqual(planned("migrate"));
          expect(results.skippedStages).toEqual(planned("skip"));
          for (const s of plan.stages) {
            const i = s.stageIndex;
            if (s.action === "migrate") {
              // Only a stage whose stored output is older, with a migration, is migrated.
              expect(next[i]?.migrates && (next[i]?.version ?? 0) > (old[i]?.version ?? 0)).toBe(true);
            }
            if (s.action === "skip") expect(next[i]?.version).toBe(old[i]?.version);
          }

          const fresh = await build(next, store, []).execute({
            runId: `${runId}-fresh`,
            inputs: { seed: runs },
          });
          expect(results.finalOutputs).toEqual(fresh.finalOutputs);
          await store.close();
        },
      ),
      { numRuns: 100 },
    );
  });
});
