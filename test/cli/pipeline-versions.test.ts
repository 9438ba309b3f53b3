/**
 * Schema evolution end to end, each step in its own `cairn` process: Friday's pipeline (version
 * 1.0.0) fails at its fourth stage; Monday's (2.0.0) changes the output shape of stage 1 with a
 * migration and of stage 2 without one. The resume migrates stage 1 without calling its agent,
 * re-runs stage 2 and everything after, and ends with the outputs a fresh 2.0.0 run gives. A
 * migration that throws first changes nothing stored.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type CliResult, runCairn } from "../support/cli.js";

let dir: string;

const STORE = ["--strategy", "file", "--base-path", "./store"];

function cairn(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env });
}

// Every agent appends its name to calls.log: which agents ran, in which process, in order.
const AGENTS = `import { appendFileSync } from "node:fs";
const called = (name) => appendFileSync("calls.log", name + "\\n");
export const pricesV1 = (i) => (called("prices@1"), { sum: i.items.reduce((a, b) => a + b, 0), n: i.items.length });
export const pricesV2 = (i) => (called("prices@2"), { total: { amount: i.items.reduce((a, b) => a + b, 0), currency: "EUR" }, n: i.items.length });
export const migratePrices = (output, from) => {
  if (process.env.BREAK_MIGRATION) throw new Error("cannot read a v" + from + " prices record");
  return { total: { amount: output.sum, currency: "EUR" }, n: output.n };
};
export const taxV1 = (i) => (called("tax@1"), { tax: i.amount * 0.2 });
export const taxV2 = (i) => (called("tax@2"), { tax: { rate: 0.2, amount: i.amount * 0.2 } });
export const summary = (i) => (called("summary"), { due: i.amount + (typeof i.tax === "number" ? i.tax : i.tax.amount) });
export const invoice = (i) => {
  called("invoice");
  if (process.env.FAIL_INVOICE) throw new Error("the invoice service is down");
  return { invoice: "INV-" + i.due };
};
export const notify = (i) => (called("notify"), { sent: i.invoice });
`;

const V1 = `name: billing
version: "1.0.0"
checkpoint: { enabled: true, strategy: file, config: { base_path: ./store } }
steps:
  - { name: prices, agent: ./agents.mjs:pricesV1 }
  - { name: tax, agent: ./agents.mjs:taxV1, inputs: { amount: "$prices.sum" } }
  - { name: summary, agent: ./agents.mjs:summary, inputs: { amount: "$prices.sum", tax: "$tax.tax" } }
  - { name: invoice, agent: ./agents.mjs:invoice, inputs: { due: "$summary.due" } }
  - { name: notify, agent: ./agents.mjs:notify, inputs: { invoice: "$invoice.invoice" } }
`;

const V2 = `name: billing
version: "2.0.0"
checkpoint: { enabled: true, strategy: file, config: { base_path: ./store } }
steps:
  - name: prices
    agent: ./agents.mjs:pricesV2
    output_version: 2
    migrate: ./agents.mjs:migratePrices
  - name: tax
    agent: ./agents.mjs:taxV2
    output_version: 2
    inputs: { amount: "$prices.total.amount" }
  - { name: summary, agent: ./agents.mjs:summary, inputs: { amount: "$prices.total.amount", tax: "$tax.tax" } }
  - { name: invoice, agent: ./agents.mjs:invoice, inputs: { due: "$summary.due" } }
  - { name: notify, agent: ./agents.mjs:notify, inputs: { invoice: "$invoice.invoice" } }
`;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-pv-"));
  await writeFile(join(dir, "agents.mjs"), AGENTS);
  await writeFile(join(dir, "inputs.json"), JSON.stringify({ items: [40, 60] }));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const calls = async () => (await readFile(join(dir, "calls.log"), "utf8")).trim().split("\n");

/**
 * Every file of the store with the hash of its bytes: any write, rename or delete shows. The
 * lease files are left out: taking and releasing the run's lease is how any attempt starts and
 * ends, and is not stored run data.
 */
async function storeSnapshot(): Promise<Record<string, string>> {
  const root = join(dir, "store");
  const files: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (!entry.isFile() || relative(root, path).startsWith(".leases")) continue;
    files[relative(root, path)] = createHash("sha256")
      .update(await readFile(path))
      .digest("hex");
  }
  return files;
}

