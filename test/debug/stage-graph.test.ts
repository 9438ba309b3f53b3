/**
 * The stage graph of a run (statuses from the newest verified checkpoint, edges from the
 * recorded `depends_on`) and its displays: Mermaid, DOT, SVG, the report section, and the
 * progress text with stages running side by side.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildRecoveryReport, renderReport } from "../../src/debug/report.js";
import {
  buildStageGraph,
  renderStageDot,
  renderStageGraph,
  renderStageMermaid,
  renderStageSvg,
  STAGE_COLORS,
} from "../../src/debug/visualize/index.js";
import { CheckpointManager } from "../../src/index.js";
import { QUARANTINE_PREFIX } from "../../src/manager/check.js";
import type { StageProgress } from "../../src/pipeline/execution.js";
import { renderProgress } from "../../src/pipeline/progress.js";
import { checkpointFile } from "../support/file-store.js";

const RUN = "diamond_20240101T000000000Z_abc234";
// a → b, a → c, (b, c) → d, as the DAG executor records it.
const STEPS = [
  { name: "a", agent: "A", version: null, depends_on: [] },
  { name: "b", agent: "B", version: null, depends_on: ["a"] },
  { name: "c", agent: "C", version: null, depends_on: ["a"] },
  { name: "d", agent: "D", version: null, depends_on: ["b", "c"] },
];

let manager: CheckpointManager;
beforeEach(() => {
  manager = new CheckpointManager({ strategy: "memory" });
});
afterEach(async () => {
  await manager.close();
});

/** Writes one checkpoint of the diamond run after `completed`, for stage `stage`. */
function write(
  stage: string,
  completed: string[],
  options: { status?: "completed" | "failed"; error?: string; steps?: unknown[] | undefined } = {},
) {
  const names = STEPS.map((s) => s.name);
  return manager.createCheckpoint({
    pipelineId: RUN,
    pipelineName: "diamond",
    stageName: stage,
    stageIndex: names.indexOf(stage),
    stateData: {
      ...(options.steps !== undefined ? { pipeline_config: { name: "diamond", steps: options.steps } } : {}),
      stage_timings: Object.fromEntries(
        completed.map((s, i) => [s, { duration_ms: 100 * (i + 1), attempts: 1 }]),
      ),
    },
    completedStages: completed,
    pendingStages: names.filter((n) => !completed.includes(n)),
    agentOutputs: Object.fromEntries(completed.map((s) => [s, { out: s }])),
    status: options.status ?? "completed",
    ...(options.error !== undefined ? { errorMessage: options.error } : {}),
  });
}

/** a and b completed, then c failed: d waits for both b and c. */
async function failedDiamond(): Promise<void> {
  await write("a", ["a"], { steps: STEPS });
  await write("b", ["a", "b"], { steps: STEPS });
  await write("c", ["a", "b"], { steps: STEPS, status: "failed", error: "c broke <badly>" });
}

