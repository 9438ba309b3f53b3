/** `cairn run` on a pipeline file, as a subprocess: failure, resume, signals, dry run, inputs. */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CLI_PATH, type CliResult, runCairn } from "../support/cli.js";

let dir: string;

function cairn(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-run-"));
  await writeFile(
    join(dir, "p.yaml"),
    `name: demo
checkpoint: { enabled: true, strategy: file, config: { base_path: ./store } }
steps:
  - { name: a, agent: ./agents.mjs:a }
  - { name: b, agent: ./agents.mjs:b, inputs: { x: "$a.v" } }
  - { name: c, agent: ./agents.mjs:c, inputs: { y: "$b" } }
`,
  );
  await writeFile(
    join(dir, "agents.mjs"),
    `import { appendFileSync } from "node:fs";
const slow = () => new Promise((r) => setTimeout(r, Number(process.env.SLOW ?? 0)));
const log = (s) => appendFileSync("journal.txt", s + "\\n");
export const a = async (i) => (log("a"), await slow(), { v: i.start ?? 2 });
export const b = async (i) => (log("b"), await slow(), i.x * 10);
export const c = async (i) => { log("c"); await slow(); if (process.env.FAIL) throw new Error("c exploded"); return { done: i.y }; };
`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const journal = async () => (await readFile(join(dir, "journal.txt"), "utf8")).trim().split("\n");

it("fails with the stage and the resume command, then resumes where it failed", async () => {
  const failed = await cairn(["run", "p.yaml"], { FAIL: "1" });
  expect(failed.code).toBe(1);
  expect(failed.stdout).toContain("Stage c failed: c exploded");
  const resume = /Resume with: (cairn run p\.yaml --run-id (\S+))/.exec(failed.stdout);
  expect(resume).not.toBeNull();
  const again = await cairn(["run", "p.yaml", "--run-id", resume?.[2] as string, "--json"]);
  expect(again.code).toBe(0);
  const results = JSON.parse(again.stdout);
  expect(results).toMatchObject({
    status: "completed",
    skippedStages: ["a", "b"],
    finalOutputs: { c: { done: 20 } },
  });
  expect(again.stderr).toContain("resuming run");
  expect(await journal()).toEqual(["a", "b", "c", "c"]);
});

it("stops after the current stage on SIGINT and resumes later", async () => {
  const child = spawn(process.execPath, [CLI_PATH, "run", "p.yaml"], {
    cwd: dir,
    env: { ...process.env, SLOW: "500" },
  });
  let out = "";
  let sent = false;
  child.stdout.on("data", (d) => {
    out += d;
    if (!sent && out.includes("▶ a started")) {
      sent = true;
      child.kill("SIGINT");
    }
  });
  const code = await new Promise((r) => child.on("close", r));
  expect(code).toBe(130);
  expect(out).toContain("stopping after the current stage");
  expect(out).toMatch(/Resume with: cairn run p\.yaml --run-id \S+/);
  const resumed = await cairn(["run", "p.yaml"]);
  expect(resumed.code).toBe(0);
  expect(resumed.stdout).toContain("↷ a skipped");
  expect(await journal()).toEqual(["a", "b", "c"]);
});

it("shows a plan with --dry-run, reads --inputs, and honours --store and --no-resume", async () => {
  await writeFile(join(dir, "inputs.json"), JSON.stringify({ start: 5 }));
  const plan = await cairn(["run", "p.yaml", "--dry-run", "--store", "sqlite:./c.db"]);
  expect(plan.code).toBe(0);
  expect(plan.stdout).toMatch(/a new run/);
  const run = await cairn(["run", "p.yaml", "--inputs", "inputs.json", "--store", "sqlite:./c.db", "--json"]);
  expect(JSON.parse(run.stdout).finalOutputs.c).toEqual({ done: 50 });
  const fresh = await cairn(["run", "p.yaml", "--no-resume", "--store", "sqlite:./c.db", "--json"]);
  expect(JSON.parse(fresh.stdout).skippedStages).toEqual([]);
  expect((await cairn(["list", "--store", "sqlite:./c.db", "--json"])).stdout).toContain("demo_");
  const bad = await cairn(["run", "p.yaml", "--run-id", "x", "--no-resume"]);
  expect(bad.code).toBe(2);
  const missing = await cairn(["run", "nope.yaml"]);
  expect(missing.code).toBe(3);
});

it("repeats the store flags in the resume command it prints", async () => {
  const failed = await cairn(["run", "p.yaml", "--db-path", "./my store.db"], { FAIL: "1" });
  expect(failed.code).toBe(1);
  const line = /Resume with: (.*)/.exec(failed.stdout)?.[1] ?? "";
  expect(line).toMatch(/^cairn run p\.yaml --run-id \S+ --db-path '\.\/my store\.db'$/);
  const resumed = await cairn([
    "run",
    "p.yaml",
    "--run-id",
    line.split(" ")[4] as string,
    "--db-path",
    "./my store.db",
  ]);
  expect(resumed.code).toBe(0);
  expect(resumed.stdout).toContain("↷ a skipped");
});

it("says a run that already completed is complete, with nothing to do, instead of resuming it", async () => {
  const first = await cairn(["run", "p.yaml"]);
  expect(first.code).toBe(0);
  const runId = /^Run (\S+) completed/m.exec(first.stdout)?.[1] as string;
  expect(runId).toBeDefined();
  const again = await cairn(["run", "p.yaml", "--run-id", runId]);
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(
    new RegExp(`^Run ${runId} was already complete \\(finished .*\\): nothing to do`, "m"),
  );
  expect(again.stdout).not.toContain("Resumed from checkpoint");
  expect(await journal()).toEqual(["a", "b", "c"]);
  const json = JSON.parse((await cairn(["run", "p.yaml", "--run-id", runId, "--json"])).stdout);
  expect(json).toMatchObject({ alreadyComplete: true, checkpointsCreated: 0 });
});
