import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STATUS_COLORS } from "../../src/debug/visualize/index.js";
import { CheckpointManager } from "../../src/index.js";
import { type CliResult, runCairn } from "../support/cli.js";

const RUN = "etl_20240101T000000000Z_abc234";

/** Runs the built CLI; resolves with its exit code and output, whatever the code. */
function cairn(args: string[]): Promise<CliResult> {
  return runCairn(args, { cwd: dir });
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-visualize-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A run with completed checkpoints, a failure the run resumed from, and a failure. */
async function makeRun(store: string): Promise<void> {
  const manager = new CheckpointManager({ store });
  const stages = ["extract", "transform", "load"];
  const write = (index: number, status: "completed" | "failed", errorMessage?: string) =>
    manager.createCheckpoint({
      pipelineId: RUN,
      stageName: stages[index] as string,
      stageIndex: index,
      stateData: { index },
      completedStages: stages.slice(0, index + 1),
      pendingStages: stages.slice(index + 1),
      agentOutputs: { [stages[index] as string]: { rows: [index] } },
      status,
      ...(errorMessage ? { errorMessage } : {}),
    });
  try {
    await write(0, "completed");
    await write(1, "failed", "timeout <after> 30 s & retries");
    await manager.resumePipeline(RUN);
    await write(1, "completed");
    await write(2, "failed", "disk full");
  } finally {
    await manager.close();
  }
}

function hasColor(png: PNG, hex: string): boolean {
  const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  for (let i = 0; i < png.data.length; i += 4) {
    if (png.data[i] === r && png.data[i + 1] === g && png.data[i + 2] === b) return true;
  }
  return false;
}

const stores = {
  file: () => `file:${join(dir, "checkpoints")}`,
  sqlite: () => `sqlite:${join(dir, "cairn.db")}`,
};

describe.each(Object.entries(stores))("cairn visualize on the %s store", (_name, storeUrl) => {
  it("writes a PNG with the status colours", async () => {
    await makeRun(storeUrl());
    const result = await cairn([
      "visualize",
      "--pipeline-id",
      RUN,
      "--output",
      "graph.png",
      "--store",
      storeUrl(),
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(join(dir, "graph.png"));
    expect(result.stdout).toContain("4 nodes, 3 edges");
    const png = PNG.sync.read(await readFile(join(dir, "graph.png")));
    expect(png.width).toBeGreaterThanOrEqual(400);
    for (const key of ["completed", "failed", "resumed"] as const) {
      expect(hasColor(png, STATUS_COLORS[key]), key).toBe(true);
    }
    // Written through a temp file that is gone afterwards.
    expect((await readdir(dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("writes SVG, Mermaid and DOT, and reports JSON", async () => {
    await makeRun(storeUrl());
    const svg = await cairn([
      "visualize",
      "--pipeline-id",
      RUN,
      "-o",
      "out/graph.svg",
      "--store",
      storeUrl(),
    ]);
    expect(svg.code).toBe(0);
    const svgText = await readFile(join(dir, "out/graph.svg"), "utf8");
    expect(svgText).toMatch(/^<\?xml[^>]*>\n<svg /);
    expect(svgText).toContain("✗ timeout &lt;after&gt; 30 s &amp; retries");
    expect(svgText.trimEnd().endsWith("</svg>")).toBe(true);

    const mmd = await cairn([
      "visualize",
      "--pipeline-id",
      RUN,
      "--output",
      "graph.mmd",
      "--store",
      storeUrl(),
      "--json",
    ]);
    expect(mmd.code).toBe(0);
    expect(JSON.parse(mmd.stdout)).toEqual({
      pipelineId: RUN,
      output: join(dir, "graph.mmd"),
      format: "mmd",
      nodes: 4,
      edges: 3,
      invalid: 0,
      quarantined: 0,
      corrupt: 0,
    });
    const mermaid = await readFile(join(dir, "graph.mmd"), "utf8");
    expect(mermaid.startsWith("flowchart LR\n")).toBe(true);
    expect(mermaid).toContain("c1 --> c2");

    const dot = await cairn([
      "visualize",
      "--pipeline-id",
      RUN,
      "--output",
      "graph.dot",
      "--store",
      storeUrl(),
      "--no-validate",
    ]);
    expect(dot.code).toBe(0);
    const dotText = await readFile(join(dir, "graph.dot"), "utf8");
    expect(dotText).toMatch(/^digraph /);
    expect(dotText).toContain("rankdir=LR;");
    expect(dotText).toContain("c3 -> c4;");
  });

  it("draws the stage graph with --graph stages, and rejects an unknown --graph", async () => {
    await makeRun(storeUrl());
    const store = ["--store", storeUrl()];
    const result = await cairn([
      "visualize",
      "--pipeline-id",
      RUN,
      "-o",
      "stages.mmd",
      "--graph",
      "stages",
      "--json",
      ...store,
    ]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      graph: "stages",
      nodes: 3,
      edges: 2,
      dependenciesKnown: false,
    });
    const mermaid = await readFile(join(dir, "stages.mmd"), "utf8");
    // The newest checkpoint: extract and transform completed, load failed; no depends_on recorded.
    expect(mermaid).toContain("s1 --> s2");
    expect(mermaid).toContain("s2 --> s3");
    expect(mermaid).toContain("class s1,s2 completed");
    expect(mermaid).toContain("class s3 failed");
    const bad = await cairn(["visualize", "--pipeline-id", RUN, "-o", "x.svg", "--graph", "tree", ...store]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--graph");
    expect((await readdir(dir)).includes("x.svg")).toBe(false);
  });

  it("exits 3 for an unknown run and 2 for an unknown extension, writing nothing", async () => {
    await makeRun(storeUrl());
    const unknown = await cairn([
      "visualize",
      "--pipeline-id",
      "nope",
      "--output",
      "graph.png",
      "--store",
      storeUrl(),
    ]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain("CAIRN_NOT_FOUND");
    const gif = await cairn([
      "visualize",
      "--pipeline-id",
      RUN,
      "--output",
      "graph.gif",
      "--store",
      storeUrl(),
    ]);
    expect(gif.code).toBe(2);
    expect(gif.stderr).toMatch(/\.png/);
    expect((await readdir(dir)).filter((n) => n.startsWith("graph"))).toEqual([]);
  });
});

describe("cairn visualize usage", () => {
  it("has help with an example, and needs --pipeline-id and --output", async () => {
    const help = await cairn(["visualize", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--output");
    expect(help.stdout).toContain("--no-validate");
    expect(help.stdout).toContain("$ cairn visualize --pipeline-id");
    expect((await cairn(["visualize", "--output", "graph.png"])).code).toBe(2);
    expect((await cairn(["visualize", "--pipeline-id", RUN])).code).toBe(2);
  });

  it("warns about invalid and corrupt entries on stderr, and still draws them", async () => {
    const basePath = join(dir, "checkpoints");
    await makeRun(`file:${basePath}`);
    await writeFile(join(basePath, RUN, "junk.txt"), "junk");
    const result = await cairn([
      "visualize",
      "--pipeline-id",
      RUN,
      "--output",
      "graph.svg",
      "--base-path",
      basePath,
      "--json",
    ]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ nodes: 5, corrupt: 1, invalid: 0 });
    expect(result.stderr).toContain("1 entry is unreadable");
    expect(await readFile(join(dir, "graph.svg"), "utf8")).toContain("⚠ unreadable entry");
  });

  it("suggests commands with the store flags the user gave (visualize, list)", async () => {
    const basePath = join(dir, "my checkpoints");
    await makeRun(`file:${basePath}`);
    await writeFile(join(basePath, RUN, "junk.txt"), "junk");
    const store = ["--store", `file:${basePath}`];
    const drawn = await cairn(["visualize", "--pipeline-id", RUN, "--output", "graph.svg", ...store]);
    expect(drawn.code).toBe(0);
    expect(drawn.stderr).toContain(`see cairn validate --pipeline-id ${RUN} --store 'file:${basePath}'`);
    const listed = await cairn(["list", "--pipeline-id", RUN, "--base-path", basePath]);
    expect(listed.stderr).toContain(`run \`cairn validate --pipeline-id ${RUN} --base-path '${basePath}'\``);
  });
});
