/** `buildRecoveryReport` and `renderReport` on runs built through the library in a file store. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildRecoveryReport, renderReport } from "../../src/debug/report.js";
import { type CheckpointManager, CheckpointNotFoundError, PIPELINE_COMPLETE_STAGE } from "../../src/index.js";
import { editBody, fileManager, writeStages } from "./fixtures.js";

let root: string;
let basePath: string;
let manager: CheckpointManager;
const start = Date.parse("2026-03-01T10:00:00Z");
const now = new Date("2026-03-02T10:00:00Z");

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-report-"));
  basePath = join(root, "store");
  manager = fileManager(basePath, start);
});
afterEach(async () => {
  await manager.close();
  await rm(root, { recursive: true, force: true });
});

/** Three completed stages, then a failure of `report` with `error`. */
async function failedRun(pipelineId: string, error: string): Promise<string[]> {
  const ids = await writeStages(manager, pipelineId, 3);
  ids.push(
    await manager.createCheckpoint({
      pipelineId,
      pipelineName: "etl",
      stageName: "report",
      stageIndex: 3,
      stateData: { source: "orders.csv" },
      completedStages: ["extract", "transform", "load"],
      pendingStages: ["report"],
      status: "failed",
      errorMessage: error,
    }),
  );
  return ids;
}

describe("buildRecoveryReport", () => {
  it("summarizes the run, its statistics and storage, and recommends the newest valid checkpoint", async () => {
    const ids = await failedRun("run-1", "connection reset");
    const report = await buildRecoveryReport(manager, "run-1", { now });
    expect(report.generatedAt).toEqual(now);
    expect(report.run).toEqual({
      pipelineId: "run-1",
      pipelineName: "etl",
      status: "failed",
      finished: false,
      stagesCompleted: 3,
      stagesTotal: 4,
      firstAt: new Date(start + 1000),
      lastAt: new Date(start + 4000),
      latestCheckpointId: ids[3],
      latestStage: "report",
    });
    expect(report.statistics).toMatchObject({
      checkpoints: 4,
      healthy: 4,
      corrupted: 0,
      byStatus: { completed: 3, failed: 1, in_progress: 0, resumed: 0, expired: 0 },
      totalResumeCount: 0,
      resumeSuccessRate: null,
    });
    expect(report.storage.outputs).toBe(3);
    expect(report.recoveryPoint).toMatchObject({
      checkpointId: ids[3],
      stageName: "report",
      sequence: 4,
      pendingStages: ["report"],
      isNewest: true,
    });
    expect(report.failurePoints).toEqual([
      { stageName: "report", count: 1, lastError: "connection reset", lastAt: new Date(start + 4000) },
    ]);
  });

  it("recommends the previous checkpoint after the newest one is edited by hand", async () => {
    const ids = await writeStages(manager, "run-edit", 3);
    await editBody(basePath, "run-edit", ids[2] as string);
    const report = await buildRecoveryReport(manager, "run-edit", { now });
    expect(report.recoveryPoint).toMatchObject({
      checkpointId: ids[1],
      stageName: "transform",
      isNewest: false,
    });
    expect(report.statistics).toMatchObject({ checkpoints: 3, healthy: 2, corrupted: 1 });
    const text = renderReport(report, "text");
    const section = text.slice(text.indexOf("Recommended recovery point"));
    expect(section).toMatch(new RegExp(`Checkpoint:\\s+${ids[1]}`));
    expect(section).toMatch(/Pending stages:\s+load, report/);
    expect(text).toContain(`⚠ ${ids[2]} (invalid): checksum mismatch`);
  });

  it("prints the resume command with the run id, the pipeline file and the store flags", async () => {
    await writeStages(manager, "run-cmd", 2);
    const placeholder = await buildRecoveryReport(manager, "run-cmd");
    expect(placeholder.resumeCommand).toBe("cairn run <pipeline-file> --run-id run-cmd");
    const full = await buildRecoveryReport(manager, "run-cmd", {
      pipelineFile: "pipelines/my etl.yaml",
      storeArgs: ["--store", "sqlite:./cairn.db"],
    });
    expect(full.resumeCommand).toBe(
      "cairn run 'pipelines/my etl.yaml' --run-id run-cmd --store sqlite:./cairn.db",
    );
    expect(renderReport(full, "text")).toContain(`Resume command\n  ${full.resumeCommand}\n`);

    await manager.createCheckpoint({
      pipelineId: "run-cmd",
      stageName: PIPELINE_COMPLETE_STAGE,
      stageIndex: 4,
    });
    const done = await buildRecoveryReport(manager, "run-cmd");
    expect(done.resumeCommand).toBeNull();
    expect(done.run).toMatchObject({ status: "completed", finished: true });
    expect(renderReport(done, "text")).toContain("none: the run finished");
  });

  it("reports no recovery point when no checkpoint verifies", async () => {
    const ids = await writeStages(manager, "run-none", 1);
    await editBody(basePath, "run-none", ids[0] as string);
    const report = await buildRecoveryReport(manager, "run-none");
    expect(report.recoveryPoint).toBeNull();
    expect(renderReport(report, "text")).toContain("none: no checkpoint verifies");
    expect(report.recommendations.join("\n")).toContain("a resume starts over from the first stage");
  });

  it("rejects an unknown run", async () => {
    await expect(buildRecoveryReport(manager, "nope")).rejects.toBeInstanceOf(CheckpointNotFoundError);
  });
});

