/**
 * `cairn run --dry-run` prints the estimated time to finish and the time the recovery point saves,
 * learned from the pipeline's runs in the store (`--json`: `estimate`); without history, nothing.
 * The figures are checked against the model the library learns from the same store, never as times.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CheckpointManager, estimateRemaining } from "../../src/index.js";
import { runCairn } from "../support/cli.js";

let dir: string;
const cairn = (args: string[], env: Record<string, string> = {}) => runCairn(args, { cwd: dir, env });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-plan-estimate-"));
  await writeFile(
    join(dir, "p.yaml"),
    `name: est
checkpoint: { enabled: true, strategy: sqlite, config: { db_path: ./c.db } }
steps:
  - { name: a, agent: ./agents.mjs:a }
  - { name: b, agent: ./agents.mjs:b }
  - { name: c, agent: ./agents.mjs:c }
`,
  );
  await writeFile(
    join(dir, "agents.mjs"),
    `const wait = (ms) => new Promise((r) => setTimeout(r, ms));
export const a = async () => { await wait(5); return 1; };
export const b = async () => { await wait(5); return 2; };
export const c = async () => { await wait(5); if (process.env.FAIL) throw new Error("c exploded"); return 3; };
`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("estimates the time to finish a failed run from its history", async () => {
  const first = await cairn(["run", "p.yaml", "--dry-run"]);
  expect(first.code, first.stderr).toBe(0);
  expect(first.stdout).not.toContain("estimated time to finish");

  expect((await cairn(["run", "p.yaml"])).code).toBe(0);
  const failed = await cairn(["run", "p.yaml", "--no-resume"], { FAIL: "1" });
  expect(failed.code).toBe(1);

  const dry = await cairn(["run", "p.yaml", "--dry-run"]);
  expect(dry.code, dry.stderr).toBe(0);
  expect(dry.stdout).toMatch(
    /\n {2}estimated time to finish: .+, the recovery point saves .+ \(learned from 2 runs/,
  );
  const json = await cairn(["run", "p.yaml", "--dry-run", "--json"]);
  expect(json.code, json.stderr).toBe(0);
  const plan = JSON.parse(json.stdout);
  expect(plan.stages.map((s: { action: string }) => s.action)).toEqual(["skip", "skip", "run"]);

  const manager = new CheckpointManager({ store: `sqlite:${join(dir, "c.db")}` });
  try {
    const model = await manager.learnCosts("est", { runs: 20 });
    const expected = estimateRemaining(plan, model);
    expect(plan.estimate).toMatchObject({
      runs: 2,
      remainingMs: expected.remainingMs,
      savedMs: expected.savedMs,
    });
    expect(plan.estimate.unknown).toEqual(expected.unknown);
  } finally {
    await manager.close();
  }
});
