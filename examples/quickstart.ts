/**
 * Quickstart: checkpoints on the default file store (.cairn/checkpoints), a hand-made
 * corruption, and a resume that falls back to the newest checkpoint that still verifies.
 *
 *   npm run example
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointManager, DEFAULT_BASE_PATH, newRunId } from "../src/index.js";

const manager = new CheckpointManager(); // strategy "file" at .cairn/checkpoints, or CAIRN_STORE
const pipelineId = newRunId("quickstart");
const stages = ["extract", "transform", "load"];

const readings = [
  { site: "plant-a", fuel: "diesel", litres: 1200, at: new Date("2024-01-31T00:00:00Z") },
  { site: "plant-b", fuel: "natural_gas", m3: 5400, at: new Date("2024-01-31T00:00:00Z") },
];
const outputs: Record<string, unknown> = {};

async function checkpoint(index: number, output: unknown) {
  const stage = stages[index] as string;
  outputs[stage] = output;
  const id = await manager.createCheckpoint({
    pipelineId,
    pipelineName: "quickstart",
    stageName: stage,
    stageIndex: index,
    stateData: { inputs: { month: "2024-01" } },
    completedStages: stages.slice(0, index + 1),
    pendingStages: stages.slice(index + 1),
    agentOutputs: { ...outputs },
    status: "completed",
  });
  console.log(`checkpoint after ${stage}: ${id}`);
  return id;
}

// 1. Two stages run and checkpoint.
await checkpoint(0, { readings });
const transformId = await checkpoint(1, {
  kgCo2e: new Map([
    ["plant-a", 3216],
    ["plant-b", 10_098],
  ]),
});

// 2. Somebody edits the newest checkpoint file by hand.
const runDir = join(DEFAULT_BASE_PATH, pipelineId);
const file = (await readdir(runDir)).find((name) => name.endsWith(`-${transformId}.json`)) as string;
const text = await readFile(join(runDir, file), "utf8");
await writeFile(join(runDir, file), text.replace('"month":"2024-01"', '"month":"2024-02"'));
console.log(`\nedited ${join(runDir, file)} by hand`);

const validation = await manager.validateCheckpoint(transformId);
console.log(`validate: ${validation.valid ? "valid" : "INVALID"}`);
for (const problem of validation.problems) console.log(`  - ${problem.kind}: ${problem.message}`);

// 3. Resume: the edited checkpoint is refused; the run continues from the newest valid one.
const resume = await manager.resumePipeline(pipelineId);
if (!resume) throw new Error("nothing to resume");
console.log(`\nresuming ${pipelineId} from ${resume.checkpointId}`);
console.log(`  completed: ${resume.completedStages.join(", ")}; next: ${resume.resumeFromStage}`);
console.log(`  restored extract output: ${JSON.stringify(resume.agentOutputs.extract)}`);

for (const key of Object.keys(outputs)) if (!(key in resume.agentOutputs)) delete outputs[key];
await checkpoint(1, {
  kgCo2e: new Map([
    ["plant-a", 3216],
    ["plant-b", 10_098],
  ]),
});
await checkpoint(2, { rowsWritten: 2 });
await manager.createCheckpoint({
  pipelineId,
  pipelineName: "quickstart",
  stageName: "pipeline_complete",
  stageIndex: stages.length,
  completedStages: stages,
  agentOutputs: outputs,
  status: "completed",
});

console.log(`\n${await manager.visualizeCheckpointChain(pipelineId)}`);
const stats = await manager.getStatistics();
console.log(
  `store: ${stats.storageStrategy}, ${stats.totalCheckpoints} checkpoints in ${stats.totalPipelines} run(s), ` +
    `resume success rate ${stats.resumeSuccessRate ?? "n/a"}`,
);
await manager.close();
