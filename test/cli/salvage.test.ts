/** `cairn run --dry-run` and `cairn report` after a stage's stored output was damaged: salvage at stage granularity. */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type CliResult, runCairn } from "../support/cli.js";

let dir: string;

function cairn(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env });
}

const PIPELINE = `name: fan
checkpoint: { enabled: true, strategy: file, config: { base_path: ./store } }
steps:
  - { name: root, agent: ./agents.mjs:root }
  - { name: left, agent: ./agents.mjs:left, depends_on: [root], inputs: { v: "$root.v" } }
  - { name: right, agent: ./agents.mjs:right, depends_on: [root], inputs: { v: "$root.v" } }
  - { name: join, agent: ./agents.mjs:join, depends_on: [left, right], inputs: { l: "$left", r: "$right" } }
`;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-salvage-cli-"));
  await writeFile(join(dir, "p.yaml"), PIPELINE);
  await writeFile(
    join(dir, "agents.mjs"),
    `import { appendFileSync } from "node:fs";
const log = (s) => appendFileSync("journal.txt", s + "\\n");
export const root = async () => { log("root"); return { v: 2 }; };
export const left = async (i) => { log("left"); return { left: i.v + 1 }; };
export const right = async (i) => { log("right"); return { right: i.v * 10 }; };
export const join = async (i) => { log("join"); if (process.env.FAIL) throw new Error("join exploded"); return { sum: i.l.left + i.r.right }; };
`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const journal = async () => (await readFile(join(dir, "journal.txt"), "utf8")).trim().split("\n");

it("a damaged output of one branch: the plan re-runs it and the join only, and the run does exactly that", async () => {
  const failed = await cairn(["run", "p.yaml"], { FAIL: "1" });
  expect(failed.code).toBe(1);
  const runId = /--run-id (\S+)/.exec(failed.stdout)?.[1] as string;
  // left's output, overwritten in the store folder.
  const outputs = join(dir, "store", runId, "outputs");
  let damaged = 0;
  for (const name of (await readdir(outputs)).filter((n) => n.endsWith(".json"))) {
    const text = await readFile(join(outputs, name), "utf8");
    if (!text.includes('"left"')) continue;
    await writeFile(join(outputs, name), text.replace("3", "4"));
    damaged++;
  }
  expect(damaged).toBe(1);

  const dry = await cairn(["run", "p.yaml", "--run-id", runId, "--dry-run", "--json"]);
  expect(dry.code, dry.stderr).toBe(0);
  const plan = JSON.parse(dry.stdout) as {
    resumeFrom: string;
    stages: { stageName: string; action: string; reason?: string; source?: string }[];
  };
  expect(plan.stages.map((s) => [s.stageName, s.action, s.source])).toEqual([
    ["root", "skip", plan.resumeFrom],
    ["left", "rerun", undefined],
    ["right", "skip", plan.resumeFrom],
    ["join", "run", undefined],
  ]);
  expect(plan.stages[1]?.reason).toMatch(/^its stored output failed verification: /);

  const report = await cairn([
    "report",
    "--pipeline-id",
    runId,
    "--pipeline-file",
    "p.yaml",
    "--strategy",
    "file",
    "--base-path",
    "./store",
  ]);
  expect(report.code, report.stderr).toBe(0);
  expect(report.stdout).toMatch(new RegExp(`right: +skip \\(output from ${plan.resumeFrom}\\)\n`));
  expect(report.stdout).toMatch(/left: +rerun: its stored output failed verification: /);

  const resumed = await cairn(["run", "p.yaml", "--run-id", runId, "--json"]);
  expect(resumed.code, resumed.stderr).toBe(0);
  expect((await journal()).slice(4)).toEqual(["left", "join"]);
  expect((JSON.parse(resumed.stdout) as { finalOutputs: Record<string, unknown> }).finalOutputs.join).toEqual(
    {
      sum: 23,
    },
  );
});
