/**
 * `replicate` between memory stores, driven as a user would: a manager writes, changes statuses
 * and deletes on the source; the replicator brings the target in step, verified, and continues
 * from the cursor it keeps in the target.
 */
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { CheckpointManager, type ReplicationProblem, replicate } from "../../src/index.js";
import { MemoryStore, sharedMemoryStore } from "../../src/stores/memory/memory-store.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { expectSameRuns, until, writeRun, writeStage } from "../support/replica.js";

const managers: CheckpointManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

function manager(store: string | CheckpointStore, extra: Record<string, unknown> = {}): CheckpointManager {
  const m = new CheckpointManager({ store, ...extra });
  managers.push(m);
  return m;
}

/** A fresh pair of named memory stores: their URLs and the stores behind them. */
function pair() {
  const tag = randomBytes(4).toString("hex");
  const from = `memory:src-${tag}`;
  const to = `memory:dst-${tag}`;
  return { from, to, source: sharedMemoryStore(`src-${tag}`), target: sharedMemoryStore(`dst-${tag}`) };
}

/** Changes a stored record's body behind the store's back (as a disk error or an attacker would). */
function tamperBody(store: MemoryStore, pipelineId: string, checkpointId: string): void {
  const runs = (store as unknown as { runs: Map<string, { checkpoints: Map<string, { body: string }> }> })
    .runs;
  const record = runs.get(pipelineId)?.checkpoints.get(checkpointId);
  if (!record) throw new Error(`no ${checkpointId} to tamper with`);
  record.body = record.body.replace('"step":', '"step":1000+');
  record.body = record.body.replace("state of", "STATE OF");
}

/** How many `checkpoint` changes the target's own feed recorded per checkpoint id. */
async function writesPerCheckpoint(store: MemoryStore): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const change of await store.readChanges(undefined, 10_000))
    if (change.type === "checkpoint" && change.checkpointId)
      counts.set(change.checkpointId, (counts.get(change.checkpointId) ?? 0) + 1);
  return counts;
}

