/**
 * Cleanup by age follows the rules of cleanup by run: unfinished runs are left alone unless
 * `--force`, both have `--dry-run`, and on a terminal `--force` asks before deleting from an
 * unfinished run (`--yes` answers for scripts).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { CLI_PATH, runCairn } from "../support/cli.js";

let dir: string;
let basePath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-cleanup-rules-"));
  basePath = join(dir, "checkpoints");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cairn = (...args: string[]) => runCairn([...args, "--base-path", basePath], { cwd: dir });

/** A run written in 2020: `finished` adds its `pipeline_complete` checkpoint. */
async function oldRun(pipelineId: string, finished: boolean): Promise<void> {
  const manager = new CheckpointManager({
    strategy: "file",
    config: { basePath },
    clock: () => new Date("2020-01-01T00:00:00Z"),
  });
  try {
    await manager.createCheckpoint({
      pipelineId,
      stageName: "extract",
      stageIndex: 0,
      completedStages: ["extract"],
      pendingStages: finished ? [] : ["load"],
      agentOutputs: { extract: { rows: [1] } },
      status: "completed",
    });
    if (finished) {
      await manager.createCheckpoint({
        pipelineId,
        stageName: "pipeline_complete",
        stageIndex: 1,
        completedStages: ["extract"],
        pendingStages: [],
        agentOutputs: { extract: { rows: [1] } },
        status: "completed",
      });
    }
  } finally {
    await manager.close();
  }
}

async function runIds(): Promise<string[]> {
  const list = await cairn("list", "--json");
  const parsed = list.code === 0 ? (JSON.parse(list.stdout) as { pipelineId: string }[]) : [];
  return parsed.map((r) => r.pipelineId).sort();
}

/**
 * Runs `cairn ...args` on a pseudo-terminal (util-linux `script`), typing `input`; resolves with
 * the exit code and everything the terminal showed.
 */
function cairnOnTerminal(args: readonly string[], input: string): Promise<{ code: number; output: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const command = [process.execPath, CLI_PATH, ...args, "--base-path", basePath].map(quote).join(" ");
  return new Promise((resolve) => {
    const child = execFile(
      "script",
      ["-qefc", command, "/dev/null"],
      { cwd: dir, env: { ...process.env, CAIRN_STORE: undefined } },
      (error, stdout) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, output: stdout });
      },
    );
    // Typed once the prompt is up; an answer sent earlier would be read all the same.
    child.stdin?.end(input);
  });
}

describe("cleanup rules", () => {
  it("--retention-days leaves unfinished runs alone unless --force", async () => {
    await oldRun("done", true);
    await oldRun("open", false);
    const result = await cairn("cleanup", "--retention-days", "0");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Skipped run open: the run has not finished");
    expect(result.stdout).toContain("(--force deletes it anyway)");
    expect(await runIds()).toEqual(["open"]);

    const forced = await cairn("cleanup", "--retention-days", "0", "--force", "--json");
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ removedRuns: ["open"], unfinishedRuns: ["open"] });
    expect(await runIds()).toEqual([]);
  }, 120_000);

  it("cleanup --pipeline-id --dry-run reports and deletes nothing", async () => {
    await oldRun("done", true);
    await oldRun("open", false);
    const dry = await cairn("cleanup", "--pipeline-id", "done", "--pipeline-id", "open", "--dry-run");
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain("Would remove run done (2 checkpoints).");
    expect(dry.stdout).toContain("Dry run: nothing was deleted.");
    expect(dry.stderr).toContain("refused to delete run open");
    const forced = await cairn("cleanup", "--pipeline-id", "open", "--dry-run", "--force", "--json");
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({
      dryRun: true,
      deleted: [{ pipelineId: "open", checkpoints: 1, finished: false }],
    });
    expect(await runIds()).toEqual(["done", "open"]);
  }, 120_000);

  it("on a terminal, --force asks before deleting unfinished runs; --yes does not ask", async () => {
    await oldRun("done", true);
    await oldRun("open", false);
    const declined = await cairnOnTerminal(["cleanup", "--retention-days", "0", "--force"], "n\n");
    expect(declined.output).toContain("Delete checkpoints of 1 unfinished run (open)?");
    expect(declined.code).toBe(1);
    expect(await runIds()).toEqual(["done", "open"]);

    const byRun = await cairnOnTerminal(["cleanup", "--pipeline-id", "open", "--force"], "y\n");
    expect(byRun.output).toContain("Delete checkpoints of 1 unfinished run (open)?");
    expect(byRun.code).toBe(0);
    expect(await runIds()).toEqual(["done"]);

    await oldRun("open2", false);
    const yes = await cairnOnTerminal(["cleanup", "--retention-days", "0", "--force", "--yes"], "");
    expect(yes.output).not.toContain("[y/N]");
    expect(yes.code).toBe(0);
    expect(await runIds()).toEqual([]);
  }, 120_000);
});
