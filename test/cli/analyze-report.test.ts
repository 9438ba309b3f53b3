import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { storeArgs } from "../../src/cli/store-args.js";
import { addStoreOptions } from "../../src/cli/store-options.js";
import { CheckpointManager, type CheckpointManagerOptions, DEFAULT_BASE_PATH } from "../../src/index.js";
import { type CliResult, runCairn } from "../support/cli.js";
import { checkpointFile } from "../support/file-store.js";

function cairn(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env });
}

let dir: string;
let basePath: string;
let dbPath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-analyze-cli-"));
  basePath = join(dir, "checkpoints");
  dbPath = join(dir, "cairn.db");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a four-stage run with three checkpoints; returns their ids, oldest first. */
async function makeRun(pipelineId: string, options: CheckpointManagerOptions): Promise<string[]> {
  const manager = new CheckpointManager(options);
  const stages = ["extract", "transform", "load", "report"];
  try {
    const ids: string[] = [];
    for (const [i, stage] of stages.slice(0, 3).entries()) {
      ids.push(
        await manager.createCheckpoint({
          pipelineId,
          pipelineName: "orders",
          stageName: stage,
          stageIndex: i,
          stateData: { source: "orders.csv" },
          completedStages: stages.slice(0, i + 1),
          pendingStages: stages.slice(i + 1),
          agentOutputs: Object.fromEntries(stages.slice(0, i + 1).map((s) => [s, { stage: s }])),
          status: "completed",
        }),
      );
    }
    return ids;
  } finally {
    await manager.close();
  }
}

/** Changes a value inside a checkpoint's `"body"` in the file store. */
async function editFile(pipelineId: string, checkpointId: string): Promise<void> {
  const path = await checkpointFile(basePath, pipelineId, checkpointId);
  const text = await readFile(path, "utf8");
  const body = text.indexOf('"body":');
  await writeFile(path, text.slice(0, body) + text.slice(body).replace("orders.csv", "ORDERS.csv"));
}

/** Changes a value inside a checkpoint's body in the sqlite store. */
function editRow(checkpointId: string): void {
  const db = new Database(dbPath);
  try {
    const changed = db
      .prepare(
        "UPDATE cairn_checkpoints SET body = replace(body, 'orders.csv', 'ORDERS.csv') WHERE checkpoint_id = ?",
      )
      .run(checkpointId).changes;
    expect(changed).toBe(1);
  } finally {
    db.close();
  }
}

const stores = [
  {
    name: "file",
    options: () => ({ strategy: "file", config: { basePath } }),
    args: () => ["--base-path", basePath],
    edit: editFile,
  },
  {
    name: "sqlite",
    options: () => ({ store: `sqlite:${dbPath}` }),
    args: () => ["--store", `sqlite:${dbPath}`],
    edit: async (_run: string, id: string) => editRow(id),
  },
];

