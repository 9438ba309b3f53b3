/**
 * End to end: the example pipeline (examples/co2e/pipeline.yaml, its agents from agents.js,
 * loaded as `cairn run` loads it) run whole with checkpointing off and on, interleaved, so the
 * difference is what checkpointing adds to a real run: the checkpoint after each stage, the
 * run's lease, and the completion checkpoint. Every run is a fresh run id, so nothing resumes.
 */
import { mkdir } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CheckpointManager,
  Pipeline,
  type PipelineOptions,
  type PipelineResults,
  type StepDefinition,
} from "../../src/index.js";
// The CLI's loader (src/cli/commands/run.ts): the file's steps, agents and options as `cairn run` gets them.
import { loadPipelineOptions } from "../../src/pipeline/from-file.js";
import { compareInRounds, type Variant } from "./measure.js";
import type { EndToEndRow } from "./results.js";
import type { ScenarioContext } from "./scenarios.js";
import { summarize } from "./stats.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const EXAMPLE = join(ROOT, "examples", "co2e", "pipeline.yaml");

/**
 * The file's steps with their input paths made absolute (the file's are relative to its folder)
 * and the outputs it writes (the SQLite database, the report) moved into `out`, so
 * the bench writes nothing into the repository.
 */
function withPaths(steps: StepDefinition[], out: string): StepDefinition[] {
  return steps.map((step) => {
    const inputs = Object.fromEntries(
      Object.entries(step.inputs ?? {}).map(([key, value]) => {
        // `$stage.field` is a reference to an earlier output, not a path.
        if (typeof value !== "string" || value.startsWith("$") || isAbsolute(value)) return [key, value];
        if (key === "database" || key === "report") return [key, join(out, basename(value))];
        return [key, resolve(dirname(EXAMPLE), value)];
      }),
    );
    return { ...step, inputs };
  });
}

/** The example pipeline, writing into `out`; `manager` turns checkpointing on, into that store. */
export async function examplePipeline(
  out: string,
  manager: CheckpointManager | undefined,
  extra: Partial<PipelineOptions> = {},
): Promise<Pipeline> {
  await mkdir(out, { recursive: true });
  const options = await loadPipelineOptions(EXAMPLE, {
    checkpointEnabled: manager !== undefined,
    ...(manager ? { checkpointStore: manager } : {}),
    ...extra,
  });
  return new Pipeline({ ...options, steps: withPaths(options.steps, out) });
}

/** Throws unless the run completed every stage (and, checkpointed, wrote checkpoints). */
function checkRun(what: string, result: PipelineResults, stages: number, checkpointed: boolean): void {
  const done = Object.values(result.stepsResults).filter((r) => r.status === "completed").length;
  if (result.status !== "completed" || done !== stages || result.resumedFrom !== undefined) {
    throw new Error(`${what}: ${result.status}, ${done} of ${stages} stages run in this execution`);
  }
  if (checkpointed !== result.checkpointsCreated > 0) {
    throw new Error(`${what}: ${result.checkpointsCreated} checkpoints written`);
  }
}

/** The example pipeline with checkpointing off vs on, through this store's measured configuration. */
export async function measureEndToEnd(ctx: ScenarioContext): Promise<EndToEndRow> {
  const dir = join(ctx.dir, "e2e");
  // The measured configuration, as every timed cairn operation: for server stores the child's
  // own namespace (tables `e2e_*` in its schema, keys under its prefix), removed at the end.
  const manager = new CheckpointManager(ctx.store.options(dir));
  try {
    const off = await examplePipeline(join(dir, "out-off"), undefined);
    const on = await examplePipeline(join(dir, "out-on"), manager);
    await manager.getStore(); // open and migrate before the clock starts, as in the other scenarios
    const stages = on.stageNames.length;
    let checkpointsPerRun = 0;
    // `resume: false` starts a fresh run every time, without looking for an unfinished one to resume.
    const variants: Variant[] = [
      {
        name: "off",
        run: async () => {
          const result = await off.execute({ resume: false });
          checkRun("checkpointing off", result, stages, false);
          return result;
        },
      },
      {
        name: "on",
        run: async () => {
          const result = await on.execute({ resume: false });
          checkRun("checkpointing on", result, stages, true);
          checkpointsPerRun = result.checkpointsCreated;
          return result;
        },
      },
    ];
    ctx.log(`e2e: ${on.name}, ${stages} stages, checkpointing off vs on`);
    const samples = await compareInRounds(variants, ctx.profile.e2e);
    const row: EndToEndRow = {
      store: ctx.store.name,
      pipeline: on.name,
      stages,
      off: summarize(samples.get("off") ?? []),
      on: summarize(samples.get("on") ?? []),
      checkpointsPerRun,
    };
    ctx.log(
      `e2e: p50 off ${row.off.p50Ms.toFixed(1)} ms, on ${row.on.p50Ms.toFixed(1)} ms, ${checkpointsPerRun} checkpoints per run`,
    );
    await off.close();
    await on.close();
    return row;
  } finally {
    await manager.close();
  }
}
