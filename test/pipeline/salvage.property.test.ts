/**
 * Property, salvage over random DAGs (sqlite store, damage written into the database): a run
 * fails part-way; then random stored outputs are overwritten and, sometimes, the newest record's
 * checksum too. The plan a dry run prints matches a small model (base = the newest record that
 * verifies; a completed stage whose output is damaged re-runs, with its descendants; everything
 * else it proves is reused, from the base), and `execute()` does exactly that plan.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CheckpointManager,
  PIPELINE_COMPLETE_STAGE,
  Pipeline,
  type StepDefinition,
} from "../../src/index.js";

interface NodeSpec {
  name: string;
  deps: string[];
  /** A dependency whose output `v` this one reads. */
  ref?: string;
  n: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function build(specs: readonly NodeSpec[], manager: CheckpointManager, calls: string[], failAt?: string) {
  const steps = specs.map(
    (s, i): StepDefinition => ({
      name: s.name,
      dependsOn: s.deps,
      inputs: { n: s.n, ...(s.ref !== undefined ? { up: `$${s.ref}.v` } : {}) },
      agent: {
        name: "Node",
        version: "1",
        process: async (received, ctx) => {
          calls.push(ctx.stageName);
          await sleep((i * 7) % 4);
          if (ctx.stageName === failAt) throw new Error(`${ctx.stageName} broke`);
          // Deterministic: a stage that runs again produces the same bytes (the same address).
          return { v: `${ctx.stageName}:${JSON.stringify(received)}` };
        },
      },
    }),
  );
  return new Pipeline({
    name: "salvageprop",
    checkpointEnabled: true,
    checkpointStore: manager,
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

const nodeArb = fc.record({ deps: fc.nat(), ref: fc.option(fc.nat(), { nil: undefined }), n: fc.nat(3) });

function graphOf(raw: readonly { deps: number; ref: number | undefined; n: number }[]): NodeSpec[] {
  const specs: NodeSpec[] = [];
  raw.forEach((r, i) => {
    const deps = specs.filter((_, j) => (r.deps >> j) & 1).map((s) => s.name);
    const node: NodeSpec = { name: `s${i}`, deps, n: r.n };
    const reachable = [...ancestors([...specs, node], node.name)].sort();
    if (r.ref !== undefined && reachable.length > 0) node.ref = reachable[r.ref % reachable.length];
    specs.push(node);
  });
  return specs;
}

/** The salvage rules, written independently of the planner. */
function model(specs: readonly NodeSpec[], completed: ReadonlySet<string>, damaged: ReadonlySet<string>) {
  const actions = new Map<string, string>();
  const causes: string[] = [];
  return specs.map((s) => {
    const blocked = s.deps.some((d) => actions.get(d) !== "skip");
    let action: string;
    let reason: RegExp | undefined;
    if (!completed.has(s.name)) {
      action = "run";
      if (!blocked) causes.push(s.name);
    } else if (blocked) {
      const up = ancestors(specs, s.name);
      const cause = causes.find((c) => up.has(c)) as string;
      action = "rerun";
      reason = new RegExp(
        `^an earlier stage \\(${cause}\\) ${actions.get(cause) === "run" ? "runs" : "runs again"}$`,
      );
    } else if (damaged.has(s.name)) {
      action = "rerun";
      reason = /^its stored output failed verification: /;
      causes.push(s.name);
    } else action = "skip";
    actions.set(s.name, action);
    return { stageName: s.name, action, reason };
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-salvage-prop-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("salvage over random DAGs", () => {
  it("the plan reuses every verified output the newest valid record proves, and execute() does it", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(nodeArb, { minLength: 3, maxLength: 7 }),
        fc.nat(),
        fc.nat(),
        fc.boolean(),
        async (raw, failPick, damagePick, damageNewestRecord) => {
          const specs = graphOf(raw);
          const failAt = (specs[failPick % specs.length] as NodeSpec).name;
          const dbPath = join(dir, `c${++runs}.db`);
          const manager = new CheckpointManager({ store: `sqlite:${dbPath}` });
          const runId = `case-${runs}`;
          const sql = (text: string, ...params: unknown[]) => {
            const db = new Database(dbPath);
            try {
              db.prepare(text).run(...params);
            } finally {
              db.close();
            }
          };
          try {
            await expect(build(specs, manager, [], failAt).execute({ runId })).rejects.toMatchObject({
              stageName: failAt,
            });
            const store = await manager.getStore();
            const history = [...(await manager.getCheckpointHistory(runId))].sort(
              (a, b) => a.sequence - b.sequence,
            );
            // Damage the newest record (never the only one): the one before it is the base.
            const damageRecord = damageNewestRecord && history.length > 1;
            if (damageRecord)
              sql(
                "UPDATE cairn_checkpoints SET checksum = ? WHERE checkpoint_id = ?",
                "0".repeat(64),
                history.at(-1)?.checkpointId,
              );
            const base = history.at(damageRecord ? -2 : -1)?.checkpointId as string;
            const record = await store.getCheckpoint(base);
            const body = JSON.parse(record?.body ?? "{}") as {
              completed_stages: string[];
              output_refs: Record<string, string>;
            };
            // Each output of the run is damaged when its bit is set; stages sharing an address share the damage.
            const hashes = [...new Set(Object.values(body.output_refs))].sort();
            const bad = new Set(hashes.filter((_, i) => (damagePick >> i) & 1));
            for (const hash of bad)
              sql(
                "UPDATE cairn_outputs SET body = ? WHERE pipeline_id = ? AND hash = ?",
                '{"v":"damaged"}',
                runId,
                hash,
              );
            const damaged = new Set(
              Object.keys(body.output_refs).filter((s) => bad.has(body.output_refs[s] as string)),
            );

            const calls: string[] = [];
            const pipeline = build(specs, manager, calls);
            const plan = await pipeline.execute({ runId, dryRun: true });
            const expected = model(specs, new Set(body.completed_stages), damaged);
            expect(plan.resumeFrom).toBe(base);
            expect(plan.stages.map((s) => [s.stageName, s.action])).toEqual(
              expected.map((e) => [e.stageName, e.action]),
            );
            plan.stages.forEach((s, i) => {
              const reason = expected[i]?.reason;
              if (reason) expect(s.reason).toMatch(reason);
              else expect(s.reason).toBeUndefined();
              expect(s.source).toBe(s.action === "skip" ? base : undefined);
            });

            const results = await pipeline.execute({ runId });
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
            // The run finished whole: its last checkpoint verifies, every output stored afresh.
            const last = await manager.loadLatestCheckpoint(runId);
            expect(last?.metadata.stageName).toBe(PIPELINE_COMPLETE_STAGE);
            for (const s of specs) expect(last?.agentOutputs[s.name]).toEqual(results.finalOutputs[s.name]);
          } finally {
            await manager.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
