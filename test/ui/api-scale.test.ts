/**
 * The console's data functions where the store is large or closed to them: 2,000 runs (the runs
 * page reads only the page, plus a bounded scan for a status filter), 1 MB outputs (sizes and
 * URLs, never the values), and encrypted runs read without their key (shown encrypted, no error).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import {
  checkpointDetail,
  checkpointOutput,
  listRunsPage,
  MAX_SCAN,
  runDetail,
  statistics,
} from "../../src/ui/api/index.js";
import { freshStores } from "../support/fresh-stores.js";
import { contextOf, etl } from "./api-fixtures.js";

const fresh = freshStores("ui-scale");

describe("runs page on 2,000 runs (sqlite)", () => {
  let manager: CheckpointManager;
  let url: string;
  beforeAll(async () => {
    url = fresh.sqlite();
    manager = new CheckpointManager({ store: url });
    for (let i = 0; i < 2000; i++) {
      const id = `bulk-${String(i).padStart(5, "0")}`;
      await manager.createCheckpoint({
        pipelineId: id,
        pipelineName: i % 2 === 0 ? "even" : "odd",
        stageName: "extract",
        stageIndex: 0,
        stateData: { i },
        completedStages: ["extract"],
        pendingStages: ["load"],
        // Every 400th run failed; the others stopped after extract (paused).
        status: i % 400 === 7 ? "failed" : "completed",
      });
    }
  }, 120_000);
  afterAll(async () => {
    await manager.close();
  });

  /** Runs whose checkpoints were listed while `fn` ran. */
  async function listedDuring(fn: () => Promise<unknown>): Promise<number> {
    const store = await manager.getStore();
    const spy = vi.spyOn(store, "listCheckpoints");
    try {
      await fn();
      return new Set(spy.mock.calls.map((c) => c[0])).size;
    } finally {
      spy.mockRestore();
    }
  }

  it("summarizes only the page, by id and by name", async () => {
    const ctx = contextOf(manager, url);
    let page: Awaited<ReturnType<typeof listRunsPage>> | undefined;
    expect(await listedDuring(async () => (page = await listRunsPage(ctx, { limit: 25 })))).toBe(25);
    expect(page?.scanned).toBe(25);
    expect(page?.runs[0]?.pipelineId).toBe("bulk-00000");
    const next = await listRunsPage(ctx, { limit: 25, cursor: page?.nextCursor as string });
    expect(next.runs[0]?.pipelineId).toBe("bulk-00025");
    expect(await listedDuring(() => listRunsPage(ctx, { name: "odd", limit: 30 }))).toBe(30);
    const last = await listRunsPage(ctx, { sort: "-id", limit: 3 });
    expect(last.runs.map((r) => r.pipelineId)).toEqual(["bulk-01999", "bulk-01998", "bulk-01997"]);
  });

  it("scans at most 500 runs for a status filter and continues where it stopped", async () => {
    const ctx = contextOf(manager, url);
    const found: string[] = [];
    let cursor: string | undefined;
    let requests = 0;
    do {
      const listed = await listedDuring(async () => {
        const page = await listRunsPage(ctx, { status: "failed", limit: 50, ...(cursor ? { cursor } : {}) });
        expect(page.scanned).toBeLessThanOrEqual(MAX_SCAN);
        found.push(...page.runs.map((r) => r.pipelineId));
        cursor = page.nextCursor;
      });
      expect(listed).toBeLessThanOrEqual(MAX_SCAN);
      requests++;
    } while (cursor);
    expect(found).toEqual(["bulk-00007", "bulk-00407", "bulk-00807", "bulk-01207", "bulk-01607"]);
    expect(requests).toBe(4);
    const odd = await listRunsPage(ctx, { name: "odd", status: "failed", limit: 50 });
    expect(odd.runs.map((r) => r.pipelineId)).toEqual(["bulk-01607", "bulk-01207"]);
    expect(odd.scanned).toBe(MAX_SCAN);
    const rest = await listRunsPage(ctx, {
      name: "odd",
      status: "failed",
      limit: 50,
      cursor: odd.nextCursor,
    });
    expect(rest.runs.map((r) => r.pipelineId)).toEqual(["bulk-00807", "bulk-00407", "bulk-00007"]);
    expect(rest.nextCursor).toBeUndefined();
  });
});

describe("a checkpoint with 1 MB outputs (file)", () => {
  it("returns sizes and URLs, not the values; the state inline only up to 64 KB", async () => {
    const url = fresh.file();
    const manager = new CheckpointManager({ store: url });
    try {
      const big = "x".repeat(1024 * 1024);
      const pipeline = new Pipeline({
        name: "big",
        checkpointEnabled: true,
        checkpointStore: manager,
        steps: [
          { name: "fetch", agent: () => ({ blob: big }) },
          { name: "more", agent: () => ({ blob: `${big}y` }) },
        ],
      });
      const { pipelineId } = await pipeline.execute({ inputs: { pad: "p".repeat(70 * 1024) } });
      const ctx = contextOf(manager, url);
      const detail = await runDetail(ctx, pipelineId);
      const more = detail.chain.find((c) => c.stage === "more")?.checkpointId as string;
      const page = await checkpointDetail(ctx, more);
      expect(JSON.stringify(page).length).toBeLessThan(20_000);
      expect(page.outputs.map((o) => [o.name, (o.size ?? 0) > 1024 * 1024])).toEqual([
        ["fetch", true],
        ["more", true],
      ]);
      expect(page.state).toMatchObject({ lazy: true, url: `/api/checkpoints/${more}/state` });
      expect(JSON.parse(await checkpointOutput(ctx, more, "more")).blob).toHaveLength(1024 * 1024 + 1);
    } finally {
      await manager.close();
    }
  });
});

describe("encrypted runs read without the key (sqlite)", () => {
  it("lists them, shows them encrypted, and never throws for a missing key", async () => {
    const url = fresh.sqlite();
    const encryption = { keys: { k1: randomBytes(32).toString("base64") }, activeKeyId: "k1" };
    const writer = new CheckpointManager({ store: url, encryption });
    let runId: string;
    try {
      runId = (await etl(writer, { load: false }).execute({ resume: false })).pipelineId;
    } finally {
      await writer.close();
    }
    const reader = new CheckpointManager({ store: url });
    try {
      const ctx = contextOf(reader, url);
      const page = await listRunsPage(ctx, {});
      expect(page.runs).toHaveLength(1);
      expect(page.runs[0]).toMatchObject({ pipelineId: runId, status: "completed", encrypted: true });
      const detail = await runDetail(ctx, runId);
      expect(detail.chain.every((c) => c.check === "encrypted")).toBe(true);
      expect(detail.problems.map((p) => p.code)).toContain("key_missing");
      const id = detail.chain[0]?.checkpointId as string;
      const checkpoint = await checkpointDetail(ctx, id);
      expect(checkpoint).toMatchObject({ encrypted: true, state: null, validation: { status: "encrypted" } });
      expect(checkpoint.completedStages).toEqual(["extract"]);
      expect(JSON.stringify(checkpoint)).not.toContain("orders.csv");
      const stats = await statistics(ctx);
      expect(stats.totals.runs).toBe(1);
    } finally {
      await reader.close();
    }
  });
});