describe("stage graph", () => {
  it("reads statuses from the newest checkpoint and edges from depends_on", async () => {
    await failedDiamond();
    const graph = await buildStageGraph(manager, RUN);
    expect(graph.dependenciesKnown).toBe(true);
    expect(graph.sequence).toBe(3);
    expect(graph.nodes.map((n) => [n.name, n.state, n.ready])).toEqual([
      ["a", "completed", false],
      ["b", "completed", false],
      ["c", "failed", false],
      ["d", "pending", false],
    ]);
    expect(graph.nodes[2]?.errorMessage).toBe("c broke <badly>");
    expect(graph.nodes[1]?.durationMs).toBe(200);
    expect(graph.edges).toEqual([
      { from: "a", to: "b" },
      { from: "a", to: "c" },
      { from: "b", to: "d" },
      { from: "c", to: "d" },
    ]);
  });

  it("marks a pending stage whose dependencies completed as ready", async () => {
    await write("a", ["a"], { steps: STEPS });
    await write("b", ["a", "b"], { steps: STEPS });
    const graph = await buildStageGraph(manager, RUN);
    expect(graph.nodes.filter((n) => n.ready).map((n) => n.name)).toEqual(["c"]);
  });

  it("skips a checkpoint quarantined by repair, as resume does", async () => {
    await write("a", ["a"], { steps: STEPS });
    const b = await write("b", ["a", "b"], { steps: STEPS });
    await manager.updateCheckpointStatus(b, "expired", `${QUARANTINE_PREFIX}: checksum mismatch`);
    const graph = await buildStageGraph(manager, RUN);
    expect(graph.sequence).toBe(1);
    expect(graph.nodes.find((n) => n.name === "b")?.state).toBe("pending");
  });

  it("falls back to a linear chain when the checkpoint records no depends_on", async () => {
    await write("a", ["a"]);
    await write("b", ["a", "b"]);
    const graph = await buildStageGraph(manager, RUN);
    expect(graph.dependenciesKnown).toBe(false);
    expect(graph.edges).toEqual([
      { from: "a", to: "b" },
      { from: "b", to: "c" },
      { from: "c", to: "d" },
    ]);
    expect(graph.nodes.filter((n) => n.ready).map((n) => n.name)).toEqual(["c"]);
    expect(renderStageMermaid(graph)).toContain("linear chain");
  });

  it("renders Mermaid and DOT with every dependency edge and a class per state", async () => {
    await failedDiamond();
    const graph = await buildStageGraph(manager, RUN);
    const mmd = renderStageMermaid(graph);
    for (const edge of ["s1 --> s2", "s1 --> s3", "s2 --> s4", "s3 --> s4"]) expect(mmd).toContain(edge);
    expect(mmd).not.toContain("s2 --> s3");
    expect(mmd).toContain("class s1,s2 completed");
    expect(mmd).toContain("class s3 failed");
    expect(mmd).toContain("class s4 pending");
    // The error message is data: its markup characters are Mermaid entity codes.
    expect(mmd).toContain("c broke #60;badly#62;");
    const dot = renderStageDot(graph);
    for (const edge of ["s1 -> s2;", "s1 -> s3;", "s2 -> s4;", "s3 -> s4;"]) expect(dot).toContain(edge);
    expect(dot).toContain(`fillcolor="${STAGE_COLORS.failed.fill}"`);
    expect(dot).toContain('s3 [label="c\\nfailed\\n✗ c broke <badly>"');
  });

  it("renders SVG with one node per stage and one path per edge, and a PNG", async () => {
    await failedDiamond();
    const graph = await buildStageGraph(manager, RUN);
    const svg = renderStageSvg(graph);
    expect(svg.match(/<g class="node /g)).toHaveLength(4);
    expect(svg.match(/<path class="edge"/g)).toHaveLength(4);
    expect(svg).toContain('data-from="b" data-to="d"');
    expect(svg).toContain('class="node stage-failed" data-stage="c"');
    expect(svg).toContain("c broke &lt;badly&gt;");
    const png = (await renderStageGraph(graph, "png")) as Buffer;
    expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
  });
});

it("renders a graph without stages (a LangGraph thread's run) with finite dimensions", () => {
  const svg = renderStageSvg({
    pipelineId: "lg.t.abc",
    pipelineName: "lg.t",
    title: "lg.t — run lg.t.abc",
    generatedAt: new Date(0),
    checkpointId: "c1",
    sequence: 1,
    dependenciesKnown: false,
    nodes: [],
    edges: [],
  });
  const [, width, height] = /<svg[^>]* width="([^"]+)" height="([^"]+)"/.exec(svg) ?? [];
  expect(Number.isFinite(Number(width)) && Number(width) > 0).toBe(true);
  expect(Number.isFinite(Number(height)) && Number(height) > 0).toBe(true);
  expect(svg).not.toContain("Infinity");
  expect(svg).not.toContain("NaN");
});

describe("stage graph of a run with corrupt checkpoints", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "cairn-stage-graph-"));
    await manager.close();
    manager = new CheckpointManager({ strategy: "file", config: { basePath: dir } });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Changes a recorded duration in the checkpoint's file: its checksum no longer matches. */
  async function corrupt(checkpointId: string, from: string, to: string): Promise<void> {
    const path = await checkpointFile(dir, RUN, checkpointId);
    const text = await readFile(path, "utf8");
    expect(text).toContain(from);
    await writeFile(path, text.replace(from, to));
  }

  it("reads the newest checkpoint that verifies", async () => {
    await write("a", ["a"], { steps: STEPS });
    const b = await write("b", ["a", "b"], { steps: STEPS });
    await corrupt(b, '"duration_ms":200', '"duration_ms":201');
    const graph = await buildStageGraph(manager, RUN);
    expect(graph.sequence).toBe(1);
    expect(graph.nodes.filter((n) => n.state === "completed").map((n) => n.name)).toEqual(["a"]);
    expect(graph.nodes.filter((n) => n.ready).map((n) => n.name)).toEqual(["b", "c"]);
  });

  it("is CAIRN_CORRUPT when none verifies, and the report leaves the section out", async () => {
    const a = await write("a", ["a"], { steps: STEPS });
    await corrupt(a, '"duration_ms":100', '"duration_ms":101');
    await expect(buildStageGraph(manager, RUN)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
    const report = await buildRecoveryReport(manager, RUN);
    expect(report.stageGraph).toBeUndefined();
    expect(renderReport(report, "text")).not.toContain("Stage graph");
  });
});