interface ListedRow {
  checkpointId: string;
  sequence: number;
  stageName: string;
  status: string;
  resumeCount: number;
}

it("upgrades a failed run: migrates stage 1, re-runs stage 2 and after, as a fresh v2 run would", async () => {
  // Friday: version 1.0.0 runs prices, tax and summary, and fails at invoice.
  await writeFile(join(dir, "p.yaml"), V1);
  const friday = await cairn(["run", "p.yaml", "--inputs", "inputs.json"], { FAIL_INVOICE: "1" });
  expect(friday.code).toBe(1);
  const runId = /--run-id (\S+)/.exec(friday.stdout)?.[1] as string;
  expect(runId).toMatch(/^billing_/);
  expect(await calls()).toEqual(["prices@1", "tax@1", "summary", "invoice"]);

  // Monday: version 2.0.0 is deployed.
  await writeFile(join(dir, "p.yaml"), V2);
  const dry = await cairn(["run", "p.yaml", "--run-id", runId, "--dry-run"]);
  expect(dry.code).toBe(0);
  expect(dry.stdout).toMatch(/pipeline version 2\.0\.0\n/);
  expect(dry.stdout).toMatch(
    / migrate prices {2}\(pricesV2#\w+\): its output version changed \(1 → 2\); migrateOutput converts it\n/,
  );
  expect(dry.stdout).toMatch(
    / rerun {3}tax .*: its output version changed \(1 → 2\) and the step has no migrateOutput\n/,
  );
  expect(dry.stdout).toMatch(/ rerun {3}summary .*: an earlier stage \(tax\) runs again\n/);
  expect(dry.stdout).toMatch(/ run {5}invoice /);
  expect(dry.stdout).toMatch(/ run {5}notify /);
  const report = await cairn(["report", "--pipeline-id", runId, "--pipeline-file", "p.yaml", ...STORE]);
  expect(report.code).toBe(0);
  expect(report.stdout).toMatch(
    /Resume plan\n {2}prices: +migrate: its output version changed \(1 → 2\); migrateOutput converts it \(output from \S+\)\n {2}tax: +rerun: its output version changed \(1 → 2\) and the step has no migrateOutput\n {2}summary: +rerun: an earlier stage \(tax\) runs again\n {2}invoice: +run\n {2}notify: +run\n/,
  );

  // A migration that throws fails the resume and changes nothing stored.
  const before = await storeSnapshot();
  const listBefore = await cairn(["list", "--pipeline-id", runId, ...STORE, "--json"]);
  const broken = await cairn(["run", "p.yaml", "--run-id", runId], { BREAK_MIGRATION: "1" });
  expect(broken.code).toBe(1);
  expect(broken.stderr).toMatch(
    /migration of stage prices's output from version 1 to 2 threw: cannot read a v1 prices record; nothing was written \(CAIRN_MIGRATION_FAILED\)/,
  );
  expect(broken.stdout).toMatch(
    new RegExp(`Fix the migration, then resume with: cairn run p\\.yaml --run-id ${runId}`),
  );
  expect(await storeSnapshot()).toEqual(before);
  const listAfter = await cairn(["list", "--pipeline-id", runId, ...STORE, "--json"]);
  expect(listAfter.stdout).toBe(listBefore.stdout);
  expect(await calls()).toEqual(["prices@1", "tax@1", "summary", "invoice"]);

  // The fixed migration resumes the run: prices is migrated, its agent is not called.
  const monday = await cairn(["run", "p.yaml", "--run-id", runId, "--json"]);
  expect(monday.code).toBe(0);
  const resumed = JSON.parse(monday.stdout) as {
    migratedStages: unknown[];
    skippedStages: string[];
    rerunStages: { stageName: string; reason: string }[];
    finalOutputs: Record<string, unknown>;
    stepsResults: Record<string, { status: string }>;
  };
  expect(await calls()).toEqual([
    ...["prices@1", "tax@1", "summary", "invoice"],
    ...["tax@2", "summary", "invoice", "notify"],
  ]);
  expect(resumed.migratedStages).toEqual([{ stageName: "prices", fromVersion: 1, toVersion: 2 }]);
  expect(resumed.skippedStages).toEqual([]);
  expect(resumed.rerunStages.map((r) => r.stageName)).toEqual(["tax", "summary"]);
  expect(resumed.stepsResults.prices?.status).toBe("migrated");

  // What a fresh 2.0.0 run gives, in its own process.
  const fresh = await cairn(["run", "p.yaml", "--no-resume", "--inputs", "inputs.json", "--json"]);
  expect(fresh.code).toBe(0);
  const freshOutputs = (JSON.parse(fresh.stdout) as { finalOutputs: Record<string, unknown> }).finalOutputs;
  expect(resumed.finalOutputs).toEqual(freshOutputs);
  expect(freshOutputs.notify).toEqual({ sent: "INV-120" });

  // The checkpoints say which pipeline version wrote them, the output versions and the migration.
  const list = await cairn(["list", "--pipeline-id", runId, ...STORE]);
  expect(list.code).toBe(0);
  const versionsBySeq = new Map(
    [...list.stdout.matchAll(/^\s*(\d+)\s.*\s(1\.0\.0|2\.0\.0)$/gm)].map((m) => [Number(m[1]), m[2]]),
  );
  const rows = JSON.parse(
    (await cairn(["list", "--pipeline-id", runId, ...STORE, "--json"])).stdout,
  ) as ListedRow[];
  expect(versionsBySeq.size).toBe(rows.length);
  for (const row of rows) expect(versionsBySeq.get(row.sequence)).toBe(row.sequence <= 4 ? "1.0.0" : "2.0.0");
  const newest = rows[0] as ListedRow;
  const inspect = await cairn(["inspect", "--checkpoint-id", newest.checkpointId, ...STORE]);
  expect(inspect.code).toBe(0);
  expect(inspect.stdout).toMatch(/Pipeline version: *2\.0\.0/);
  expect(inspect.stdout).toMatch(/prices .*v2 .*migrated from v1 by pipeline 2\.0\.0/);
  expect(inspect.stdout).toMatch(/tax .*v2(?!.*migrated)/);
  const inspectJson = JSON.parse(
    (await cairn(["inspect", "--checkpoint-id", newest.checkpointId, ...STORE, "--json"])).stdout,
  ) as { pipelineVersion: string; outputVersions: Record<string, number>; outputMigrations: unknown };
  expect(inspectJson.pipelineVersion).toBe("2.0.0");
  expect(inspectJson.outputVersions).toEqual({ prices: 2, tax: 2, summary: 1, invoice: 1, notify: 1 });
  expect(inspectJson.outputMigrations).toEqual({ prices: { from: 1, to: 2, by: "2.0.0" } });
});

it("shows the pipeline version of encrypted checkpoints without their key (from the clear outline)", async () => {
  expect((await cairn(["keys", "generate", "--key-file", "k.keys"])).code).toBe(0);
  await writeFile(
    join(dir, "p.yaml"),
    V1.replace(
      "config: { base_path: ./store } }",
      "config: { base_path: ./store }, encryption: { key_file: ./k.keys } }",
    ),
  );
  const run = await cairn(["run", "p.yaml", "--inputs", "inputs.json", "--json"]);
  expect(run.code).toBe(0);
  const { pipelineId } = JSON.parse(run.stdout) as { pipelineId: string };
  const list = await cairn(["list", "--pipeline-id", pipelineId, ...STORE]);
  expect(list.code).toBe(0);
  const rows = list.stdout.split("\n").filter((line) => /^\s*\d+\s/.test(line));
  expect(rows).toHaveLength(6);
  for (const row of rows) expect(row).toMatch(/not verified.*\s1\.0\.0$/);
  const newest = /^\s*6\s.*\s(billing_\S+)\s+1\.0\.0$/m.exec(list.stdout)?.[1] as string;
  const inspect = await cairn(["inspect", "--checkpoint-id", newest, ...STORE]);
  expect(inspect.code).toBe(7);
  expect(inspect.stdout).toMatch(/Pipeline version: 1\.0\.0\n/);
  const json = JSON.parse(
    (await cairn(["inspect", "--checkpoint-id", newest, ...STORE, "--json"])).stdout,
  ) as {
    pipelineVersion: string;
    outputVersions: Record<string, number>;
    stateKeys: null;
  };
  expect(json).toMatchObject({ pipelineVersion: "1.0.0", stateKeys: null });
  expect(json.outputVersions).toEqual({ prices: 1, tax: 1, summary: 1, invoice: 1, notify: 1 });
});
