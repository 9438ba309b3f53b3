/**
 * `manager.learnCosts` on every store: the newest runs of a name through the runs-by-name index,
 * each walked with the one check; recorded timings, timestamp deltas for older runs, corrupt
 * checkpoints skipped, encrypted ones without the key used for their timestamps only.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CheckpointManager, ewma, InvalidArgumentError } from "../../src/index.js";
import { checkpointFile } from "../support/file-store.js";
import { storeUrls } from "../support/store-urls.js";
import { tickingClock, writeTimedRun } from "../support/timed-runs.js";
import { setFormatVersion } from "../support/too-new.js";

const { urls, dir } = storeUrls("cost-history");
const STAGES = ["a", "b", "c"];
const HOUR = 3_600_000;
const opened: CheckpointManager[] = [];

function open(store: string, extra: Partial<ConstructorParameters<typeof CheckpointManager>[0]> = {}) {
  const manager = new CheckpointManager({ store, clock: tickingClock(Date.UTC(2026, 0, 1)), ...extra });
  opened.push(manager);
  return manager;
}
afterEach(async () => {
  for (const m of opened.splice(0)) await m.close();
});

/** Three runs of `etl` (the second fails in b and is resumed) and one run of another pipeline. */
async function writeHistory(manager: CheckpointManager, tag: string): Promise<void> {
  const t0 = Date.UTC(2026, 0, 1);
  await writeTimedRun(
    manager,
    `${tag}-1`,
    "etl",
    STAGES,
    [
      { stage: "a", durationMs: 100, checkpointMs: 10 },
      { stage: "b", durationMs: 200, checkpointMs: 20 },
      { stage: "c", durationMs: 300, checkpointMs: 30 },
    ],
    { startMs: t0 },
  );
  await writeTimedRun(
    manager,
    `${tag}-2`,
    "etl",
    STAGES,
    [
      { stage: "a", durationMs: 110, checkpointMs: 10 },
      { stage: "b", durationMs: 50, checkpointMs: 20, failed: true },
      { stage: "b", durationMs: 220, checkpointMs: 20, attempts: 2 },
      { stage: "c", durationMs: 330, checkpointMs: 30 },
    ],
    { startMs: t0 + HOUR },
  );
  await writeTimedRun(
    manager,
    `${tag}-3`,
    "etl",
    STAGES,
    [
      { stage: "a", durationMs: 120, checkpointMs: 10 },
      { stage: "b", durationMs: 240, checkpointMs: 20 },
      { stage: "c", durationMs: 360, checkpointMs: 30 },
    ],
    { startMs: t0 + 2 * HOUR },
  );
  await writeTimedRun(manager, `${tag}-x`, "other", STAGES, [{ stage: "a", durationMs: 9999 }], {
    startMs: t0 + 3 * HOUR,
  });
}

describe.each(Object.keys(urls))("learnCosts on %s", (name) => {
  it("learns durations, failure rates and checkpoint costs from recorded timings", async () => {
    const manager = open((urls[name] as () => string)());
    await writeHistory(manager, `${name}-t`);
    const costs = await manager.learnCosts("etl");
    expect(costs.runs.map((r) => [r.pipelineId, r.source])).toEqual([
      [`${name}-t-3`, "timings"],
      [`${name}-t-2`, "timings"],
      [`${name}-t-1`, "timings"],
    ]);
    expect(costs.skippedCheckpoints).toBe(0);
    // Carried-forward entries count once per execution.
    expect(costs.stages.a).toMatchObject({ samples: 3, failures: 0, failureRate: 0, approximate: false });
    expect(costs.stages.b).toMatchObject({ samples: 4, failures: 1 });
    expect(costs.stages.c?.samples).toBe(3);
    expect(costs.stages.a?.durationMs).toBeCloseTo(ewma([100, 110, 120], 0.3) as number, 9);
    expect(costs.stages.b?.durationMs).toBeCloseTo(ewma([200, 220, 240], 0.3) as number, 9);
    expect(costs.stages.b?.failureRate).toBeCloseTo(ewma([0, 1, 0, 0], 0.3) as number, 9);
    expect(costs.stages.c?.checkpointMs).toBeCloseTo(30, 9);
    // Store cost: every recorded write in time order (the failed b's is lost: its re-run replaced the entry).
    const writes = costs.observations.flatMap((o) => (o.checkpointMs !== undefined ? [o.checkpointMs] : []));
    expect(writes).toEqual([10, 20, 30, 10, 20, 30, 10, 20, 30]);
    expect(costs.checkpointMs).toBeCloseTo(ewma(writes, 0.3) as number, 9);
    // Bounded: the newest run only.
    const newest = await manager.learnCosts("etl", { runs: 1 });
    expect(newest.runs.map((r) => r.pipelineId)).toEqual([`${name}-t-3`]);
    expect(newest.stages.a).toMatchObject({ samples: 1, durationMs: 120 });
    await expect(manager.learnCosts("etl", { runs: 0 })).rejects.toThrow(InvalidArgumentError);
    expect((await manager.learnCosts("nothing")).runs).toEqual([]);
  });

  it("falls back to timestamp deltas (approximate) for runs without recorded timings", async () => {
    const manager = open((urls[name] as () => string)());
    const ids = await writeTimedRun(
      manager,
      `${name}-old`,
      "legacy",
      STAGES,
      [
        { stage: "a", durationMs: 1 },
        { stage: "b", durationMs: 1, failed: true },
        { stage: "b", durationMs: 1 },
        { stage: "c", durationMs: 1 },
      ],
      { timings: false },
    );
    const history = (await manager.getCheckpointHistory(`${name}-old`)).reverse();
    expect(history.map((m) => m.checkpointId)).toEqual(ids);
    const costs = await manager.learnCosts("legacy");
    expect(costs.runs).toEqual([{ pipelineId: `${name}-old`, source: "timestamps" }]);
    const delta = (i: number) =>
      (history[i]?.timestamp.getTime() as number) - (history[i - 1]?.timestamp.getTime() as number);
    // The first stage has no checkpoint before it; pipeline_complete is no stage.
    expect(costs.observations.map((o) => [o.stageName, o.durationMs, o.failed, o.approximate])).toEqual([
      ["b", delta(1), true, true],
      ["b", delta(2), false, true],
      ["c", delta(3), false, true],
    ]);
    expect(costs.stages.a).toBeUndefined();
    expect(costs.stages.b).toMatchObject({ samples: 2, failures: 1, approximate: true });
    expect(costs.checkpointMs).toBeUndefined();
  });
});

