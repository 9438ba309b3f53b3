/** Runs built through the library in a file store, and the hand edits an operator makes. */
import { readFile, writeFile } from "node:fs/promises";
import { CheckpointManager, type CheckpointStatusValue } from "../../src/index.js";
import { checkpointFile } from "../support/file-store.js";

export const STAGES = ["extract", "transform", "load", "report"] as const;

/** A manager on a file store whose clock ticks one second per call, from `start`. */
export function fileManager(basePath: string, start = Date.now() - 3_600_000): CheckpointManager {
  let now = start;
  return new CheckpointManager({
    strategy: "file",
    config: { basePath, fsync: false },
    clock: () => {
      now += 1000;
      return new Date(now);
    },
  });
}

/** Writes one checkpoint per stage of `stages` (each stage's output distinct); returns the ids. */
export async function writeStages(
  manager: CheckpointManager,
  pipelineId: string,
  count: number,
  options: { status?: CheckpointStatusValue; errorMessage?: string; pipelineName?: string } = {},
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const stage = STAGES[i % STAGES.length] as string;
    const completed = STAGES.slice(0, Math.min(i + 1, STAGES.length));
    ids.push(
      await manager.createCheckpoint({
        pipelineId,
        pipelineName: options.pipelineName ?? "etl",
        stageName: stage,
        stageIndex: i % STAGES.length,
        stateData: { source: "orders.csv", step: i },
        completedStages: [...completed],
        pendingStages: STAGES.slice(completed.length),
        agentOutputs: Object.fromEntries(completed.map((s) => [s, { stage: s, rows: [1, 2, 3] }])),
        status: options.status ?? "completed",
        ...(options.errorMessage !== undefined ? { errorMessage: options.errorMessage } : {}),
      }),
    );
  }
  return ids;
}

/** Changes a value inside the checkpoint's `"body"`, the way a hand edit does. */
export { checkpointFile };

export async function editBody(basePath: string, pipelineId: string, checkpointId: string): Promise<void> {
  const path = await checkpointFile(basePath, pipelineId, checkpointId);
  const text = await readFile(path, "utf8");
  const body = text.indexOf('"body":');
  const at = text.indexOf("orders.csv", body);
  if (body < 0 || at < 0) throw new Error(`no body value to edit in ${path}`);
  await writeFile(path, `${text.slice(0, at)}ORDERS.csv${text.slice(at + "orders.csv".length)}`);
}
