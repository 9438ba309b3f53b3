/**
 * Makes the checkpoint graph pictures of the README (docs/checkpoint-graph.png and .svg) from
 * the CO2e example: the run fails once in `transform` (a simulated outage), is resumed from the
 * failed checkpoint, and completes. Run from anywhere with:
 *
 *   npx tsx docs/make-graph.ts
 *
 * The store and the example's database and report go to /tmp/cairn-doc (wiped first).
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildCheckpointGraph, renderPng, renderSvg } from "../src/debug/visualize/index.js";
import { type AgentObject, CheckpointManager, Pipeline, StageFailedError } from "../src/index.js";
import { loadPipelineOptions } from "../src/pipeline/from-file.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const work = "/tmp/cairn-doc";
const store = `file:${join(work, "store")}`;

/** Wraps an agent so that its first call fails, as a flaky upstream service would. */
function failOnce(agent: AgentObject, message: string): AgentObject {
  let failed = false;
  return {
    name: agent.name,
    version: agent.version,
    process: (inputs, ctx) => {
      if (!failed) {
        failed = true;
        throw new Error(message);
      }
      return agent.process(inputs, ctx);
    },
  };
}

process.chdir(root); // the example's data paths are relative to the repository root
process.env.CAIRN_EXAMPLE_SLOW_MS = "0";
await rm(work, { recursive: true, force: true });
await mkdir(join(work, "out"), { recursive: true });

const options = await loadPipelineOptions("examples/co2e/pipeline.yaml", { checkpointStore: store });
const transform = options.agents?.TransformAgent as AgentObject;
options.agents = {
  ...options.agents,
  TransformAgent: failOnce(transform, 'emission-factor service timed out after 30 s (simulated "outage")'),
};
// Keep the example's database and report out of the repository.
for (const step of options.steps) {
  if (step.inputs?.database) step.inputs.database = join(work, "out/co2e.db");
  if (step.inputs?.report) step.inputs.report = join(work, "out/co2e-report.md");
}
const pipeline = new Pipeline(options);

try {
  await pipeline.execute();
  throw new Error("the first run was meant to fail");
} catch (error) {
  if (!(error instanceof StageFailedError)) throw error;
  console.log(`first run failed in ${error.stageName}: ${(error.cause as Error).message}`);
}
const results = await pipeline.execute(); // resumes the failed run from its checkpoint
console.log(`run ${results.pipelineId} ${results.status}, resumed from ${results.resumedFrom}`);

const manager = new CheckpointManager({ store });
try {
  const graph = await buildCheckpointGraph(manager, results.pipelineId);
  const svg = renderSvg(graph);
  await writeFile(join(root, "docs/checkpoint-graph.svg"), svg);
  await writeFile(join(root, "docs/checkpoint-graph.png"), await renderPng(svg, { zoom: 1.5 }));
  console.log(`wrote docs/checkpoint-graph.svg and docs/checkpoint-graph.png (${graph.nodes.length} nodes)`);
} finally {
  await manager.close();
}
