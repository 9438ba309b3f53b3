/**
 * The console's data functions, driven as the console drives them, on stores filled by real
 * pipeline runs: memory, file, sqlite and postgres.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import {
  type ApiContext,
  checkpointDetail,
  checkpointExport,
  checkpointOutput,
  checkpointState,
  compareCheckpoints,
  encodeCursor,
  listRunsPage,
  runDetail,
  runGraphSvg,
  statistics,
} from "../../src/ui/api/index.js";
import { freshStores } from "../support/fresh-stores.js";
import { contextOf, type FilledRuns, fillStore } from "./api-fixtures.js";

const fresh = freshStores("ui-api");
const STORES: [string, () => string][] = [
  ["memory", () => fresh.memory()],
  ["file", () => fresh.file()],
  ["sqlite", () => fresh.sqlite()],
  ...(fresh.postgres ? ([["postgres", fresh.postgres]] as [string, () => string][]) : []),
];

describe.each(STORES)("console data on %s", (_name, makeUrl) => {
  let manager: CheckpointManager;
  let ctx: ApiContext;
  let runs: FilledRuns;
  let url: string;

  beforeAll(async () => {
    url = makeUrl();
    manager = new CheckpointManager({ store: url });
    ctx = contextOf(manager, url);
    runs = await fillStore(manager, url);
  });
  afterAll(async () => {
    await manager.close();
  });

  it("lists every run with its status, by id and through the runs-by-name index", async () => {
    const page = await listRunsPage(ctx, {});
    expect(page.mode).toBe("ids");
    const status = Object.fromEntries(page.runs.map((r) => [r.pipelineId, r.status]));
    expect(status).toEqual({
      [runs.completed]: "completed",
      [runs.failed]: "failed",
      [runs.resumed]: "completed",
      [runs.corrupt]: "completed",
    });
    const failed = page.runs.find((r) => r.pipelineId === runs.failed);
    expect(failed).toMatchObject({ pipelineName: "etl", stagesDone: 2, stagesTotal: 3, encrypted: false });
    expect(page.runs.find((r) => r.pipelineId === runs.resumed)?.resumeCount).toBeGreaterThan(0);
    expect(failed?.sizeBytes).toBeGreaterThan(0);

    const byName = await listRunsPage(ctx, { name: "etl", status: "failed" });
    expect(byName.mode).toBe("index");
    expect(byName.runs.map((r) => r.pipelineId)).toEqual([runs.failed]);
    const done = await listRunsPage(ctx, { status: "completed" });
    expect(done.runs.map((r) => r.pipelineId).sort()).toEqual(
      [runs.completed, runs.resumed, runs.corrupt].sort(),
    );
    expect((await listRunsPage(ctx, { status: "paused" })).runs).toEqual([]);
    expect((await listRunsPage(ctx, { status: "failed" })).runs.map((r) => r.pipelineId)).toEqual([
      runs.failed,
    ]);
    const none = await listRunsPage(ctx, { name: "other" });
    expect(none.runs).toEqual([]);
  });

  it("pages with opaque cursors in both modes and refuses bad ones", async () => {
    for (const q of [{ sort: "id" }, { sort: "-id" }, { name: "etl" }]) {
      const all = (await listRunsPage(ctx, q)).runs.map((r) => r.pipelineId);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await listRunsPage(ctx, { ...q, limit: 1, ...(cursor ? { cursor } : {}) });
        expect(page.runs.length).toBeLessThanOrEqual(1);
        seen.push(...page.runs.map((r) => r.pipelineId));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).toEqual(all);
      expect(all).toHaveLength(4);
    }
    const ids = (await listRunsPage(ctx, { sort: "-id" })).runs.map((r) => r.pipelineId);
    expect(ids).toEqual([...ids].sort().reverse());
    await expect(listRunsPage(ctx, { cursor: "not a cursor!" })).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    await expect(
      listRunsPage(ctx, { cursor: Buffer.from("[1]").toString("base64url") }),
    ).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    const first = await listRunsPage(ctx, { limit: 1 });
    await expect(listRunsPage(ctx, { name: "etl", cursor: first.nextCursor })).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    // A forged cursor of the right shape: the store's own cursor check answers, as a bad argument.
    const forged = encodeCursor({ m: "index", n: "etl", s: null, c: "garbage" });
    await expect(listRunsPage(ctx, { name: "etl", cursor: forged })).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    const forgedId = encodeCursor({ m: "ids", o: "id", s: null, a: "../../etc" });
    await expect(listRunsPage(ctx, { cursor: forgedId })).rejects.toMatchObject({
      code: "CAIRN_INVALID_NAME",
    });
    await expect(listRunsPage(ctx, { name: "../etc" })).rejects.toMatchObject({ code: "CAIRN_INVALID_NAME" });
    await expect(listRunsPage(ctx, { status: "bogus" })).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    await expect(listRunsPage(ctx, { limit: "0" })).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
  });

  it("shows a failed run: the failed stage, the recovery point and plan, the resume command", async () => {
    const detail = await runDetail(ctx, runs.failed);
    expect(detail.summary.status).toBe("failed");
    expect(detail.stages.map((s) => [s.name, s.status])).toEqual([
      ["extract", "completed"],
      ["transform", "completed"],
      ["load", "failed"],
    ]);
    expect(detail.stages[2]?.error).toContain("warehouse unreachable");
    expect(detail.recovery.plan.map((p) => [p.stage, p.action])).toEqual([
      ["extract", "skip"],
      ["transform", "skip"],
      ["load", "run"],
    ]);
    expect(detail.recovery.checkpointId).not.toBeNull();
    expect(detail.resumeCommand).toBe(`cairn run <pipeline-file> --run-id ${runs.failed} --store ${url}`);
    expect(detail.problems).toEqual([]);
    expect(detail.chain.every((c) => c.check === "valid")).toBe(true);
    expect(JSON.parse(JSON.stringify(detail))).toEqual(detail);
  });

  it("shows a failed and resumed run as two attempts of the failed stage, one per session", async () => {
    const detail = await runDetail(ctx, runs.resumed);
    expect(detail.summary).toMatchObject({ status: "completed", finished: true });
    expect(detail.resumeCommand).toBeNull();
    const load = detail.timeline.filter((a) => a.stage === "load");
    expect(load.map((a) => [a.attempt, a.session, a.status])).toEqual([
      [1, 0, "failed"],
      [2, 1, "completed"],
    ]);
    const extract = detail.timeline.filter((a) => a.stage === "extract");
    expect(extract.map((a) => a.session)).toEqual([0]);
    expect(detail.stages.find((s) => s.name === "load")).toMatchObject({ status: "completed", attempts: 2 });
    for (const a of detail.timeline)
      expect(Date.parse(a.end ?? "")).toBeGreaterThanOrEqual(Date.parse(a.start));
  });

  it("shows a corrupt checkpoint in the chain, among the problems, and on its own page", async () => {
    const detail = await runDetail(ctx, runs.corrupt);
    const node = detail.chain.find((c) => c.checkpointId === runs.corruptCheckpoint);
    expect(node?.check).toBe("invalid");
    expect(node?.problems.join(" ")).toMatch(/checksum mismatch/);
    expect(detail.problems).toContainEqual(
      expect.objectContaining({ checkpointId: runs.corruptCheckpoint, code: "checksum_mismatch" }),
    );
    const page = await checkpointDetail(ctx, runs.corruptCheckpoint);
    expect(page.validation.status).toBe("invalid");
    expect(page.validation.problems.map((p) => p.kind)).toContain("checksum_mismatch");
    expect(page.state).toBeNull();
    expect(page.exportUrl).toBeNull();
    expect(page.metadata?.stageName).toBe("transform");
    await expect(checkpointState(ctx, runs.corruptCheckpoint)).rejects.toMatchObject({
      code: "CAIRN_CORRUPT",
    });
  });

  it("shows a checkpoint: metadata, stages, provenance, state inline, outputs by URL, export", async () => {
    const detail = await runDetail(ctx, runs.completed);
    const load = detail.chain.find((c) => c.stage === "load");
    if (!load?.checkpointId) throw new Error("no load checkpoint");
    const page = await checkpointDetail(ctx, load.checkpointId);
    expect(page.validation).toEqual({ status: "valid", problems: [] });
    expect(page.completedStages).toEqual(["extract", "transform", "load"]);
    expect(Object.keys(page.provenance ?? {})).toEqual(expect.arrayContaining(["extract", "load"]));
    expect(page.state).toHaveProperty("inline");
    const extract = page.outputs.find((o) => o.name === "extract");
    expect(extract?.url).toBe(`/api/checkpoints/${encodeURIComponent(load.checkpointId)}/outputs/extract`);
    expect(JSON.parse(await checkpointOutput(ctx, load.checkpointId, "extract"))).toEqual({
      rows: [1, 2, 3],
      source: "orders.csv",
    });
    expect(JSON.parse(await checkpointState(ctx, load.checkpointId))).toEqual(
      (page.state as { inline: unknown }).inline,
    );
    await expect(checkpointOutput(ctx, load.checkpointId, "nope")).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
    await expect(checkpointOutput(ctx, load.checkpointId, "../x")).rejects.toMatchObject({
      code: "CAIRN_INVALID_NAME",
    });
    const file = await checkpointExport(ctx, load.checkpointId);
    expect(file.filename).toBe(`${load.checkpointId}.json`);
    expect(JSON.parse(file.text)).toMatchObject({ export_version: expect.any(String) });
    await expect(checkpointDetail(ctx, "no_such_checkpoint")).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
    await expect(checkpointDetail(ctx, "a/../b")).rejects.toMatchObject({ code: "CAIRN_INVALID_NAME" });
    await expect(runDetail(ctx, "no_such_run")).rejects.toMatchObject({ code: "CAIRN_NOT_FOUND" });
  });

  it("compares two checkpoints: the changed state key, output differences, stages", async () => {
    const chain = (await runDetail(ctx, runs.completed)).chain;
    const extract = chain.find((c) => c.stage === "extract")?.checkpointId as string;
    const load = chain.find((c) => c.stage === "load")?.checkpointId as string;
    const diff = await compareCheckpoints(ctx, extract, load);
    expect(diff.a.verified && diff.b.verified).toBe(true);
    expect(diff.outputs.map((d) => [d.path[0], d.kind])).toEqual(
      expect.arrayContaining([
        ["transform", "added"],
        ["load", "added"],
      ]),
    );
    expect(diff.state.length).toBeGreaterThan(0);
    for (const d of diff.state) expect(Array.isArray(d.path)).toBe(true);
    const other = (await runDetail(ctx, runs.failed)).chain.find((c) => c.stage === "extract")?.checkpointId;
    const same = await compareCheckpoints(ctx, extract, other as string);
    expect(same.outputs).toEqual([]);
    const damaged = await compareCheckpoints(ctx, extract, runs.corruptCheckpoint);
    expect(damaged.b.verified).toBe(false);
  });

  it("draws the run's stage and checkpoint graphs as SVG", async () => {
    expect(await runGraphSvg(ctx, runs.failed, "stages")).toMatch(/^<svg|<\?xml/);
    expect(await runGraphSvg(ctx, runs.corrupt, "checkpoints")).toContain("<svg");
    await expect(runGraphSvg(ctx, runs.failed, "pie")).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
  });

  it("gives the statistics: totals, resume success rate, the size series", async () => {
    const stats = await statistics(ctx);
    expect(stats.totals).toMatchObject({ runs: 4, completed: 3, active: 1, failed: 1 });
    expect(stats.resumes).toMatchObject({ resumedRuns: 1, resumedCompleted: 1, successRate: 1 });
    expect(stats.series.length).toBe(stats.totals.checkpoints);
    expect(stats.series.every((p) => p.size > 0)).toBe(true);
    expect(stats.byStatus.failed).toBeGreaterThan(0);
  });
});
