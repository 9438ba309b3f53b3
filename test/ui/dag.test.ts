/**
 * The run page of a DAG pipeline: three roots side by side and a join. The stage graph draws the
 * fan-in (every root an edge into the join), the stage table has each stage once, and the
 * timeline shows the roots overlapping in time, as they ran.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import { type ApiContext, runDetail, runGraphSvg } from "../../src/ui/api/index.js";
import { freshStores } from "../support/fresh-stores.js";

const fresh = freshStores("ui-dag");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ROOTS = ["extract_de", "extract_fr", "extract_pl"];

describe("a DAG run in the console", () => {
  let manager: CheckpointManager;
  let ctx: ApiContext;
  let runId: string;

  beforeAll(async () => {
    manager = new CheckpointManager({ store: fresh.sqlite() });
    ctx = { manager, storeHint: "" };
    const pipeline = new Pipeline({
      name: "co2e_by_country",
      checkpointEnabled: true,
      checkpointStore: manager,
      maxConcurrency: 4,
      steps: [
        ...ROOTS.map((name) => ({
          name,
          dependsOn: [],
          agent: async () => {
            await sleep(60);
            return { rows: [name] };
          },
        })),
        {
          name: "report",
          dependsOn: ROOTS,
          agent: () => ({ rows: 3 }),
        },
      ],
    });
    const result = await pipeline.execute({});
    runId = result.pipelineId;
  });
  afterAll(async () => {
    await manager?.close();
  });

  it("draws every root with an edge into the join", async () => {
    const svg = await runGraphSvg(ctx, runId, "stages");
    for (const name of [...ROOTS, "report"]) expect(svg).toContain(name);
    // One edge per dependency: three into report, none between the roots.
    expect(svg.match(/<path class="edge"/g) ?? []).toHaveLength(3);
    for (const root of ROOTS) expect(svg).toContain(`data-from="${root}" data-to="report"`);
  });

  it("lists each stage once, completed, and times the roots as overlapping", async () => {
    const detail = await runDetail(ctx, runId);
    expect(detail.stages.map((s) => [s.name, s.status])).toEqual([
      ...ROOTS.map((name) => [name, "completed"]),
      ["report", "completed"],
    ]);
    const roots = detail.timeline.filter((a) => ROOTS.includes(a.stage));
    expect(roots).toHaveLength(3);
    const starts = roots.map((a) => Date.parse(a.start));
    const ends = roots.map((a) => Date.parse(a.end ?? a.start));
    // They ran side by side: each started before any of them ended.
    expect(Math.max(...starts)).toBeLessThan(Math.min(...ends));
  });
});