describe("replicate: memory to memory", () => {
  it("copies runs, then status changes and deletions, catching up from its saved cursor", async () => {
    const { from, to, source, target } = pair();
    const m = manager(from);
    const a = await writeRun(m, "run-a", 3);
    const b = await writeRun(m, "run-b", 2);
    await writeRun(m, "run-c", 2);

    const first = await replicate({ from, to });
    expect(first).toMatchObject({ checkpointsCopied: 7, syncs: 1, corrupt: [], diverged: [] });
    expect(first.outputsCopied).toBe(3 + 2 + 2);
    expect(first.cursor).toBe(await source.feedCursor());
    await expectSameRuns(source, target);

    await m.updateCheckpointStatus(a[2] as string, "failed", "boom");
    await writeStage(m, "run-b", ["stage1", "stage2", "stage3"], 2);
    const store = await m.getStore();
    await store.deleteCheckpoints("run-a", [a[0] as string]);
    await store.deleteRun("run-c");
    await writeRun(m, "run-d", 1);

    const second = await replicate({ from, to });
    // Caught up from the feed: no full compare.
    expect(second).toMatchObject({
      syncs: 0,
      checkpointsCopied: 2,
      statusesCopied: 1,
      checkpointsDeleted: 1,
      runsDeleted: 1,
    });
    expect(second.outputsCopied).toBe(2);
    await expectSameRuns(source, target);
    expect((await target.getCheckpoint(a[2] as string))?.metadata).toMatchObject({
      status: "failed",
      error_message: "boom",
    });
    expect(await target.getCheckpoint(b[0] as string)).toBeDefined();

    // Nothing new: nothing done.
    const third = await replicate({ from, to });
    expect(third).toMatchObject({ syncs: 0, checkpointsCopied: 0, statusesCopied: 0 });
    // Each checkpoint was written to the target once.
    expect([...(await writesPerCheckpoint(target)).values()].every((n) => n === 1)).toBe(true);
  });

  it("reports a tampered source record and does not copy it; the rest is copied", async () => {
    const { from, to, source, target } = pair();
    const m = manager(from);
    const ids = await writeRun(m, "run-t", 3);
    await writeRun(m, "run-ok", 2);
    tamperBody(source, "run-t", ids[1] as string);
    const problems: ReplicationProblem[] = [];
    const report = await replicate({ from, to, onProblem: (p) => problems.push(p) });
    expect(report.corrupt).toHaveLength(1);
    expect(report.corrupt[0]).toMatchObject({ kind: "corrupt", pipelineId: "run-t", checkpointId: ids[1] });
    expect(report.corrupt[0]?.message).toMatch(/checksum/);
    expect(problems).toEqual(report.corrupt);
    expect(await target.getCheckpoint(ids[1] as string)).toBeUndefined();
    expect(await target.getCheckpoint(ids[0] as string)).toBeDefined();
    expect(await target.getCheckpoint(ids[2] as string)).toBeDefined();
    await expectSameRuns(source, target, ["run-ok"]);
    expect(report.checkpointsCopied).toBe(4);
  });

  it("reports a tampered output and does not copy the checkpoints that refer to it", async () => {
    const { from, to, source, target } = pair();
    const m = manager(from);
    const ids = await writeRun(m, "run-o", 2);
    const record = await source.getCheckpoint(ids[0] as string);
    const hash = Object.values(JSON.parse(record?.body ?? "{}").output_refs as Record<string, string>)[0];
    const outputs = (source as unknown as { runs: Map<string, { outputs: Map<string, string> }> }).runs.get(
      "run-o",
    )?.outputs;
    outputs?.set(hash as string, '{"rows":["changed"]}');
    const report = await replicate({ from, to });
    expect(report.corrupt.map((p) => p.checkpointId)).toEqual(ids);
    expect(report.corrupt[0]?.message).toMatch(/does not match its hash/);
    expect(await target.listCheckpoints("run-o")).toEqual([]);
  });

  it("follows the feed: new writes, statuses and deletions reach the target", async () => {
    const { from, to, source, target } = pair();
    const m = manager(from);
    await writeRun(m, "run-f", 1);
    const controller = new AbortController();
    const progress: string[] = [];
    const running = replicate({
      from,
      to,
      follow: true,
      signal: controller.signal,
      onProgress: (p) => progress.push(p.phase),
    });
    await until(async () => (await target.listCheckpoints("run-f")).length === 1);
    const ids = await writeRun(m, "run-g", 3);
    await until(async () => (await target.listCheckpoints("run-g")).length === 3);
    await m.updateCheckpointStatus(ids[2] as string, "failed", "late failure");
    await until(async () => (await target.getCheckpoint(ids[2] as string))?.metadata.status === "failed");
    await (await m.getStore()).deleteRun("run-f");
    await until(async () => (await target.listCheckpoints("run-f")).length === 0);
    controller.abort();
    const report = await running;
    expect(report).toMatchObject({ syncs: 1, checkpointsCopied: 4, statusesCopied: 1, runsDeleted: 1 });
    expect(progress).toContain("follow");
    await expectSameRuns(source, target);
    // The cursor it stopped at is saved in the target: a restart has nothing to do.
    expect(report.cursor).toBe(await source.feedCursor());
    expect(await replicate({ from, to })).toMatchObject({ syncs: 0, checkpointsCopied: 0 });
  });

  it("restarted after an abort, continues from its saved cursor without writing anything twice", async () => {
    const { from, to, source, target } = pair();
    const m = manager(from);
    await writeRun(m, "run-r", 2);
    const controller = new AbortController();
    const running = replicate({ from, to, follow: true, signal: controller.signal });
    await until(async () => (await target.listCheckpoints("run-r")).length === 2);
    controller.abort();
    const stopped = await running;
    await writeRun(m, "run-s", 3);
    const names = ["stage1", "stage2", "stage3", "stage4"];
    await writeStage(m, "run-r", names, 2);
    const resumed = await replicate({ from, to });
    expect(resumed.syncs).toBe(0);
    expect(resumed.checkpointsCopied).toBe(4);
    expect(stopped.cursor).toBeDefined();
    await expectSameRuns(source, target);
    expect([...(await writesPerCheckpoint(target)).values()].every((n) => n === 1)).toBe(true);
  });

  it("applies a change twice harmlessly (a kill between applying and saving the cursor)", async () => {
    const { from, to, source, target } = pair();
    const m = manager(from);
    const before = await source.feedCursor();
    const ids = await writeRun(m, "run-i", 2);
    await m.updateCheckpointStatus(ids[0] as string, "failed", "x");
    await (await m.getStore()).deleteCheckpoints("run-i", [ids[1] as string]);
    await replicate({ from, to });
    // Rewind the saved cursor to before every change: all of them are applied again.
    const key = await savedKey(target);
    const state = JSON.parse((await target.getMeta(key)) as string) as { cursor: string };
    await target.putMeta(key, JSON.stringify({ ...state, cursor: before }));
    const again = await replicate({ from, to });
    expect(again).toMatchObject({ syncs: 0, checkpointsCopied: 0, corrupt: [], diverged: [] });
    await expectSameRuns(source, target);
  });

  it("keepDeleted keeps a run (and its checkpoints) the source deleted", async () => {
    const { from, to, target } = pair();
    const m = manager(from);
    const ids = await writeRun(m, "run-k", 2);
    await replicate({ from, to, keepDeleted: true });
    await (await m.getStore()).deleteCheckpoints("run-k", [ids[0] as string]);
    await (await m.getStore()).deleteRun("run-k");
    const report = await replicate({ from, to, keepDeleted: true });
    expect(report).toMatchObject({ runsDeleted: 0, checkpointsDeleted: 0 });
    expect(await target.listCheckpoints("run-k")).toHaveLength(2);
    // A full compare keeps it too (a new replication: no saved cursor for these filters).
    const full = await replicate({ from, to, keepDeleted: true, pipelineId: "run-k" });
    expect(full).toMatchObject({ syncs: 1, runsDeleted: 0 });
    expect(await target.listCheckpoints("run-k")).toHaveLength(2);
    // Without keepDeleted, a compare from a source holding no run of the name deletes nothing
    // (a wrong source?); once the source holds one, the same compare deletes the gone run.
    const empty = await replicate({ from, to, name: "demo" });
    expect(empty).toMatchObject({ runsDeleted: 0, emptySource: { kind: "empty-source" } });
    expect(await target.listCheckpoints("run-k")).toHaveLength(2);
    await writeRun(m, "run-l", 1);
    expect(await replicate({ from, to, name: "demo" })).toMatchObject({ runsDeleted: 1 });
    expect(await target.listCheckpoints("run-k")).toHaveLength(0);
  });

  it("never deletes on a target that is ahead of the source (written on the replica after a failover)", async () => {
    const { from, to, source, target } = pair();
    const m = manager(from);
    const names = ["stage1", "stage2", "stage3"];
    const ids = await writeRun(m, "run-x", 2);
    await replicate({ from, to });
    // The replica takes over the run and writes its next checkpoint.
    await writeStage(manager(to), "run-x", names, 2);
    // Meanwhile the old primary deletes a checkpoint and changes a status.
    await (await m.getStore()).deleteCheckpoints("run-x", [ids[0] as string]);
    await m.updateCheckpointStatus(ids[1] as string, "failed", "old primary");
    const report = await replicate({ from, to });
    expect(report.diverged).toHaveLength(1);
    expect(report.statusesCopied).toBe(0);
    expect((await target.getCheckpoint(ids[1] as string))?.metadata.status).toBe("completed");
    expect(report.diverged[0]).toMatchObject({ kind: "diverged", pipelineId: "run-x" });
    expect(report.checkpointsDeleted).toBe(0);
    expect(await target.listCheckpoints("run-x")).toHaveLength(3);
    // A full compare leaves it too.
    const full = await replicate({ from, to, pipelineId: "run-x" });
    expect(full.diverged).toHaveLength(1);
    expect(await target.listCheckpoints("run-x")).toHaveLength(3);
    expect(await source.listCheckpoints("run-x")).toHaveLength(1);
  });

  it("resyncs in full when its saved cursor was trimmed from the source's feed", async () => {
    const source = new MemoryStore({ name: "trimmed", feedRetention: 100 });
    const target = new MemoryStore({ name: "trimmed-target" });
    const m = manager(source);
    await writeRun(m, "run-1", 2);
    await replicate({ from: source, to: target });
    for (let i = 0; i < 30; i++) await writeRun(m, `run-many-${i}`, 8);
    const problems: ReplicationProblem[] = [];
    const report = await replicate({ from: source, to: target, onProblem: (p) => problems.push(p) });
    expect(problems.map((p) => p.kind)).toEqual(["trimmed"]);
    expect(report.syncs).toBe(1);
    expect(report.checkpointsCopied).toBe(240);
    await expectSameRuns(source, target);
    // The stores were passed in open: still open.
    expect(await source.listPipelineIds()).toHaveLength(31);
  });

  it("a saved cursor the source never wrote means a full sync, as a trimmed one does", async () => {
    const { from, to, source, target } = pair();
    await writeRun(manager(from), "run-bad", 2);
    await replicate({ from, to });
    const key = await savedKey(target);
    const state = JSON.parse((await target.getMeta(key)) as string) as Record<string, unknown>;
    await target.putMeta(key, JSON.stringify({ ...state, cursor: "not a cursor" }));
    const problems: ReplicationProblem[] = [];
    const report = await replicate({ from, to, onProblem: (p) => problems.push(p) });
    expect(problems.map((p) => p.kind)).toEqual(["trimmed"]);
    expect(report).toMatchObject({ syncs: 1, checkpointsCopied: 0, cursor: await source.feedCursor() });
  });

  it("filters by run id and by pipeline name", async () => {
    const { from, to, target } = pair();
    const m = manager(from);
    await writeRun(m, "run-p", 1, "alpha");
    await writeRun(m, "run-q", 1, "beta");
    await writeRun(m, "run-q2", 1, "beta");
    expect(await replicate({ from, to, pipelineId: "run-p" })).toMatchObject({ checkpointsCopied: 1 });
    expect(await target.listPipelineIds()).toEqual(["run-p"]);
    expect(await replicate({ from, to, name: "beta" })).toMatchObject({ checkpointsCopied: 2 });
    expect(await target.listPipelineIds()).toEqual(["run-p", "run-q", "run-q2"]);
    // Followed by name: a change of another pipeline's run is not applied.
    await writeRun(m, "run-p3", 1, "alpha");
    await writeRun(m, "run-q3", 1, "beta");
    expect(await replicate({ from, to, name: "beta" })).toMatchObject({ syncs: 0, checkpointsCopied: 1 });
    expect(await target.listPipelineIds()).toEqual(["run-p", "run-q", "run-q2", "run-q3"]);
  });

  it("takes open stores (a manager's, beneath its at-rest layer) and a { strategy, config } target, and leaves them open", async () => {
    const { from, source } = pair();
    const m = manager(from, { compression: "gzip" });
    const ids = await writeRun(m, "run-open", 2);
    const name = `dst-${randomBytes(4).toString("hex")}`;
    const report = await replicate({
      from: await m.getStore(),
      to: { strategy: "memory", config: { name } },
    });
    expect(report.checkpointsCopied).toBe(2);
    const target = sharedMemoryStore(name);
    // As stored: the compressed text, not the text the manager's layer opens it into.
    expect((await target.getCheckpoint(ids[0] as string))?.body).toBe(
      (await source.getCheckpoint(ids[0] as string))?.body,
    );
    await expectSameRuns(source, target);
    expect((await m.loadCheckpoint(ids[1] as string)).metadata.checkpointId).toBe(ids[1]);
  });

  it("refuses bad options", async () => {
    const { from } = pair();
    await expect(replicate({ from, to: from })).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
    await expect(replicate({ from, to: "memory:x", pollMs: -1 })).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    await expect(
      replicate({ from, to: "memory:x", followw: true } as unknown as Parameters<typeof replicate>[0]),
    ).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
  });
});

/** The one replica state key a target holds. */
async function savedKey(target: MemoryStore): Promise<string> {
  const meta = (target as unknown as { meta: Map<string, string> }).meta;
  const keys = [...meta.keys()].filter((k) => k.startsWith("replica."));
  expect(keys).toHaveLength(1);
  return keys[0] as string;
}
