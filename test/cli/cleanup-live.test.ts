/**
 * `cairn cleanup` run by an operator while a Pipeline executes a run in another process: the
 * run is skipped (retention) or refused (`--force`), and the Pipeline finishes with every
 * checkpoint valid.
 */
import { describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { slowPipeline } from "../support/pipelines.js";
import { uniqueName } from "../support/services.js";
import { storeUrls } from "../support/store-urls.js";

const { urls, dir } = storeUrls("cli-live");

describe.each(Object.keys(urls))("%s store", (name) => {
  it("cleanup skips a run being executed, and refuses it even with --force", async () => {
    const url = (urls[name] as () => string)();
    const manager = new CheckpointManager({ store: url });
    const { pipeline, waiting, finish } = slowPipeline(manager);
    const runId = uniqueName("live");
    const execution = pipeline.execute({ runId });
    execution.catch(() => undefined);
    await waiting;

    const retention = await runCairn(["cleanup", "--retention-days", "0", "--store", url], { cwd: dir() });
    expect(retention.code).toBe(0);
    expect(retention.stdout).toContain(`Skipped run ${runId}: in use by`);
    const json = await runCairn(["cleanup", "--retention-days", "0", "--json", "--store", url], {
      cwd: dir(),
    });
    expect(JSON.parse(json.stdout)).toMatchObject({
      deletedCheckpoints: [],
      removedRuns: [],
      skipped: [{ pipelineId: runId, reason: expect.stringContaining("in use by") }],
    });
    const forced = await runCairn(["cleanup", "--pipeline-id", runId, "--force", "--store", url], {
      cwd: dir(),
    });
    expect(forced.code).toBe(1);
    expect(forced.stderr).toContain(`refused to delete run ${runId}: in use by`);

    finish();
    expect((await execution).status).toBe("completed");
    const validation = await manager.validateRun(runId);
    expect(validation.summary).toEqual({
      listed: 3,
      valid: 3,
      invalid: 0,
      gone: 0,
      sealed: 0,
      quarantined: 0,
    });
    // The Pipeline released its lease: now the finished run goes.
    const after = await runCairn(["cleanup", "--pipeline-id", runId, "--store", url], { cwd: dir() });
    expect(after.code).toBe(0);
    expect(await manager.getRunInfo(runId)).toBeUndefined();
    await manager.close();
  });
});