describe.each(stores)("analyze and report on the $name store", (s) => {
  it("counts a hand-edited checkpoint as corrupted and recommends the previous one", async () => {
    const [, transform, load] = await makeRun("orders-1", s.options());
    await s.edit("orders-1", load as string);

    const analyzed = await cairn(["analyze", "--pipeline-id", "orders-1", ...s.args()]);
    expect(analyzed.code).toBe(0);
    expect(analyzed.stdout).toContain("Checkpoints:     3 (2 healthy, 1 invalid, 0 orphaned)");
    expect(analyzed.stdout).toContain(`⚠ ${load}`);
    expect(analyzed.stdout).toContain(`Resume point:    ${transform} (stage transform)`);

    const json = await cairn(["analyze", "--pipeline-id", "orders-1", "--json", ...s.args()]);
    expect(json.code).toBe(0);
    const analysis = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(analysis).toMatchObject({
      checkpoints: { total: 3, healthy: 2, corrupted: 1, orphaned: 0 },
      corrupted: [{ checkpointId: load }],
      resumePoint: { checkpointId: transform, isNewest: false },
      resumeSuccessRate: null,
    });

    const report = await cairn(["report", "--pipeline-id", "orders-1", ...s.args()]);
    expect(report.code).toBe(0);
    const recovery = report.stdout.slice(report.stdout.indexOf("Recommended recovery point"));
    expect(recovery).toMatch(
      new RegExp(`Checkpoint:\\s+${transform}\\n\\s+Stage:\\s+transform \\(index 1\\), checkpoint #2`),
    );
    expect(report.stdout).toContain(
      `Resume command\n  cairn run <pipeline-file> --run-id orders-1 ${s.args().join(" ")}\n`,
    );

    const data = await cairn(["report", "--pipeline-id", "orders-1", "--json", ...s.args()]);
    expect(data.code).toBe(0);
    expect(JSON.parse(data.stdout)).toMatchObject({
      run: { pipelineId: "orders-1", pipelineName: "orders", stagesCompleted: 3, stagesTotal: 4 },
      recoveryPoint: { checkpointId: transform, stageName: "transform" },
      statistics: { corrupted: 1 },
    });
  });

  it("writes an HTML report to a file, atomically", async () => {
    await makeRun("orders-2", s.options());
    const result = await cairn([
      "report",
      "--pipeline-id",
      "orders-2",
      "--format",
      "html",
      "--output",
      "r.html",
      ...s.args(),
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`Wrote the recovery report of orders-2 to ${join(dir, "r.html")}\n`);
    const html = await readFile(join(dir, "r.html"), "utf8");
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).toContain("<h1>Recovery report: orders</h1>");
    expect(html).toContain("</html>");
    // No temp file is left beside the report.
    expect((await readdir(dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("takes the format from the --output extension when --format is not given", async () => {
    await makeRun("orders-4", s.options());
    for (const [file, start] of [
      ["r.HTML", "<!DOCTYPE html>"],
      ["r.md", "# Recovery report: orders"],
      ["r.txt", "Recovery report: orders"],
    ] as const) {
      const result = await cairn(["report", "--pipeline-id", "orders-4", "--output", file, ...s.args()]);
      expect(result.code).toBe(0);
      expect((await readFile(join(dir, file), "utf8")).startsWith(start)).toBe(true);
    }
    const forced = ["report", "--pipeline-id", "orders-4", "--output", "f.html", "--format", "md"];
    expect((await cairn([...forced, ...s.args()])).code).toBe(0);
    expect(await readFile(join(dir, "f.html"), "utf8")).toMatch(/^# Recovery report: orders/);
  });

  it("exits 3 for an unknown run", async () => {
    await makeRun("orders-3", s.options());
    for (const command of ["analyze", "report"]) {
      const result = await cairn([command, "--pipeline-id", "no-such-run", ...s.args()]);
      expect(result.code).toBe(3);
      expect(result.stdout).toBe("");
      expect(result.stderr).toMatch(/^cairn: No pipeline run with id "no-such-run".*CAIRN_NOT_FOUND/);
    }
  });
});

describe("analyze and report usage", () => {
  it("documents the exit codes and rejects a bad --format with exit 2", async () => {
    const help = await cairn(["analyze", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout.replace(/\s+/g, " ")).toContain("exits 0 even when it finds problems");
    const bad = await cairn(["report", "--pipeline-id", "x", "--format", "pdf", "--base-path", basePath]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("pdf");
    const conflicting = await cairn(["report", "--pipeline-id", "x", "--format", "md", "--json"]);
    expect(conflicting.code).toBe(2);
  });

  it("names the store in the resume command when it came from CAIRN_STORE", async () => {
    await makeRun("orders-env", { store: `sqlite:${dbPath}` });
    const result = await cairn(["report", "--pipeline-id", "orders-env", "--format", "md"], {
      CAIRN_STORE: `sqlite:${dbPath}`,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `cairn run <pipeline-file> --run-id orders-env --store sqlite:${dbPath}\n`,
    );
    expect(result.stdout).toContain("| Field | Value |");
  });
});

describe("the printed resume command", () => {
  it("resumes a failed `cairn run` verbatim", async () => {
    // No checkpoint settings in the file: only the store flags turn checkpoints on.
    await writeFile(
      join(dir, "p.yaml"),
      `name: demo
steps:
  - { name: a, agent: ./agents.mjs:a }
  - { name: b, agent: ./agents.mjs:b, inputs: { x: "$a.v" } }
  - { name: c, agent: ./agents.mjs:c, inputs: { y: "$b" } }
`,
    );
    await writeFile(
      join(dir, "agents.mjs"),
      `export const a = async () => ({ v: 2 });
export const b = async (i) => i.x * 10;
export const c = async (i) => { if (process.env.FAIL) throw new Error("c <exploded>"); return { done: i.y }; };
`,
    );
    const failed = await cairn(["run", "p.yaml", "--db-path", "cairn.db"], { FAIL: "1" });
    expect(failed.code).toBe(1);
    const runId = /--run-id (\S+)/.exec(failed.stdout)?.[1] as string;
    expect(runId).toBeDefined();

    const report = await cairn([
      "report",
      "--pipeline-id",
      runId,
      "--pipeline-file",
      "p.yaml",
      "--db-path",
      "cairn.db",
      "--json",
    ]);
    expect(report.code).toBe(0);
    const data = JSON.parse(report.stdout) as {
      resumeCommand: string;
      failurePoints: { stageName: string; count: number; lastError: string }[];
    };
    expect(data.failurePoints).toMatchObject([{ stageName: "c", count: 1, lastError: "c <exploded>" }]);
    expect(data.resumeCommand).toBe(`cairn run p.yaml --run-id ${runId} --db-path cairn.db`);

    const [, ...args] = data.resumeCommand.split(" ");
    const resumed = await cairn([...args, "--json"]);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({
      pipelineId: runId,
      status: "completed",
      skippedStages: ["a", "b"],
    });
    const after = await cairn(["analyze", "--pipeline-id", runId, "--db-path", "cairn.db", "--json"]);
    expect(JSON.parse(after.stdout)).toMatchObject({ finished: true, resumeSuccessRate: 1 });
  });
});

describe("storeArgs", () => {
  const parse = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const command = addStoreOptions(new Command("report").option("--pipeline-id <id>").exitOverride());
    let result: string[] = [];
    command.action((_flags, self: Command) => {
      result = storeArgs(self, ["pipelineId"], env);
    });
    await command.parseAsync(["--pipeline-id", "p", ...args], { from: "user" });
    return result;
  };

  it("carries the store flags given, names the store otherwise, and hides passwords", async () => {
    expect(await parse(["--db-path", "./my.db", "--json"])).toEqual(["--db-path", "./my.db"]);
    expect(await parse(["--store", "postgres://me:s3cret@db.local:5432/cairn"])).toEqual([
      "--store",
      "postgres://me:<password>@db.local:5432/cairn",
    ]);
    expect(await parse([], { CAIRN_STORE: "redis://:pw@cache:6379/0" })).toEqual([
      "--store",
      "redis://:<password>@cache:6379/0",
    ]);
    expect(await parse([])).toEqual(["--base-path", DEFAULT_BASE_PATH]);
  });
});
