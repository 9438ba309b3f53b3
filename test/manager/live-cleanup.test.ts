/**
 * Cleanup against a run that is live: a Pipeline executing it (holding its lease), or a manager
 * writing to it without a lease. Each test runs on every store, with the cleanup on a second
 * manager of the same store, as another process would be.
 */
import { describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { slowPipeline } from "../support/pipelines.js";
import { uniqueName } from "../support/services.js";
import { storeUrls } from "../support/store-urls.js";

const { urls } = storeUrls("live-cleanup", { memory: true });

/** Every checkpoint of the run validates. */
async function expectValid(manager: CheckpointManager, runId: string): Promise<void> {
  const validation = await manager.validateRun(runId);
  expect(validation.checkpoints.filter((c) => c.status !== "valid")).toEqual([]);
  expect(validation.valid).toBe(true);
}

describe.each(Object.keys(urls))("%s store", (name) => {
  const open = () => new CheckpointManager({ store: (urls[name] as () => string)() });

  it("leaves a run a Pipeline is executing alone: retention skips it, a forced cleanup is refused", async () => {
    const runner = open();
    const cleaner = open();
    const runId = uniqueName("live");
    const { pipeline, waiting, finish } = slowPipeline(runner);
    const execution = pipeline.execute({ runId });
    await waiting;

    const report = await cleaner.cleanupOldCheckpoints({ retentionDays: 0 });
    expect(report.skipped).toEqual([{ pipelineId: runId, reason: expect.stringContaining("in use by") }]);
    expect(report.deletedCheckpoints.filter((c) => c.pipelineId === runId)).toEqual([]);
    const forced = await cleaner.cleanupPipelines([runId], { force: true });
    expect(forced).toEqual({
      dryRun: false,
      deleted: [],
      refused: [{ pipelineId: runId, reason: expect.stringContaining("in use by") }],
      missing: [],
    });

    finish();
    expect((await execution).status).toBe("completed");
    expect((await runner.getRunInfo(runId))?.finished).toBe(true);
    await expectValid(cleaner, runId);
    // Finished and released: now retention removes it.
    expect((await cleaner.cleanupOldCheckpoints({ retentionDays: 0 })).removedRuns).toContain(runId);
    await Promise.all([runner.close(), cleaner.close()]);
  });

  it("fails a Pipeline whose run is deleted underneath it with a typed error, never 'completed'", async () => {
    const runner = open();
    const other = open();
    for (const remove of ["deleteRun", "deleteCheckpoints"] as const) {
      const runId = uniqueName(`gone-${remove}`);
      const { pipeline, waiting, finish } = slowPipeline(runner);
      const execution = pipeline.execute({ runId });
      execution.catch(() => undefined);
      await waiting;
      // Deleted around the lease, as an operator's rm or an old cleanup would.
      const store = await other.getStore();
      if (remove === "deleteRun") await store.deleteRun(runId);
      else {
        const ids = (await store.listCheckpoints(runId)).map((e) => (e.ok ? e.metadata.checkpoint_id : ""));
        expect(ids).toHaveLength(1);
        await store.deleteCheckpoints(runId, ids);
      }
      finish();
      await expect(execution).rejects.toMatchObject({
        code: expect.stringMatching(/^CAIRN_(HISTORY_LOST|LEASE_LOST)$/),
      });
      expect(await store.listCheckpoints(runId)).toEqual([]);
    }
    await Promise.all([runner.close(), other.close()]);
  });

  it("sees a checkpoint written right after it listed the run, and deletes none of its outputs", async () => {
    // The first three checkpoints are years old; those written during the cleanup are new.
    let stamp = "2020-01-01T00:00:00.000Z";
    const writer = new CheckpointManager({
      store: (urls[name] as () => string)(),
      clock: () => new Date(stamp),
    });
    const base = open();
    const runId = uniqueName("listed");
    const write = (i: number) =>
      writer.createCheckpoint({
        pipelineId: runId,
        pipelineName: "listed",
        stageName: `s${i}`,
        stageIndex: i,
        agentOutputs: { [`s${i}`]: { i } },
      });
    for (let i = 0; i < 3; i++) await write(i);
    stamp = "2025-01-01T00:00:00.000Z";
    // The cleanup's store writes one more checkpoint each time right after it lists the run
    // (twice), as a writer without a lease would in between.
    let injected = 3;
    const store = await base.getStore();
    const hooked = new Proxy(store, {
      get(target, key, receiver) {
        if (key === "close") return async () => undefined;
        if (key !== "listCheckpoints") return Reflect.get(target, key, receiver);
        return async (pipelineId: string) => {
          const listing = await target.listCheckpoints(pipelineId);
          if (injected < 5) await write(injected++);
          return listing;
        };
      },
    });
    const cleaner = new CheckpointManager({
      store: hooked,
      clock: () => new Date("2025-01-02T00:00:00.000Z"),
    });
    const report = await cleaner.cleanupOldCheckpoints({ retentionDays: 30, pipelineId: runId });
    await expectValid(base, runId);
    expect(injected).toBe(5);
    expect(report.skipped).toEqual([]);
    expect(report.deletedCheckpoints).toHaveLength(3);
    expect((await writer.loadLatestCheckpoint(runId))?.agentOutputs).toEqual({ s4: { i: 4 } });
    await Promise.all([writer.close(), base.close()]);
  });

  it("keeps every checkpoint valid when retention with a tiny window races a writer without a lease", async () => {
    // Virtual time: each checkpoint is a second after the one before, and the cleanup keeps the
    // last three seconds, so it deletes old checkpoints of the run while the run is written.
    let now = Date.parse("2025-01-01T00:00:00.000Z");
    const writer = new CheckpointManager({
      store: (urls[name] as () => string)(),
      clock: () => {
        now += 1000;
        return new Date(now);
      },
    });
    const cleaner = new CheckpointManager({
      store: (urls[name] as () => string)(),
      clock: () => new Date(now),
    });
    const runId = uniqueName("raced");
    let writing = true;
    const written = (async () => {
      try {
        for (let i = 0; i < 100; i++) {
          await writer.createCheckpoint({
            pipelineId: runId,
            pipelineName: "raced",
            stageName: `s${i}`,
            stageIndex: i,
            // One output shared by every checkpoint, one new to each.
            agentOutputs: { shared: { config: "same for every stage" }, [`s${i}`]: { i } },
          });
          // A synchronous store (sqlite) would otherwise finish the loop within one cleanup pass.
          await new Promise(setImmediate);
        }
      } finally {
        writing = false;
      }
    })();
    let passes = 0;
    let deleted = 0;
    while (writing) {
      const report = await cleaner.cleanupOldCheckpoints({ retentionDays: 3 / 86_400, pipelineId: runId });
      deleted += report.deletedCheckpoints.length;
      passes++;
      await new Promise(setImmediate);
    }
    await written;
    expect(passes).toBeGreaterThan(1);
    // On a loaded machine every racing pass may have seen the tip move and backed off (the
    // test above that writes right after the listing forces the race); a last pass must trim.
    deleted += (await cleaner.cleanupOldCheckpoints({ retentionDays: 3 / 86_400, pipelineId: runId }))
      .deletedCheckpoints.length;
    expect(deleted).toBeGreaterThan(0);
    await expectValid(cleaner, runId);
    const newest = await writer.loadLatestCheckpoint(runId);
    expect(newest?.metadata.stageName).toBe("s99");
    expect(newest?.agentOutputs).toEqual({ shared: { config: "same for every stage" }, s99: { i: 99 } });
    await Promise.all([writer.close(), cleaner.close()]);
  }, 60_000);
});
