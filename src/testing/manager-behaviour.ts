/**
 * The conformance suite, part 2: what CheckpointManager guarantees on top of each store.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseBody } from "../core/formats.js";
import { computeChecksum, sha256 } from "../core/record.js";
import {
  CheckpointManager,
  type CreateCheckpointInput,
  FORMAT_VERSION,
  NAME_PATTERN,
  type PipelineCheckpoint,
} from "../index.js";
import { encodedOutputsOf } from "../manager/verify.js";
import type { StoreHarness } from "./suite.js";

const rich = () => ({
  when: new Date("2024-03-01T10:00:00.250Z"),
  big: 2n ** 70n,
  byKey: new Map<unknown, unknown>([
    ["a", 1],
    [2, { nested: new Set([1, "x"]) }],
  ]),
  bytes: Buffer.from("héllo"),
  raw: new Uint8Array([0, 255, 7]),
  missing: undefined,
  weird: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0],
});

/** A fixed, advanceable clock: every checkpoint of a test can share one millisecond. */
function fixedClock(start = "2024-05-01T12:00:00.000Z") {
  let now = new Date(start).getTime();
  const clock = () => new Date(now);
  clock.advance = (ms: number) => {
    now += ms;
  };
  clock.set = (iso: string) => {
    now = new Date(iso).getTime();
  };
  return clock;
}

