/** `cairn run --dry-run` and `cairn report --pipeline-file` print the planner's decisions, which the run follows. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type CliResult, runCairn } from "../support/cli.js";

let dir: string;

function cairn(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env });
}

const pipelineFile = (stages: string) => `name: demo
checkpoint: { enabled: true, strategy: file, config: { base_path: ./store } }
steps:
${stages}`;

const ABC = `  - { name: a, agent: ./agents.mjs:a }
  - { name: b, agent: ./agents.mjs:b, inputs: { x: "$a.v" } }
  - { name: c, agent: ./agents.mjs:c, inputs: { y: "$b" } }
`;
const AXBC = `  - { name: a, agent: ./agents.mjs:a }
  - { name: x, agent: ./agents.mjs:x }
  - { name: b, agent: ./agents.mjs:b, inputs: { x: "$a.v" } }
  - { name: c, agent: ./agents.mjs:c, inputs: { y: "$b" } }
`;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-plan-"));
  await writeFile(join(dir, "p.yaml"), pipelineFile(ABC));
  await writeFile(
    join(dir, "agents.mjs"),
    `import { appendFileSync } from "node:fs";
const log = (s) => appendFileSync("journal.txt", s + "\\n");
export const a = async () => (log("a"), { v: 2 });
export const x = async () => (log("x"), 0);
export const b = async (i) => (log("b"), i.x * 10);
export const c = async (i) => { log("c"); if (process.env.FAIL) throw new Error("c exploded"); return { done: i.y }; };
`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const journal = async () => (await readFile(join(dir, "journal.txt"), "utf8")).trim().split("\n");

it("shows the same resume plan in run --dry-run and report, and the run follows it", async () => {
  const failed = await cairn(["run", "p.yaml"], { FAIL: "1" });
  expect(failed.code).toBe(1);
  const runId = /--run-id (\S+)/.exec(failed.stdout)?.[1] as string;
  await writeFile(join(dir, "p.yaml"), pipelineFile(AXBC));

  const dry = await cairn(["run", "p.yaml", "--run-id", runId, "--dry-run"]);
  expect(dry.code).toBe(0);
  expect(dry.stdout).toMatch(/ skip {2}a /);
  expect(dry.stdout).toMatch(/ run {3}x /);
  expect(dry.stdout).toMatch(/ rerun b .*: an earlier stage \(x\) runs\n/);
  expect(dry.stdout).toMatch(/ run {3}c /);

  const store = ["--strategy", "file", "--base-path", "./store"];
  const text = await cairn(["report", "--pipeline-id", runId, "--pipeline-file", "p.yaml", ...store]);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(
    /Resume plan\n {2}a: +skip \(output from demo_\S+\)\n {2}x: +run\n {2}b: +rerun: an earlier stage \(x\) runs\n {2}c: +run\n/,
  );
  const json = await cairn([
    "report",
    "--pipeline-id",
    runId,
    "--pipeline-file",
    "p.yaml",
    ...store,
    "--json",
  ]);
  const plan = (JSON.parse(json.stdout) as { resumePlan: { stageName: string; action: string }[] })
    .resumePlan;
  expect(plan.map((s) => `${s.stageName}:${s.action}`)).toEqual(["a:skip", "x:run", "b:rerun", "c:run"]);

  const resumed = await cairn(["run", "p.yaml", "--run-id", runId, "--json"]);
  expect(resumed.code).toBe(0);
  expect(JSON.parse(resumed.stdout)).toMatchObject({
    skippedStages: ["a"],
    rerunStages: [{ stageName: "b", reason: "an earlier stage (x) runs" }],
  });
  expect(await journal()).toEqual(["a", "b", "c", "x", "b", "c"]);
});