describe("learnCosts never trusts an unverified checkpoint", () => {
  it("skips a checkpoint that fails the check (file store, edited by hand)", async () => {
    const basePath = join(dir(), "edited");
    const manager = open(`file:${basePath}`);
    const ids = await writeTimedRun(manager, "edited-1", "etl", STAGES, [
      { stage: "a", durationMs: 100, checkpointMs: 10 },
      { stage: "b", durationMs: 200, checkpointMs: 20 },
      { stage: "c", durationMs: 300, checkpointMs: 30 },
    ]);
    // The final record alone carries c's write time; edit a duration in it.
    const path = await checkpointFile(basePath, "edited-1", ids[3] as string);
    const text = await readFile(path, "utf8");
    expect(text).toContain('"duration_ms":300');
    await writeFile(path, text.replace('"duration_ms":300', '"duration_ms":999'));
    const costs = await manager.learnCosts("etl");
    expect(costs.skippedCheckpoints).toBe(1);
    expect(costs.stages.c).toMatchObject({ durationMs: 300, checkpointMs: undefined });
    expect(costs.stages.b).toMatchObject({ durationMs: 200, checkpointMs: 20 });
  });

  it("uses only the metadata of checkpoints encrypted under a key it lacks", async () => {
    const store = `sqlite:${join(dir(), "sealed.db")}`;
    const encryption = { keys: { k1: randomBytes(32) }, activeKeyId: "k1" };
    const writer = open(store, { encryption });
    await writeTimedRun(writer, "sealed-1", "etl", STAGES, [
      { stage: "a", durationMs: 100, checkpointMs: 10 },
      { stage: "b", durationMs: 200, checkpointMs: 20 },
      { stage: "c", durationMs: 300, checkpointMs: 30 },
    ]);
    const withKey = await writer.learnCosts("etl");
    expect(withKey.runs[0]?.source).toBe("timings");
    expect(withKey.stages.b?.durationMs).toBe(200);
    const costs = await open(store).learnCosts("etl");
    expect(costs.sealedCheckpoints).toBe(4);
    expect(costs.runs).toEqual([{ pipelineId: "sealed-1", source: "timestamps" }]);
    expect(costs.observations.every((o) => o.approximate)).toBe(true);
    expect(costs.observations.map((o) => o.stageName)).toEqual(["b", "c"]);
  });

  it("passes over a run a newer cairn wrote and learns from the others", async () => {
    const basePath = join(dir(), "newer");
    const manager = open(`file:${basePath}`);
    const runs = [{ stage: "a", durationMs: 100, checkpointMs: 10 }];
    await writeTimedRun(manager, "newer-1", "etl", ["a"], runs, { startMs: Date.UTC(2026, 0, 1) });
    const ids = await writeTimedRun(manager, "newer-2", "etl", ["a"], runs, {
      startMs: Date.UTC(2026, 0, 2),
    });
    await setFormatVersion({ kind: "file", basePath }, "newer-2", ids[0] as string, 99);
    const costs = await manager.learnCosts("etl");
    expect(costs.runs).toEqual([
      { pipelineId: "newer-2", source: "newer_format" },
      { pipelineId: "newer-1", source: "timings" },
    ]);
    expect(costs.stages.a).toMatchObject({ samples: 1, durationMs: 100 });
  });
});