/** The managerTests half of the conformance suite. */
export function managerTests(harness: () => StoreHarness): void {
  describe("CheckpointManager on this store", () => {
    let h: StoreHarness;
    let clock: ReturnType<typeof fixedClock>;
    let manager: CheckpointManager;
    let tmp: string;

    beforeEach(async () => {
      h = harness();
      clock = fixedClock();
      manager = new CheckpointManager({ store: h.store, clock });
      tmp = await mkdtemp(join(tmpdir(), "cairn-conf-"));
    });
    afterEach(async () => {
      await rm(tmp, { recursive: true, force: true });
    });

    /** Writes checkpoints for stages s1..sN, each adding its own output. */
    async function runStages(pipelineId: string, n: number, extra: Partial<CreateCheckpointInput> = {}) {
      const stages = Array.from({ length: n }, (_, i) => `s${i + 1}`);
      const outputs: Record<string, unknown> = {};
      const created: string[] = [];
      for (let i = 0; i < n; i++) {
        const stage = stages[i] as string;
        outputs[stage] = { stage, rows: Array.from({ length: 20 }, (_, r) => ({ r, v: `${stage}-${r}` })) };
        created.push(
          await manager.createCheckpoint({
            pipelineId,
            stageName: stage,
            stageIndex: i,
            stateData: { inputs: { source: "data.csv" }, step: i },
            completedStages: stages.slice(0, i + 1),
            pendingStages: stages.slice(i + 1),
            agentOutputs: { ...outputs },
            provenanceHashes: Object.fromEntries(stages.slice(0, i + 1).map((s) => [s, `prov-${s}`])),
            status: "completed",
            ...extra,
          }),
        );
        clock.advance(1000);
      }
      return created;
    }

    it("round-trips state and outputs exactly, with readable ids and a hash chain", async () => {
      const p = h.runId("roundtrip");
      const first = await manager.createCheckpoint({
        pipelineId: p,
        stageName: "extract",
        stageIndex: 0,
        stateData: { inputs: rich() },
        completedStages: ["extract"],
        pendingStages: ["load"],
        agentOutputs: { extract: rich() },
      });
      const second = await manager.createCheckpoint({
        pipelineId: p,
        stageName: "load",
        stageIndex: 1,
        completedStages: ["extract", "load"],
        agentOutputs: { extract: rich(), load: { written: 3 } },
        status: "completed",
      });
      expect(first).toMatch(NAME_PATTERN);
      expect(first.startsWith(`${p}_extract_20240501T120000000Z_`)).toBe(true);
      const a = await manager.loadCheckpoint(first);
      expect(a.stateData).toStrictEqual({ inputs: rich() });
      expect(a.agentOutputs).toStrictEqual({ extract: rich() });
      expect(a.metadata).toMatchObject({
        checkpointId: first,
        pipelineId: p,
        stageName: "extract",
        stageIndex: 0,
        sequence: 1,
        status: "in_progress",
        resumeCount: 0,
        formatVersion: FORMAT_VERSION,
      });
      expect(a.metadata.timestamp).toEqual(new Date("2024-05-01T12:00:00.000Z"));
      expect(a.metadata.checksum).toMatch(/^[0-9a-f]{64}$/);
      const b = await manager.loadCheckpoint(second);
      expect(b.metadata.parentCheckpointId).toBe(first);
      expect(b.metadata.parentChecksum).toBe(a.metadata.checksum);
      expect(b.metadata.sequence).toBe(2);
      expect(b.agentOutputs).toStrictEqual({ extract: rich(), load: { written: 3 } });
      // Identical outputs of two stages are two objects, not one shared reference.
      const twins = await manager.createCheckpoint({
        pipelineId: p,
        stageName: "twins",
        stageIndex: 2,
        agentOutputs: { x: { same: 1 }, y: { same: 1 } },
      });
      const t = await manager.loadCheckpoint(twins);
      expect(t.agentOutputs.x).toEqual(t.agentOutputs.y);
      expect(t.agentOutputs.x).not.toBe(t.agentOutputs.y);
    });

    it("keeps two checkpoints of one stage created in the same millisecond", async () => {
      const p = h.runId("samems");
      const input = { pipelineId: p, stageName: "extract", stageIndex: 0, agentOutputs: { extract: 1 } };
      const [x, y] = await Promise.all([manager.createCheckpoint(input), manager.createCheckpoint(input)]);
      const z = await manager.createCheckpoint(input);
      expect(new Set([x, y, z]).size).toBe(3);
      const history = await manager.getCheckpointHistory(p);
      expect(history.map((m) => m.checkpointId).sort()).toEqual([x, y, z].sort());
      expect(history.map((m) => m.sequence)).toEqual([3, 2, 1]);
      expect(history.every((m) => m.timestamp.getTime() === history[0]?.timestamp.getTime())).toBe(true);
    });

    it("refuses bad names before the store sees them", async () => {
      for (const bad of ["../x", "a/b", "", ".hidden", "x y", "a\u0000b", "p1;DROP TABLE x"]) {
        await expect(
          manager.createCheckpoint({ pipelineId: bad, stageName: "s", stageIndex: 0 }),
        ).rejects.toMatchObject({ code: "CAIRN_INVALID_NAME" });
        await expect(
          manager.createCheckpoint({ pipelineId: "ok", stageName: bad, stageIndex: 0 }),
        ).rejects.toMatchObject({
          code: "CAIRN_INVALID_NAME",
        });
        await expect(manager.loadCheckpoint(bad)).rejects.toMatchObject({ code: "CAIRN_INVALID_NAME" });
      }
      expect(await h.store.listPipelineIds()).toEqual([]);
    });

    it("refuses unserializable values with their path and writes nothing", async () => {
      const p = h.runId("unser");
      await expect(
        manager.createCheckpoint({
          pipelineId: p,
          stageName: "load",
          stageIndex: 0,
          agentOutputs: { load: { rows: [{ ok: 1 }, { parse: () => 1 }] } },
        }),
      ).rejects.toMatchObject({ code: "CAIRN_UNSERIALIZABLE", path: "agentOutputs.load.rows[1].parse" });
      class Row {}
      await expect(
        manager.createCheckpoint({
          pipelineId: p,
          stageName: "load",
          stageIndex: 0,
          stateData: { row: new Row() },
        }),
      ).rejects.toMatchObject({ code: "CAIRN_UNSERIALIZABLE", path: "stateData.row" });
      expect(await h.store.listCheckpoints(p)).toEqual([]);
    });

    it("keeps one chain when two managers write to one run in turn, and reads back nothing it wrote", async () => {
      const p = h.runId("two-writers");
      const other = new CheckpointManager({ store: h.store, clock });
      const reads = { count: 0 };
      const latest = h.store.getLatestCheckpoint.bind(h.store);
      h.store.getLatestCheckpoint = async (id) => {
        reads.count++;
        return latest(id);
      };
      try {
        const write = (m: CheckpointManager, i: number) =>
          m.createCheckpoint({
            pipelineId: p,
            stageName: `s${i}`,
            stageIndex: i,
            agentOutputs: { [`s${i}`]: i },
          });
        await write(manager, 1);
        await write(manager, 2);
        await write(manager, 3);
        const ownWrites = reads.count;
        // Only the first write of a run reads the newest checkpoint: the store checks the tip.
        expect(ownWrites).toBe(1);
        await write(other, 4);
        await write(manager, 5); // its own tip moved: refused by the store, read again, re-chained
        await write(other, 6);
        const history = (await manager.getCheckpointHistory(p)).reverse();
        expect(history.map((m) => m.sequence)).toEqual([1, 2, 3, 4, 5, 6]);
        for (let i = 1; i < history.length; i++) {
          expect(history[i]?.parentCheckpointId).toBe(history[i - 1]?.checkpointId);
        }
        const validation = await manager.validateCheckpoint(history[5]?.checkpointId as string);
        expect(validation).toMatchObject({ valid: true });
      } finally {
        // `other` is not closed: it would close the harness's store, which the harness closes.
        h.store.getLatestCheckpoint = latest;
      }
    });

    it("writes each output once per run and shares it with later checkpoints", async () => {
      const p = h.runId("once");
      await runStages(p, 4);
      expect(await h.store.listOutputHashes(p)).toHaveLength(4);
      const latest = await manager.loadLatestCheckpoint(p);
      expect(Object.keys(latest?.agentOutputs ?? {})).toEqual(["s1", "s2", "s3", "s4"]);
    });

    it("decodes each loaded output on first read, once, and keeps its verified text for a resume", async () => {
      const p = h.runId("lazy");
      await runStages(p, 3);
      const latest = (await manager.loadLatestCheckpoint(p)) as PipelineCheckpoint;
      const outputs = latest.agentOutputs;
      expect(Object.getOwnPropertyDescriptor(outputs, "s1")?.get).toBeTypeOf("function");
      const first = outputs.s1;
      expect(first).toEqual({ stage: "s1", rows: expect.any(Array) });
      // Read once, the property is a plain value: the same object every time.
      expect(outputs.s1).toBe(first);
      expect(Object.getOwnPropertyDescriptor(outputs, "s1")).toMatchObject({ value: first, writable: true });
      outputs.s2 = "replaced";
      expect(outputs.s2).toBe("replaced");
      expect(JSON.parse(JSON.stringify(outputs)).s3.stage).toBe("s3");
      expect({ ...outputs }).toEqual({ s1: first, s2: "replaced", s3: outputs.s3 });
      const encoded = encodedOutputsOf(outputs);
      expect([...(encoded?.keys() ?? [])]).toEqual(["s1", "s2", "s3"]);
      const hashes = await h.store.listOutputHashes(p);
      for (const output of encoded?.values() ?? []) {
        expect(hashes).toContain(output.hash);
        expect(output.hash).toBe(sha256(output.text));
      }
      expect(encodedOutputsOf({})).toBeUndefined();
    });

    it("detects a tampered checkpoint and resumes from the previous valid one", async () => {
      const p = h.runId("tamper");
      const [c1, c2, c3] = await runStages(p, 3);
      await h.tamperCheckpoint(c3 as string, (record) => {
        const body = JSON.parse(record.body);
        body.state_data.step = 999;
        record.body = JSON.stringify(body);
      });
      await expect(manager.loadCheckpoint(c3 as string)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
      const validation = await manager.validateCheckpoint(c3 as string);
      expect(validation.valid).toBe(false);
      expect(validation.problems.map((x) => x.kind)).toContain("checksum_mismatch");
      expect((await manager.validateCheckpoint(c1 as string)).valid).toBe(true);
      expect((await manager.loadLatestCheckpoint(p))?.metadata.checkpointId).toBe(c2);
      const ctx = await manager.resumePipeline(p);
      expect(ctx).toMatchObject({
        checkpointId: c2,
        resumeFromStage: "s3",
        resumeFromIndex: 2,
        resumeCount: 1,
      });
    });

    it("detects a changed output and falls back to a checkpoint that does not hold it", async (ctx) => {
      if (!h.corruptOutput) return ctx.skip("the harness has no corruptOutput hook");
      const p = h.runId("badoutput");
      const [c1, c2] = await runStages(p, 2);
      const record = await h.store.getCheckpoint(c2 as string);
      if (!record) throw new Error(`checkpoint ${c2} is not in the store`);
      const hash = parseBody(record.metadata, record.body).output_refs.s2 as string;
      await h.corruptOutput(p, hash, '{"stage":"s2","rows":[]}');
      await expect(manager.loadCheckpoint(c2 as string)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
      const problems = (await manager.validateCheckpoint(c2 as string)).problems;
      expect(problems.map((x) => x.kind)).toEqual(["output_hash_mismatch"]);
      expect((await manager.loadLatestCheckpoint(p))?.metadata.checkpointId).toBe(c1);
    });

    it("reports a broken hash chain when a parent is re-sealed with new content", async () => {
      const p = h.runId("chain");
      const [c1, c2] = await runStages(p, 2);
      await h.tamperCheckpoint(c1 as string, (record) => {
        const body = JSON.parse(record.body);
        body.state_data.step = 42;
        record.body = JSON.stringify(body);
        record.metadata.checksum = computeChecksum(record.metadata, record.body);
      });
      expect((await manager.validateCheckpoint(c1 as string)).valid).toBe(true);
      const child = await manager.validateCheckpoint(c2 as string);
      expect(child.valid).toBe(false);
      expect(child.problems.map((x) => x.kind)).toEqual(["broken_chain"]);
      // A parent removed by retention is not a broken link.
      await h.store.deleteCheckpoints(p, [c1 as string]);
      expect((await manager.validateCheckpoint(c2 as string)).valid).toBe(true);
    });

    it("skips non-resumable checkpoints and records resumes in the store", async () => {
      const p = h.runId("resume");
      const [c1, c2] = await runStages(p, 2);
      await manager.updateCheckpointStatus(c2 as string, "expired");
      const ctx = await manager.resumePipeline(p);
      expect(ctx).toMatchObject({
        checkpointId: c1,
        pipelineId: p,
        resumeFromStage: "s2",
        resumeFromIndex: 1,
        completedStages: ["s1"],
        pendingStages: ["s2"],
        stateData: { inputs: { source: "data.csv" }, step: 0 },
        provenanceHashes: { s1: "prov-s1" },
        resumeCount: 1,
      });
      expect(Object.keys(ctx?.agentOutputs ?? {})).toEqual(["s1"]);
      const again = await manager.resumePipeline(p);
      expect(again?.resumeCount).toBe(2);
      const fresh = new CheckpointManager({ store: h.store });
      const stored = await fresh.loadCheckpoint(c1 as string);
      expect(stored.metadata).toMatchObject({ status: "resumed", resumeCount: 2 });
      expect(await manager.resumePipeline(h.runId("nothing"))).toBeUndefined();
    });

    it("records a failure with its message and resumes at the failed stage", async () => {
      const p = h.runId("failed");
      await runStages(p, 1);
      const failed = await manager.createCheckpoint({
        pipelineId: p,
        stageName: "s2",
        stageIndex: 1,
        completedStages: ["s1"],
        pendingStages: ["s2", "s3"],
        status: "failed",
        errorMessage: "connection reset",
      });
      const loaded = await manager.loadCheckpoint(failed);
      expect(loaded.metadata).toMatchObject({ status: "failed", errorMessage: "connection reset" });
      const ctx = await manager.resumePipeline(p);
      expect(ctx).toMatchObject({ checkpointId: failed, resumeFromStage: "s2", resumeFromIndex: 1 });
      await manager.updateCheckpointStatus(failed, "failed", "second failure");
      expect((await manager.loadCheckpoint(failed)).metadata.errorMessage).toBe("second failure");
      await expect(manager.updateCheckpointStatus(failed, "bogus" as "failed")).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
    });

    it("cleans up by the checkpoints' own timestamps and removes unreferenced outputs", async () => {
      const old = h.runId("old");
      const mixed = h.runId("mixed");
      clock.set("2024-01-01T00:00:00.000Z");
      await runStages(old, 2);
      const mixedIds = await runStages(mixed, 2);
      clock.set("2024-03-01T00:00:00.000Z");
      const kept = await manager.createCheckpoint({
        pipelineId: mixed,
        stageName: "s3",
        stageIndex: 2,
        agentOutputs: { s3: "only the newest output" },
      });
      const plan = await manager.cleanupOldCheckpoints({ retentionDays: 30, dryRun: true });
      expect(plan.deletedCheckpoints).toHaveLength(4);
      expect(await h.store.listCheckpoints(old)).toHaveLength(2);
      expect(await manager.autoCleanup({ retentionDays: 30 })).toBe(4);
      expect(await h.store.listCheckpoints(old)).toEqual([]);
      expect(await h.store.listPipelineIds()).not.toContain(old);
      expect((await manager.getCheckpointHistory(mixed)).map((m) => m.checkpointId)).toEqual([kept]);
      expect(await h.store.listOutputHashes(mixed)).toHaveLength(1);
      expect((await manager.loadCheckpoint(kept)).agentOutputs).toEqual({ s3: "only the newest output" });
      expect(mixedIds).toHaveLength(2);
      await expect(manager.autoCleanup({ retentionDays: -1 })).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
    });

    it("deletes completed runs only, unless forced", async () => {
      const done = h.runId("done");
      const open = h.runId("open");
      await runStages(done, 2);
      await manager.createCheckpoint({
        pipelineId: done,
        stageName: "pipeline_complete",
        stageIndex: 2,
        status: "completed",
      });
      await runStages(open, 1);
      expect(await manager.cleanupCompletedPipelines([done, open])).toBe(3);
      expect(await h.store.listCheckpoints(done)).toEqual([]);
      expect(await h.store.listCheckpoints(open)).toHaveLength(1);
      expect(await manager.cleanupCompletedPipelines([open], { force: true })).toBe(1);
    });

    it("reports each run of a cleanup as deleted, refused or missing", async () => {
      const done = h.runId("done2");
      const open = h.runId("open2");
      const absent = h.runId("absent");
      await runStages(done, 1);
      await manager.createCheckpoint({
        pipelineId: done,
        stageName: "pipeline_complete",
        stageIndex: 1,
        status: "completed",
      });
      await runStages(open, 1);
      const report = await manager.cleanupPipelines([done, open, absent, done]);
      expect(report).toEqual({
        dryRun: false,
        deleted: [{ pipelineId: done, checkpoints: 2, finished: true }],
        refused: [{ pipelineId: open, reason: expect.stringContaining("has not finished") }],
        missing: [absent],
      });
      expect(await h.store.listCheckpoints(open)).toHaveLength(1);
      // A dry run reports the same and deletes nothing.
      expect((await manager.cleanupPipelines([open], { force: true, dryRun: true })).deleted).toEqual([
        { pipelineId: open, checkpoints: 1, finished: false },
      ]);
      expect(await h.store.listCheckpoints(open)).toHaveLength(1);
      expect(await manager.cleanupPipelines([open, absent], { force: true })).toEqual({
        dryRun: false,
        deleted: [{ pipelineId: open, checkpoints: 1, finished: false }],
        refused: [],
        missing: [absent],
      });
      expect(await h.store.listCheckpoints(open)).toEqual([]);
    });

    it("exports a self-contained file and imports it, refusing tampering and silent overwrites", async () => {
      const p = h.runId("export");
      const [, c2] = await runStages(p, 2);
      const file = join(tmp, "backup.json");
      await manager.exportCheckpoint(c2 as string, file);
      const exported = JSON.parse(await readFile(file, "utf8"));
      expect(exported.export_version).toBe("1.2");
      expect(exported.metadata.checkpoint_id).toBe(c2);
      expect(Object.keys(exported.agent_outputs)).toEqual(["s1", "s2"]);
      expect(exported).toHaveProperty("state_data");
      expect(exported).toHaveProperty("provenance_hashes");
      await expect(manager.importCheckpoint(file)).rejects.toMatchObject({ code: "CAIRN_CONFLICT" });
      expect(await manager.importCheckpoint(file, { overwrite: true })).toBe(c2);
      const target = new CheckpointManager({ strategy: "memory" });
      expect(await target.importCheckpoint(file)).toBe(c2);
      const copy = await target.loadCheckpoint(c2 as string);
      expect(copy).toEqual(await manager.loadCheckpoint(c2 as string));
      exported.agent_outputs.s1.rows[0].v = "forged";
      const forged = join(tmp, "forged.json");
      await writeFile(forged, JSON.stringify(exported));
      const other = new CheckpointManager({ strategy: "memory" });
      await expect(other.importCheckpoint(forged)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
      expect(await other.listPipelines()).toEqual([]);
    });

    it("computes statistics from the store, including the resume success rate", async () => {
      const a = h.runId("statsa");
      const b = h.runId("statsb");
      await runStages(a, 2);
      await runStages(b, 1);
      await manager.resumePipeline(a);
      await manager.resumePipeline(b);
      await manager.createCheckpoint({
        pipelineId: a,
        stageName: "pipeline_complete",
        stageIndex: 2,
        status: "completed",
      });
      const stats = await new CheckpointManager({ store: h.store }).getStatistics();
      expect(stats).toMatchObject({
        totalCheckpoints: 4,
        totalPipelines: 2,
        activePipelines: 1,
        completedPipelines: 1,
        totalResumeCount: 2,
        resumedPipelines: 2,
        resumeSuccessRate: 0.5,
        corruptCheckpoints: 0,
      });
      expect(stats.checkpointsByStatus).toMatchObject({ completed: 2, resumed: 2, failed: 0 });
      expect(stats.averageDataSize).toBeGreaterThan(0);
      expect(stats.oldestCheckpoint?.toISOString()).toBe("2024-05-01T12:00:00.000Z");
    });

    it("lists runs and draws the checkpoint chain with status symbols", async () => {
      const p = h.runId("chaintext");
      const [c1] = await runStages(p, 2);
      await manager.updateCheckpointStatus(c1 as string, "failed", "disk full");
      const runs = await manager.listPipelines();
      expect(runs.find((r) => r.pipelineId === p)).toMatchObject({
        checkpointCount: 2,
        completedStages: 2,
        totalStages: 2,
        latestStage: "s2",
        finished: false,
      });
      const text = await manager.visualizeCheckpointChain(p);
      expect(text).toContain("✗ #1 s1");
      expect(text).toContain("✓ #2 s2");
      expect(text).toContain("error: disk full");
    });

    it("reports unparseable entries as unreadable and resumes around them", async (ctx) => {
      if (!h.addGarbage)
        return ctx.skip("the harness has no addGarbage hook (a store that cannot hold garbage)");
      const p = h.runId("garbage");
      const [, c2] = await runStages(p, 2);
      await h.addGarbage(p);
      const listing = await h.store.listCheckpoints(p);
      expect(listing.filter((e) => !e.ok)).toHaveLength(1);
      expect((await manager.getStatistics()).corruptCheckpoints).toBe(1);
      expect((await manager.loadLatestCheckpoint(p))?.metadata.checkpointId).toBe(c2);
      expect(await manager.visualizeCheckpointChain(p)).toContain("⚠ unreadable");
      expect((await manager.getStatistics({ verify: true })).check).toEqual({
        valid: 2,
        invalid: 1,
        quarantined: 0,
      });
      // A new checkpoint still chains to the newest readable one.
      const c3 = await manager.createCheckpoint({ pipelineId: p, stageName: "s3", stageIndex: 2 });
      expect((await manager.loadCheckpoint(c3)).metadata.parentCheckpointId).toBe(c2);
    });
  });
}
