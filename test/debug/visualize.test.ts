/**
 * Checkpoint graphs: the model built from a real file store (failures, a resume, a hand-edited
 * checkpoint, a garbage file, a removed parent) and its SVG, PNG, Mermaid and DOT renderings.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildCheckpointGraph,
  type CheckpointGraph,
  type CheckpointGraphNode,
  formatFromPath,
  renderCheckpointGraph,
  renderDot,
  renderMermaid,
  renderPng,
  renderSvg,
  STATUS_COLORS,
} from "../../src/debug/visualize/index.js";
import { CheckpointManager, type CheckpointStatusValue } from "../../src/index.js";
import { checkpointFile } from "../support/file-store.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const ERROR = `boom <&> "quoted" 'single' & more`;
const STAGES = ["extract", "transform", "load", "report"];
const RUN = "etl_20240101T000000000Z_abc234";

let dir: string;
let basePath: string;
let manager: CheckpointManager;
let graph: CheckpointGraph;
const ids: Record<string, string> = {};

/** Writes a checkpoint of `STAGES[index]` with outputs of every stage up to it. */
function checkpoint(pipelineId: string, index: number, status: CheckpointStatusValue, errorMessage?: string) {
  return manager.createCheckpoint({
    pipelineId,
    stageName: STAGES[index] as string,
    stageIndex: index,
    stateData: { total: (index + 1) * 100 },
    completedStages: STAGES.slice(0, index + 1),
    pendingStages: STAGES.slice(index + 1),
    agentOutputs: Object.fromEntries(STAGES.slice(0, index + 1).map((s) => [s, { rows: [s, index] }])),
    status,
    ...(errorMessage !== undefined ? { errorMessage } : {}),
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-visualize-"));
  basePath = join(dir, "store");
  manager = new CheckpointManager({ strategy: "file", config: { basePath } });
  ids.extract = await checkpoint(RUN, 0, "completed");
  ids.transform = await checkpoint(RUN, 1, "completed");
  ids.loadFailed = await checkpoint(RUN, 2, "failed", ERROR);
  const resumed = await manager.resumePipeline(RUN);
  expect(resumed?.checkpointId).toBe(ids.loadFailed);
  ids.load = await checkpoint(RUN, 2, "completed");
  ids.reportFailed = await checkpoint(RUN, 3, "failed", "disk full");
  ids.report = await checkpoint(RUN, 3, "in_progress");
  await manager.updateCheckpointStatus(ids.extract, "expired");
  // Tamper with the transform checkpoint's body, and drop garbage into the run folder.
  const path = await fileOfRun(RUN, ids.transform);
  const text = await readFile(path, "utf8");
  expect(text).toContain('"total":200');
  await writeFile(path, text.replace('"total":200', '"total":201'));
  await writeFile(join(basePath, RUN, "garbage.json"), "this is not a checkpoint");
  graph = await buildCheckpointGraph(manager, RUN, { now: new Date("2024-02-03T04:05:06Z") });
});

afterAll(async () => {
  await manager.close();
  await rm(dir, { recursive: true, force: true });
});

function checkpointNode(id: string | undefined): CheckpointGraphNode {
  const node = graph.nodes.find((n) => n.kind === "checkpoint" && n.checkpointId === id);
  if (node?.kind !== "checkpoint") throw new Error(`no node for ${id}`);
  return node;
}

/**
 * A strict-enough XML check without a parser: the document is a prolog and one element tree;
 * tags balance, attributes are quoted, and text and attribute values hold no raw `<` and no `&`
 * outside an entity.
 */
function checkXml(xml: string): void {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, "");
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)>/g;
  const entity = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  const stack: string[] = [];
  let last = 0;
  let roots = 0;
  for (const match of body.matchAll(tag)) {
    const text = body.slice(last, match.index);
    if (/[<>]/.test(text) || entity.test(text)) throw new Error(`bad text before ${match[0]}: ${text}`);
    if (stack.length === 0 && text.trim() !== "") throw new Error(`text outside the root: ${text}`);
    for (const value of (match[3] ?? "").matchAll(/="([^"]*)"/g)) {
      if (/[<>]/.test(value[1] ?? "") || entity.test(value[1] ?? ""))
        throw new Error(`bad attribute ${value[0]}`);
    }
    const [, closing, name, , selfClosing] = match;
    if (closing) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else {
      if (stack.length === 0) roots++;
      if (!selfClosing) stack.push(name as string);
    }
    last = (match.index ?? 0) + match[0].length;
  }
  if (body.slice(last).trim() !== "") throw new Error(`trailing text: ${body.slice(last)}`);
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(", ")}`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

function rgb(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}

function countColor(png: PNG, hex: string): number {
  const [r, g, b] = rgb(hex);
  let count = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    if (png.data[i] === r && png.data[i + 1] === g && png.data[i + 2] === b) count++;
  }
  return count;
}

function countDark(png: PNG): number {
  let count = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    if ((png.data[i] ?? 255) < 80 && (png.data[i + 1] ?? 255) < 80 && (png.data[i + 2] ?? 255) < 80) count++;
  }
  return count;
}

const fileOfRun = (pipelineId: string, checkpointId: string) =>
  checkpointFile(basePath, pipelineId, checkpointId);

describe("the graph model", () => {
  it("has one node per checkpoint, the corrupt entry, and parent edges in order", () => {
    expect(graph.pipelineId).toBe(RUN);
    expect(graph.pipelineName).toBe("etl");
    expect(graph.title).toBe(`etl — run ${RUN}`);
    const checkpoints = graph.nodes.filter((n) => n.kind === "checkpoint");
    expect(checkpoints.map((n) => n.sequence)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(checkpoints.map((n) => n.stageName)).toEqual([
      "extract",
      "transform",
      "load",
      "load",
      "report",
      "report",
    ]);
    const chain = [ids.extract, ids.transform, ids.loadFailed, ids.load, ids.reportFailed, ids.report];
    expect(graph.edges).toEqual(chain.slice(1).map((to, i) => ({ from: chain[i], to })));
    expect(graph.counts).toEqual({
      checkpoints: 6,
      corrupt: 1,
      removed: 0,
      invalid: 1,
      quarantined: 0,
      resumed: 1,
      failed: 2,
    });
  });

  it("flags resumes, failures, invalid checkpoints and corrupt entries", () => {
    const resumed = checkpointNode(ids.loadFailed);
    expect(resumed).toMatchObject({ status: "resumed", resumeCount: 1, resumed: true, failed: true });
    expect(resumed.errorMessage).toBe(ERROR);
    expect(checkpointNode(ids.reportFailed)).toMatchObject({
      status: "failed",
      failed: true,
      resumed: false,
      errorMessage: "disk full",
    });
    expect(checkpointNode(ids.extract)).toMatchObject({ status: "expired", valid: true, failed: false });
    expect(checkpointNode(ids.report)).toMatchObject({ status: "in_progress", valid: true });
    const tampered = checkpointNode(ids.transform);
    expect(tampered.valid).toBe(false);
    expect(tampered.problems.map((p) => p.kind)).toContain("checksum_mismatch");
    const corrupt = graph.nodes.find((n) => n.kind === "corrupt");
    expect(corrupt).toMatchObject({ kind: "corrupt", position: 6 });
    expect(corrupt?.kind === "corrupt" && corrupt.location.endsWith("garbage.json")).toBe(true);
    expect(checkpointNode(ids.report).timestamp).toBeInstanceOf(Date);
    expect(checkpointNode(ids.report).dataSize).toBeGreaterThan(0);
  });

  it("skips validation when asked", async () => {
    const quick = await buildCheckpointGraph(manager, RUN, { validate: false });
    expect(quick.validated).toBe(false);
    expect(quick.counts.invalid).toBe(0);
    for (const node of quick.nodes) if (node.kind === "checkpoint") expect(node.valid).toBeUndefined();
  });

  it("draws a parent that is gone as a removed node, and links a child to a corrupt parent", async () => {
    const run = "gaps_20240101T000000000Z_def567";
    const first = await checkpoint(run, 0, "completed");
    const second = await checkpoint(run, 1, "completed");
    const third = await checkpoint(run, 2, "completed");
    const fourth = await checkpoint(run, 3, "completed");
    const store = await manager.getStore();
    await store.deleteCheckpoints(run, [first]);
    const thirdFile = await fileOfRun(run, third);
    await writeFile(thirdFile, "{ truncated");
    const gaps = await buildCheckpointGraph(manager, run);
    expect(gaps.nodes.map((n) => n.kind)).toEqual(["removed", "checkpoint", "corrupt", "checkpoint"]);
    expect(gaps.nodes[0]).toMatchObject({ kind: "removed", checkpointId: first });
    expect(gaps.nodes[2]).toMatchObject({ kind: "corrupt", checkpointId: third, location: thirdFile });
    expect(gaps.nodes[3]).toMatchObject({ checkpointId: fourth });
    // The corrupt third checkpoint cannot tell its parent, but the fourth still names it.
    expect(gaps.edges).toEqual([
      { from: `removed:${first}`, to: second },
      { from: `corrupt:${thirdFile}`, to: fourth },
    ]);
    expect(gaps.counts).toMatchObject({ checkpoints: 2, corrupt: 1, removed: 1 });
    const svg = renderSvg(gaps);
    checkXml(svg);
    expect(svg).toContain("parent removed");
    expect(svg).toContain('stroke-dasharray="5 4"');
    expect(renderMermaid(gaps)).toContain("c1 -.-> c2");
    expect(renderDot(gaps)).toContain("c1 -> c2 [style=dashed]");
  });

  it("refuses an unknown run and an invalid id", async () => {
    await expect(buildCheckpointGraph(manager, "nope")).rejects.toMatchObject({ code: "CAIRN_NOT_FOUND" });
    await expect(buildCheckpointGraph(manager, "../etc")).rejects.toMatchObject({
      code: "CAIRN_INVALID_NAME",
    });
  });
});

describe("SVG", () => {
  it("is well-formed, with the title, the legend, the colours, the stages and escaped text", async () => {
    const svg = renderSvg(graph);
    checkXml(svg);
    await expect(renderPng(svg)).resolves.toBeInstanceOf(Buffer);
    expect(svg).toContain('font-family="DejaVu Sans, sans-serif"');
    expect(svg).toContain(`etl — run ${RUN}`);
    expect(svg).toContain("6 checkpoints · 1 resumed · 2 failed · 1 invalid (0 quarantined) · 1 unreadable");
    expect(svg).toContain("04:05:06 UTC · 2024-02-03");
    expect(svg).toContain('class="legend"');
    for (const label of [
      "completed",
      "in progress",
      "failed",
      "resumed",
      "expired",
      "unreadable entry",
      "invalid",
    ]) {
      expect(svg).toContain(`>${label}`);
    }
    for (const color of Object.values(STATUS_COLORS)) expect(svg).toContain(`fill="${color}"`);
    for (const stage of STAGES) expect(svg).toContain(`>${stage}</text>`);
    expect(svg).toContain("✗ boom &lt;&amp;&gt; &quot;quoted&quot; &apos;single&apos;");
    expect(svg).not.toContain("<&>");
    expect(svg).toContain("↻ resumed ×1");
    expect(svg).toContain("⚠ invalid: checksum mismatch");
    expect(svg).toMatch(/stroke="#d50000" stroke-width="4" stroke-dasharray/);
    expect(svg).toContain('orient="auto"');
    expect(svg.match(/marker-end="url\(#arrow\)"/g)).toHaveLength(graph.edges.length);
  });

  it("is at least 400 px wide for a single checkpoint", async () => {
    const run = "one_20240101T000000000Z_ghi789";
    await checkpoint(run, 0, "completed");
    const single = renderSvg(await buildCheckpointGraph(manager, run));
    checkXml(single);
    expect(Number(/<svg[^>]* width="(\d+)"/.exec(single)?.[1])).toBeGreaterThanOrEqual(400);
    const png = PNG.sync.read(await renderPng(single));
    expect(png.width).toBeGreaterThanOrEqual(400);
  });

  it("resvg refuses malformed SVG, so rendering is a well-formedness check", async () => {
    await expect(renderPng('<svg xmlns="http://www.w3.org/2000/svg"><g></svg>')).rejects.toThrow();
  });
});

describe("PNG", () => {
  it("decodes, is wide enough and holds the exact status colours", async () => {
    const buffer = (await renderCheckpointGraph(graph, "png")) as Buffer;
    const png = PNG.sync.read(buffer);
    expect(png.width).toBeGreaterThanOrEqual(400);
    for (const key of ["completed", "failed", "resumed", "in_progress", "expired", "corrupt"] as const) {
      expect(countColor(png, STATUS_COLORS[key]), key).toBeGreaterThan(500);
    }
  });

  it("draws text with the bundled fonts", async () => {
    const svg = renderSvg(graph);
    const withFonts = PNG.sync.read(await renderPng(svg, { zoom: 1 }));
    const without = PNG.sync.read(await renderPng(svg, { zoom: 1, fonts: false }));
    expect(withFonts.width).toBe(without.width);
    expect(countDark(without)).toBe(0);
    expect(countDark(withFonts)).toBeGreaterThan(1000);
    expect(withFonts.data.equals(without.data)).toBe(false);
  });

  it("caps the width", async () => {
    const png = PNG.sync.read(await renderPng(renderSvg(graph), { maxWidth: 800 }));
    expect(png.width).toBeLessThanOrEqual(800);
  });
});

describe("Mermaid", () => {
  it("is a left-to-right flowchart with one node per checkpoint, the edges and a class per status", () => {
    const text = renderMermaid(graph);
    expect(text.startsWith("flowchart LR\n")).toBe(true);
    expect(text).toContain(`%% Checkpoint graph: etl — run ${RUN}`);
    const nodeLines = text.split("\n").filter((l) => /^ {2}c\d+[([]/.test(l));
    expect(nodeLines).toHaveLength(graph.nodes.length);
    for (const line of nodeLines) expect(line).toMatch(/^ {2}c\d+(\("[^"]*"\)|\["[^"]*"\]|\(\["[^"]*"\]\))$/);
    for (const i of [1, 2, 3, 4, 5]) expect(text).toContain(`  c${i} --> c${i + 1}\n`);
    expect(text).toContain("#60;#38;#62; #34;quoted#34;");
    for (const key of Object.keys(STATUS_COLORS)) expect(text).toContain(`classDef ${key} fill:`);
    expect(text).toContain("class c2 invalid");
    expect(text).toMatch(/class c3 resumed/);
    expect(text).toMatch(/class c7 corrupt/);
  });
});

describe("DOT", () => {
  it("is a left-to-right digraph with filled nodes, balanced braces and quotes, and the edges", () => {
    const text = renderDot(graph);
    expect(text).toMatch(/^digraph checkpoints \{/);
    expect(text).toContain("rankdir=LR;");
    expect(text.split("{").length).toBe(text.split("}").length);
    for (const line of text.split("\n")) {
      const quotes = line.replace(/\\\\/g, "").replace(/\\"/g, "").split('"').length - 1;
      expect(quotes % 2, line).toBe(0);
    }
    expect(text.match(/^ {2}c\d+ \[label=/gm)).toHaveLength(graph.nodes.length);
    for (const i of [1, 2, 3, 4, 5]) expect(text).toContain(`  c${i} -> c${i + 1};`);
    expect(text).toContain(`graph [label="etl — run ${RUN}\\n`);
    expect(text).toContain(`fillcolor="${STATUS_COLORS.completed}"`);
    expect(text).toContain('style="rounded,filled,dashed", color="#d50000"');
    expect(text).toContain('✗ boom <&> \\"quoted\\"');
  });
});

describe("formats", () => {
  it("tells the format from the extension and refuses others", () => {
    expect(formatFromPath("out/graph.png")).toBe("png");
    expect(formatFromPath("graph.SVG")).toBe("svg");
    expect(formatFromPath("graph.mmd")).toBe("mmd");
    expect(formatFromPath("graph.dot")).toBe("dot");
    expect(() => formatFromPath("graph.gif")).toThrow(/\.png.*|.*\.png/);
    try {
      formatFromPath("graph");
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
      expect((error as Error).message).toMatch(/\.svg, \.png, \.mmd/);
    }
  });

  it("loads resvg only when a PNG is rendered", async () => {
    const script = `
      import { createRequire } from "node:module";
      const require = createRequire(import.meta.url);
      const loaded = () => Object.keys(require.cache).some((k) => k.includes("resvg"));
      const visualize = await import("./dist/debug/visualize/index.js");
      await import("./dist/index.js");
      const before = loaded();
      await visualize.renderPng('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["--input-type=module", "-e", script], { cwd: root }, (error, out) =>
        error ? reject(error) : resolve(out),
      );
    });
    expect(JSON.parse(stdout)).toEqual({ before: false, after: true });
  });
});
