/**
 * cairn's spans and metrics, checked in the OpenTelemetry SDK's in-memory exporters: a run that
 * fails mid-way and is resumed, a lost lease, a corrupt record found on resume, and a run with
 * the API but no SDK registered.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SpanStatusCode } from "@opentelemetry/api";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, LeaseLostError, Pipeline, StageFailedError } from "../../src/index.js";
import { idOf, type OtelSdk, parentOf, registerSdk } from "./otel-sdk.js";

let sdk: OtelSdk | undefined;
afterEach(async () => {
  await sdk?.close();
  sdk = undefined;
});

const STAGES = ["extract", "clean", "enrich", "load"];

/** A 4-stage pipeline whose `enrich` stage fails on its first call only. */
function failingOnce(manager: CheckpointManager, name = "otel-demo") {
  let calls = 0;
  return new Pipeline({
    name,
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: STAGES.map((stage) => ({
      name: stage,
      agent: () => {
        if (stage === "enrich" && calls++ === 0) throw new Error("enrich: upstream timed out");
        return { stage, rows: Array.from({ length: 20 }, (_, i) => i) };
      },
    })),
  });
}

describe("telemetry with the SDK registered", () => {
  beforeEach(() => {
    sdk = registerSdk();
  });

  it("traces a failed run and its resume, and its metrics count what happened", async () => {
    const s = sdk as OtelSdk;
    const manager = new CheckpointManager({ strategy: "memory" });
    const pipeline = failingOnce(manager);
    const failed = await pipeline.execute().catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(StageFailedError);
    const runId = (failed as StageFailedError).pipelineId;
    const resumed = await pipeline.execute();
    expect(resumed.status).toBe("completed");
    expect(resumed.pipelineId).toBe(runId);

    const runs = s.spans("cairn.run");
    expect(runs).toHaveLength(2);
    const [first, second] = runs as [(typeof runs)[0], (typeof runs)[0]];
    for (const run of runs) {
      expect(run.attributes["cairn.pipeline.name"]).toBe("otel-demo");
      expect(run.attributes["cairn.run.id"]).toBe(runId);
      expect(run.attributes["cairn.store"]).toBe("memory");
    }
    expect(first.attributes["cairn.resumed"]).toBe(false);
    expect(first.attributes["cairn.status"]).toBe("failed");
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(first.events.map((e) => e.name)).toContain("exception");
    expect(second.attributes["cairn.resumed"]).toBe(true);
    expect(second.attributes["cairn.status"]).toBe("completed");
    expect(second.status.code).toBe(SpanStatusCode.OK);

    // Stages: children of their run; the resume skips the two that completed.
    const stagesOf = (run: (typeof runs)[0]) =>
      s.spans("cairn.stage").filter((span) => parentOf(span) === idOf(run));
    const summary = (run: (typeof runs)[0]) =>
      stagesOf(run).map((span) => [
        span.attributes["cairn.stage.name"],
        span.attributes["cairn.skipped"],
        span.attributes["cairn.status"],
      ]);
    expect(summary(first)).toEqual([
      ["extract", false, "completed"],
      ["clean", false, "completed"],
      ["enrich", false, "failed"],
    ]);
    expect(stagesOf(first)[2]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(summary(second)).toEqual([
      ["extract", true, "skipped"],
      ["clean", true, "skipped"],
      ["enrich", false, "completed"],
      ["load", false, "completed"],
    ]);
    expect(s.spans("cairn.stage")).toHaveLength(7);

    // Writes: one span per checkpoint stored, with its size, under its stage (or run) span.
    const stored = await manager.listRun(runId);
    const writes = s.spans("cairn.checkpoint.write");
    expect(writes).toHaveLength(stored.length);
    expect(stored.length).toBe(6); // extract, clean, enrich failed; enrich, load, complete
    const spanIds = new Set([...runs, ...s.spans("cairn.stage")].map(idOf));
    for (const write of writes) {
      expect(write.attributes["cairn.checkpoint.bytes"]).toBeGreaterThan(0);
      expect(write.attributes["cairn.run.id"]).toBe(runId);
      expect(spanIds.has(parentOf(write) as string)).toBe(true);
      expect(write.spanContext().traceId).toBe(
        runs.find((r) => r.spanContext().traceId === write.spanContext().traceId)?.spanContext().traceId,
      );
    }
    const extractWrite = writes.find((w) => w.attributes["cairn.stage.name"] === "extract");
    expect(parentOf(extractWrite as (typeof writes)[0])).toBe(idOf(stagesOf(first)[0] as (typeof runs)[0]));
    const bytes = writes.reduce((sum, w) => sum + (w.attributes["cairn.checkpoint.bytes"] as number), 0);

    // The resume read its resume point under the resumed run's span.
    const loads = s.spans("cairn.checkpoint.load");
    expect(loads).toHaveLength(1);
    expect(parentOf(loads[0] as (typeof loads)[0])).toBe(idOf(second));
    expect(loads[0]?.attributes["cairn.corrupt_records"]).toBe(0);

    expect(await s.total("cairn.checkpoints.written")).toBe(stored.length);
    expect(await s.total("cairn.checkpoint.bytes.written")).toBe(bytes);
    expect(bytes).toBeGreaterThan(0);
    expect(await s.count("cairn.checkpoint.write.duration")).toBe(stored.length);
    expect(await s.count("cairn.checkpoint.load.duration")).toBe(1);
    expect(await s.total("cairn.resumes")).toBe(1);
    expect(await s.total("cairn.lease.losses")).toBe(0);
    expect(await s.total("cairn.corrupt_records.found")).toBe(0);
    const points = await s.metric("cairn.checkpoints.written");
    expect(points.map((p) => p.attributes)).toEqual([
      { "cairn.pipeline.name": "otel-demo", "cairn.store": "memory" },
    ]);
  });

  it("counts a lost lease once, and the run span says why it failed", async () => {
    const s = sdk as OtelSdk;
    const manager = new CheckpointManager({ strategy: "memory" });
    const runId = "otel-lease-run";
    const pipeline = new Pipeline({
      name: "otel-lease",
      checkpointEnabled: true,
      checkpointStore: manager,
      steps: [
        {
          name: "stolen",
          // Another runner takes the run over while this stage runs: its checkpoint is fenced.
          agent: async () => {
            const store = await manager.getStore();
            const lease = await store.getLease(runId);
            if (!lease) throw new Error("the run holds no lease");
            await store.releaseLease(lease);
            const taken = await store.acquireLease(runId, "another-runner", 60_000);
            expect(taken.acquired).toBe(true);
            return { done: true };
          },
        },
      ],
    });
    await expect(pipeline.execute({ runId })).rejects.toBeInstanceOf(LeaseLostError);
    expect(await s.total("cairn.lease.losses")).toBe(1);
    const [run] = s.spans("cairn.run");
    expect(run?.status.code).toBe(SpanStatusCode.ERROR);
    expect(run?.attributes["cairn.error.code"]).toBe("CAIRN_LEASE_LOST");
    const [write] = s.spans("cairn.checkpoint.write");
    expect(write?.status.code).toBe(SpanStatusCode.ERROR);
    expect(await s.total("cairn.checkpoints.written")).toBe(0);
  });

  describe("on sqlite", () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "cairn-otel-"));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("counts the corrupt record a resume passes over, and a corrupt checkpoint a load refuses", async () => {
      const s = sdk as OtelSdk;
      const dbPath = join(dir, "c.db");
      const manager = new CheckpointManager({ strategy: "sqlite", config: { dbPath } });
      try {
        const pipeline = failingOnce(manager, "otel-corrupt");
        const failed = (await pipeline.execute().catch((e: unknown) => e)) as StageFailedError;
        expect(failed).toBeInstanceOf(StageFailedError);
        const last = (await manager.listRun(failed.pipelineId)).at(-1);
        if (!last?.ok) throw new Error("the failed run has no readable newest checkpoint");
        const newest = last.metadata.checkpoint_id;
        const db = new Database(dbPath);
        try {
          db.prepare("UPDATE cairn_checkpoints SET checksum = ? WHERE checkpoint_id = ?").run(
            "0".repeat(64),
            newest,
          );
        } finally {
          db.close();
        }
        const resumed = await pipeline.execute();
        expect(resumed.status).toBe("completed");
        expect(await s.total("cairn.corrupt_records.found")).toBe(1);
        const load = s.spans("cairn.checkpoint.load")[0];
        expect(load?.attributes["cairn.corrupt_records"]).toBe(1);
        await expect(manager.loadCheckpoint(newest)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
        expect(await s.total("cairn.corrupt_records.found")).toBe(2);
        const points = await s.metric("cairn.corrupt_records.found");
        // The resume knows the pipeline; a load by checkpoint id that fails does not.
        expect(points.map((p) => p.attributes)).toEqual([
          { "cairn.pipeline.name": "otel-corrupt", "cairn.store": "sqlite" },
          { "cairn.store": "sqlite" },
        ]);
      } finally {
        await manager.close();
      }
    });
  });
});

describe("telemetry without an SDK", () => {
  it("runs, fails and resumes as usual with the API installed and nothing registered", async () => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const pipeline = failingOnce(manager);
    await expect(pipeline.execute()).rejects.toBeInstanceOf(StageFailedError);
    const resumed = await pipeline.execute();
    expect(resumed.status).toBe("completed");
    expect(resumed.skippedStages).toEqual(["extract", "clean"]);
    expect(await manager.listRun(resumed.pipelineId)).toHaveLength(6);
  });
});
