/** `cairn run` of a DAG pipeline file: concurrent branches, a failure, the dry-run plan, and the resume. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type CliResult, runCairn } from "../support/cli.js";

let dir: string;

function cairn(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env });
}

const PIPELINE = `name: fan
max_concurrency: 2
checkpoint: { enabled: true, strategy: file, config: { base_path: ./store } }
steps:
  - { name: root, agent: ./agents.mjs:root }
  - { name: left, agent: ./agents.mjs:left, depends_on: [root], inputs: { v: "$root.v" } }
  - { name: right, agent: ./agents.mjs:right, depends_on: [root], inputs: { v: "$root.v" } }
  - { name: join, agent: ./agents.mjs:join, depends_on: [left, right], inputs: { l: "$left", r: "$right" } }
`;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-dag-cli-"));
  await writeFile(join(dir, "p.yaml"), PIPELINE);
  await writeFile(
    join(dir, "agents.mjs"),
    `import { appendFileSync } from "node:fs";
const log = (s) => appendFileSync("journal.txt", s + "\\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const root = async () => (log("root"), { v: 2 });
export const left = async (i) => { log("left"); await sleep(60); return i.v + 1; };
export const right = async (i) => { log("right"); if (process.env.FAIL) throw new Error("right exploded"); return i.v * 10; };
export const join = async (i) => (log("join"), { sum: i.l + i.r });
`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const journal = async () => (await readFile(join(dir, "journal.txt"), "utf8")).trim().split("\n");

it("runs the branches, keeps the finished one when the other fails, and resumes only what is left", async () => {
  const failed = await cairn(["run", "p.yaml"], { FAIL: "1" });
  expect(failed.code).toBe(1);
  expect(failed.stderr + failed.stdout).toMatch(/right exploded/);
  const runId = /--run-id (\S+)/.exec(failed.stdout)?.[1] as string;
  expect(runId).toBeDefined();
  // left was running when right failed: it finished and was checkpointed.
  expect((await journal()).sort()).toEqual(["left", "right", "root"]);

  const dry = await cairn(["run", "p.yaml", "--run-id", runId, "--dry-run"]);
  expect(dry.code).toBe(0);
  expect(dry.stdout).toMatch(/ skip {2}root /);
  expect(dry.stdout).toMatch(/ skip {2}left /);
  expect(dry.stdout).toMatch(/ run {3}right /);
  expect(dry.stdout).toMatch(/ run {3}join /);

  const resumed = await cairn(["run", "p.yaml", "--run-id", runId, "--json"]);
  expect(resumed.code, resumed.stderr).toBe(0);
  const result = JSON.parse(resumed.stdout) as {
    skippedStages: string[];
    finalOutputs: Record<string, unknown>;
  };
  expect(result.skippedStages).toEqual(["root", "left"]);
  expect(result.finalOutputs.join).toEqual({ sum: 23 });
  expect((await journal()).slice(3)).toEqual(["right", "join"]);
});
