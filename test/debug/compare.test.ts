/**
 * `compareCheckpoints` on a file store: metadata, stages, a structural state diff, outputs by
 * hash and provenance; a side that fails verification is reported, not thrown.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { compareCheckpoints, diffState, MAX_PREVIEW, MAX_STATE_CHANGES } from "../../src/debug/compare.js";
import { CheckpointManager } from "../../src/index.js";

let root: string;
let basePath: string;
let manager: CheckpointManager;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-compare-"));
  basePath = join(root, "store");
  manager = new CheckpointManager({ strategy: "file", config: { basePath } });
});
afterEach(async () => {
  await manager.close();
  await rm(root, { recursive: true, force: true });
});

async function twoCheckpoints(pipelineId = "etl"): Promise<[string, string]> {
  const a = await manager.createCheckpoint({
    pipelineId,
    stageName: "extract",
    stageIndex: 0,
    stateData: {
      rows: 3,
      source: "a.csv",
      items: [1, 2],
      when: new Date("2024-01-01T00:00:00Z"),
      gone: true,
    },
    completedStages: ["extract"],
    pendingStages: ["transform", "load"],
    agentOutputs: { extract: { rows: [1, 2, 3] } },
    provenanceHashes: { extract: "p1" },
    status: "completed",
  });
  const b = await manager.createCheckpoint({
    pipelineId,
    stageName: "transform",
    stageIndex: 1,
    stateData: {
      rows: 4,
      source: "a.csv",
      items: [1, 5, 6],
      when: new Date("2024-01-02T00:00:00Z"),
      added: "x",
    },
    completedStages: ["extract", "transform"],
    pendingStages: ["load"],
    agentOutputs: { extract: { rows: [1, 2, 3] }, transform: { total: 6 } },
    provenanceHashes: { extract: "p1-changed", transform: "p2" },
    status: "completed",
  });
  return [a, b];
}

describe("compareCheckpoints", () => {
  it("shows differing metadata, stages, state paths, outputs and provenance", async () => {
    const [a, b] = await twoCheckpoints();
    const result = await compareCheckpoints(manager, a, b);
    expect(result.a).toMatchObject({ checkpointId: a, verified: true, problems: [] });
    expect(result.b).toMatchObject({ checkpointId: b, verified: true });
    expect(result.sameRun).toBe(true);
    expect(result.metadata.map((m) => m.field)).toEqual(
      expect.arrayContaining(["stageName", "stageIndex", "sequence", "checksum", "parentCheckpointId"]),
    );
    expect(result.metadata.find((m) => m.field === "stageName")).toEqual({
      field: "stageName",
      a: "extract",
      b: "transform",
    });
    expect(result.stages).toEqual({
      onlyInA: [],
      onlyInB: [],
      completedDiff: [{ stage: "transform", a: "pending", b: "completed" }],
    });
    expect(result.state).toEqual([
      { path: "added", change: "added", b: '"x"' },
      { path: "gone", change: "removed", a: "true" },
      { path: "items[1]", change: "changed", a: "2", b: "5" },
      { path: "items[2]", change: "added", b: "6" },
      { path: "rows", change: "changed", a: "3", b: "4" },
      { path: "when", change: "changed", a: "2024-01-01T00:00:00.000Z", b: "2024-01-02T00:00:00.000Z" },
    ]);
    expect(result.outputs).toEqual([
      { stage: "extract", change: "same", hashA: expect.any(String), hashB: expect.any(String) },
      { stage: "transform", change: "added", hashB: expect.any(String) },
    ]);
    expect(result.provenance).toEqual([
      { stage: "extract", a: "p1", b: "p1-changed" },
      { stage: "transform", a: undefined, b: "p2" },
    ]);
    expect(result.notes).toEqual([]);
  });

  it("reports the side that fails verification and compares what can be read", async () => {
    const [a, b] = await twoCheckpoints();
    const dir = join(basePath, "etl");
    const name = (await readdir(dir)).find((n) => n.endsWith(`-${b}.json`)) as string;
    const text = await readFile(join(dir, name), "utf8");
    await writeFile(join(dir, name), text.replace('"rows":4', '"rows":40'));
    const result = await compareCheckpoints(manager, a, b);
    expect(result.a.verified).toBe(true);
    expect(result.b.verified).toBe(false);
    expect(result.b.problems.join("\n")).toMatch(/checksum mismatch/);
    expect(result.notes.join("\n")).toMatch(/^B \(.*\) failed verification/);
    expect(result.state).toContainEqual({ path: "rows", change: "changed", a: "3", b: "40" });
    expect(result.outputs).toHaveLength(2);
  });

  it("reports an unparseable side without throwing, and an unknown id as not found", async () => {
    const [a] = await twoCheckpoints();
    await writeFile(join(basePath, "etl", "0000000003-garbage.json"), "{not json");
    const result = await compareCheckpoints(manager, a, "garbage");
    expect(result.b).toMatchObject({ verified: false, metadata: undefined });
    expect(result.b.problems[0]).toMatch(/not valid JSON/);
    expect(result.sameRun).toBe(false);
    expect(result.state).toEqual([]);
    expect(result.notes.join("\n")).toMatch(/B: the body cannot be read/);
    await expect(compareCheckpoints(manager, a, "etl_x_20240101T000000000Z_aaaaaaaa")).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
  });

  it("limits the state diff in depth, size and value length", () => {
    let deepA: Record<string, unknown> = { leaf: 1 };
    let deepB: Record<string, unknown> = { leaf: 2 };
    for (let i = 0; i < 20; i++) {
      deepA = { d: deepA };
      deepB = { d: deepB };
    }
    const deep = diffState(deepA, deepB);
    expect(deep.changes).toHaveLength(1);
    expect(deep.changes[0]?.path.split(".").length).toBeLessThan(12);
    const many = diffState({}, Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i])));
    expect(many.changes).toHaveLength(MAX_STATE_CHANGES);
    expect(many.truncated).toBe(true);
    const long = diffState({ s: "a" }, { s: "b".repeat(1000) });
    expect(long.changes[0]?.b?.length).toBe(MAX_PREVIEW);
    expect(long.changes[0]?.b?.endsWith("…")).toBe(true);
  });
});