describe("renderReport", () => {
  it("escapes an error message in HTML and produces a self-contained page", async () => {
    await failedRun("run-html", `<script>alert("x")</script> & 'more'`);
    const html = renderReport(await buildRecoveryReport(manager, "run-html", { now }), "html");
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;more&#39;");
    expect(html).toContain("<style>");
    // Self-contained: no scripts, stylesheets, images or fonts fetched from anywhere.
    expect(html).not.toMatch(/<link|<img|src=|href=|url\(|@import/i);
    expect(html).toContain("<h2>Recommended recovery point</h2>");
    expect(html).toContain("<pre><code>cairn run &#60;pipeline-file&#62; --run-id run-html</code></pre>");
  });

  it("shows control characters of an error message instead of sending them to the terminal", async () => {
    await failedRun("run-tty", "red \u001b[31malert\u0007\r done");
    const text = renderReport(await buildRecoveryReport(manager, "run-tty", { now }), "text");
    expect(text).toContain("red \\x1b[31malert\\x07\\x0d done");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting there are none.
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  });

  it("renders Markdown with tables whose cells cannot be broken by the data", async () => {
    const ids = await failedRun("run-md", "bad | row <b>x</b>");
    const md = renderReport(await buildRecoveryReport(manager, "run-md", { now }), "md");
    expect(md).toContain("# Recovery report: etl\n");
    expect(md).toContain("## Run\n\n| Field | Value |\n| --- | --- |\n| Pipeline | etl |");
    expect(md).toContain(
      "## Failure points\n\n| Stage | Failures | Last at | Last error |\n| --- | --- | --- | --- |",
    );
    expect(md).toContain("| report | 1 | 2026-03-01 10:00:04Z | bad \\| row \\<b\\>x\\</b\\> |");
    expect(md).toContain(`| Checkpoint | ${ids[3]} |`);
    // Every table row has as many cells as its header: no unescaped pipe in the data.
    for (const table of md.split("\n\n").filter((block) => block.startsWith("| "))) {
      const rows = table.split("\n");
      const cells = (row: string) => row.split(/(?<!\\)\|/).length;
      for (const row of rows) expect(cells(row)).toBe(cells(rows[0] as string));
    }
    expect(md).toContain("```sh\ncairn run <pipeline-file> --run-id run-md\n```");
  });
});
