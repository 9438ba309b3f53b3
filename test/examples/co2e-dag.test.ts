/**
 * The CO2e DAG example (examples/co2e-dag): built from its pipeline.yaml, run over the shipped
 * data set in process and with the built CLI. The per-country branches must add up to what the
 * linear CO2e agents compute over every row, run side by side, and show as a graph in
 * `cairn visualize --graph stages` and `cairn report`.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AggregateAgent, ExtractAgent, TransformAgent, ValidateAgent } from "../../examples/co2e/agents.js";
import type { CountryReportOutput } from "../../examples/co2e-dag/agents.js";
import { buildStageGraph } from "../../src/debug/visualize/index.js";
import { CheckpointManager, Pipeline, type PipelineEvent } from "../../src/index.js";
import { runCairn } from "../support/cli.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const PIPELINE = join(ROOT, "examples/co2e-dag/pipeline.yaml");

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-co2e-dag-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Total tonnes CO2e by the linear example's agents over every valid row (no country split). */
async function linearTotal(): Promise<number> {
  const extracted = await new ExtractAgent().process({ source: "data/energy-use.csv" });
  const factors = "data/emission-factors.json";
  const validated = await new ValidateAgent().process({ rows: extracted.rows, factors });
  const transformed = await new TransformAgent().process({ rows: validated.valid, factors });
  return (await new AggregateAgent().process({ rows: transformed.rows })).total_t;
}

describe("examples/co2e-dag", () => {
  it("runs the country branches side by side and joins them into the linear pipeline's totals", async () => {
    const manager = new CheckpointManager({ strategy: "file", config: { basePath: join(dir, "store") } });
    const events: PipelineEvent[] = [];
    // Each agent waits before returning (simulated I/O), so overlapping branches are unmistakable.
    const slow = process.env.CAIRN_EXAMPLE_SLOW_MS;
    process.env.CAIRN_EXAMPLE_SLOW_MS = "50";
    try {
      const pipeline = await Pipeline.fromFile(PIPELINE, {
        checkpointStore: manager,
        onEvent: (e) => events.push(e),
      });
      const results = await pipeline.execute();
      expect(results.status).toBe("completed");
      const report = results.finalOutputs.report as CountryReportOutput;
      expect(Object.keys(report.by_country_t).sort()).toEqual(["GB", "US"]);
      const sum = (report.by_country_t.GB ?? 0) + (report.by_country_t.US ?? 0);
      // Each branch rounds its total to the kilogram: the sum may differ by a kilogram or two.
      expect(Math.abs(sum - (await linearTotal()))).toBeLessThan(0.003);
      expect(report.rows_valid + report.rows_rejected).toBeGreaterThan(0);
      const markdown = await readFile(report.report, "utf8");
      expect(markdown).toContain("| GB |");
      expect(markdown).toContain("| US |");

      // Both branches were in flight together: the second started before the first finished.
      const order = events
        .filter((e) => e.type === "stage_started" || e.type === "stage_completed")
        .map(
          (e) => `${e.type === "stage_started" ? "start" : "end"} ${(e as { stageName: string }).stageName}`,
        );
      const started = ["start transform_gb", "start transform_us"].map((s) => order.indexOf(s));
      const firstEnd = Math.min(order.indexOf("end transform_gb"), order.indexOf("end transform_us"));
      expect(Math.max(...started)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...started)).toBeLessThan(firstEnd);
      // The join waits for both aggregates.
      expect(order.indexOf("start report")).toBeGreaterThan(order.indexOf("end aggregate_gb"));
      expect(order.indexOf("start report")).toBeGreaterThan(order.indexOf("end aggregate_us"));

      const graph = await buildStageGraph(manager, results.pipelineId);
      expect(graph.dependenciesKnown).toBe(true);
      expect(graph.nodes.every((n) => n.state === "completed")).toBe(true);
      expect(graph.edges).toEqual(
        expect.arrayContaining([
          { from: "validate", to: "transform_gb" },
          { from: "validate", to: "transform_us" },
          { from: "aggregate_gb", to: "report" },
          { from: "aggregate_us", to: "report" },
        ]),
      );
      expect(graph.edges).not.toContainEqual({ from: "transform_us", to: "aggregate_gb" });
      expect(graph.edges).toHaveLength(7);
    } finally {
      if (slow === undefined) delete process.env.CAIRN_EXAMPLE_SLOW_MS;
      else process.env.CAIRN_EXAMPLE_SLOW_MS = slow;
      await manager.close();
    }
  });

  it("runs from the CLI, and visualize and report draw its stage graph", async () => {
    const env = { CAIRN_EXAMPLE_SLOW_MS: "150" };
    const run = await runCairn(["run", PIPELINE, "--store", `file:${join(dir, "store")}`], { cwd: dir, env });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    // The plain (non-terminal) progress names the stages in flight.
    expect(run.stdout).toMatch(/▶ transform_us started {2}\[2 running: transform_gb, transform_us\]/);
    const id = /run (co2e_dag_pipeline_\S+) completed/.exec(run.stdout)?.[1] as string;
    expect(id).toBeDefined();

    const store = ["--store", `file:${join(dir, "store")}`];
    const dot = await runCairn(
      ["visualize", "--pipeline-id", id, "--graph", "stages", "-o", "stages.dot", ...store],
      { cwd: dir },
    );
    expect(dot.code).toBe(0);
    const text = await readFile(join(dir, "stages.dot"), "utf8");
    // s2 = validate, s3/s4 = the transforms, s7 = report (definition order).
    expect(text).toContain("s2 -> s3;");
    expect(text).toContain("s2 -> s4;");
    expect(text).toContain("s5 -> s7;");
    expect(text).toContain("s6 -> s7;");
    expect(text).not.toContain("s3 -> s4;");

    const report = await runCairn(["report", "--pipeline-id", id, ...store], { cwd: dir });
    expect(report.code).toBe(0);
    expect(report.stdout).toMatch(/Stage graph \(checkpoint #8\)/);
    expect(report.stdout).toMatch(/report: +✓ completed · [\d.]+ m?s; after aggregate_gb, aggregate_us/);
  });
});