describe("report", () => {
  it("has a stage graph section, and a Mermaid block in Markdown", async () => {
    await failedDiamond();
    const report = await buildRecoveryReport(manager, RUN);
    expect(report.stageGraph?.edges).toHaveLength(4);
    const text = renderReport(report, "text");
    expect(text).toContain("Stage graph (checkpoint #3)");
    expect(text).toMatch(/ {2}c: +✗ failed: c broke <badly>; after a\n/);
    expect(text).toMatch(/ {2}d: +· pending; after b, c/);
    const md = renderReport(report, "md");
    expect(md).toContain("```mermaid\nflowchart LR");
    expect(md).toContain("s3 --> s4");
    expect(renderReport(report, "html")).toContain("Stage graph (checkpoint #3)");
  });
});

describe("progress", () => {
  const progress = (entries: [string, StageProgress["state"]][]) =>
    new Map(entries.map(([name, state]) => [name, { state, attempts: 1, durationMs: undefined }]));

  it("names every stage running at once and what each stage waits for", () => {
    const steps = [
      { name: "a", dependsOn: [] },
      { name: "b", dependsOn: ["a"] },
      { name: "c", dependsOn: ["a"] },
      { name: "d", dependsOn: ["b", "c"] },
    ];
    const text = renderProgress(
      "diamond",
      RUN,
      steps,
      progress([
        ["a", "completed"],
        ["b", "running"],
        ["c", "running"],
      ]),
    );
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toBe(`diamond (${RUN}): 1/4 stages done, 2 running: b, c`);
    expect(lines[1]).toMatch(/^ {2}✓ a +completed +\(root\)$/);
    expect(lines[2]).toMatch(/^ {2}▶ b +running +← a$/);
    expect(lines[3]).toMatch(/^ {2}▶ c +running +← a$/);
    expect(lines[4]).toMatch(/^ {2}· d +pending +← b, c$/);
  });

  it("keeps a linear pipeline's lines as they were", () => {
    const text = renderProgress(
      "line",
      undefined,
      [{ name: "a" }, { name: "b", dependsOn: ["a"] }],
      progress([["a", "running"]]),
    );
    expect(text).toBe("line: 0/2 stages done, 1 running: a\n  ▶ a  running\n  · b  pending\n");
  });
});
