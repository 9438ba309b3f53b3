/**
 * The LangGraph example (examples/langgraph/approval.ts) runs as a user runs it (tsx, its own
 * folder): it stops at the interrupt, resumes with the answer, and the `cairn` lines it prints
 * work against the thread it left in the SQLite store.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { threadPipelineName, threadRunId } from "../../src/langgraph/index.js";
import { runCairn } from "../support/cli.js";

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const EXAMPLE = fileURLToPath(new URL("../../examples/langgraph/approval.ts", import.meta.url));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-lg-example-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function runExample(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, CAIRN_STORE: undefined };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", TSX, EXAMPLE, ...args],
      { cwd: dir, env },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe("examples/langgraph", () => {
  it("stops at the interrupt, resumes with the answer, and the printed cairn lines work", async () => {
    const run = await runExample([]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('waits for: [{"question":"Pay 1250 EUR to Acme GmbH?"}]');
    expect(run.stdout).toContain('"decision":"yes"');
    expect(run.stdout).toContain('"booked for payment"');
    expect(run.stdout).toMatch(/step 3 \(loop\) next \[\]\n/);
    const threadId = /thread (\S+) in sqlite:\.cairn\/langgraph\.db/.exec(run.stdout)?.[1] as string;
    expect(threadId).toBeDefined();

    // The thread is one valid run under its own pipeline name in the default store.
    const manager = new CheckpointManager({ store: `sqlite:${join(dir, ".cairn/langgraph.db")}` });
    try {
      const runs = (await manager.listRuns(threadPipelineName(threadId))).runs.map((r) => r.pipelineId);
      expect(runs).toEqual([threadRunId(threadId)]);
      expect((await manager.validateRun(threadRunId(threadId))).valid).toBe(true);
    } finally {
      await manager.close();
    }

    // Each `npx cairn ...` line it printed, run with the built CLI.
    const lines = run.stdout.split("\n").filter((l) => l.trim().startsWith("npx cairn "));
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      // The lines are shell commands: `""` is an empty argument.
      const args = line
        .trim()
        .split(/\s+/)
        .slice(2)
        .map((a) => (a === '""' ? "" : a));
      const result = await runCairn(args, { cwd: dir });
      expect(result.code, `${line}\n${result.stderr}`).toBe(0);
    }
    const validate = await runCairn(
      ["validate", "--pipeline-id", threadRunId(threadId), "--store", "sqlite:.cairn/langgraph.db"],
      { cwd: dir },
    );
    expect(validate.stdout).toContain("all valid");
  });
});
