/**
 * Durability modes end to end: the example pipeline (examples/co2e/pipeline.yaml, as the e2e
 * scenario loads it) run whole without checkpoints and checkpointed into the store with
 * `durability` sync, async and exit, the four interleaved in rounds, so each ratio to the run
 * without checkpoints is what that mode adds to a real run. Twice: with the agents as they are
 * (CPU-bound, a few ms each), and with each agent also waiting {@link IO_WAIT_MS} ms before it
 * returns (`CAIRN_EXAMPLE_SLOW_MS`, set in the child only), a stand-in for agents that wait on
 * the network or a disk: the case async is for, since a write can only overlap a stage that
 * yields the event loop.
 */
import { join } from "node:path";
import { CheckpointManager, type Pipeline, type PipelineResults } from "../../src/index.js";
import { examplePipeline } from "./e2e.js";
import { compareInRounds, type Plan, type Variant } from "./measure.js";
import type { ScenarioContext } from "./scenarios.js";
import { type Summary, summarize } from "./stats.js";

const MODES = ["sync", "async", "exit"] as const;

// More rounds than the e2e scenario: the differences measured are a few ms on a ~80 ms run.
const PLANS: Record<"quick" | "full", Plan> = {
  quick: { warmup: 1, rounds: 3, batch: 1 },
  full: { warmup: 2, rounds: 25, batch: 1 },
};

/** The simulated I/O wait of every agent in the second pass, in milliseconds. */
export const IO_WAIT_MS = 20;

/** Results of the durability scenario on one store, for one agent wait. */
export interface DurabilityRow {
  store: string;
  /** Simulated I/O wait per agent (ms); 0: the agents as they are. */
  ioWaitMs: number;
  pipeline: string;
  stages: number;
  /** Without checkpoints (`checkpointEnabled: false`). */
  off: Summary;
  /** Per mode: wall time and checkpoints per run. */
  modes: Record<(typeof MODES)[number], { run: Summary; checkpointsPerRun: number }>;
}

function checkRun(what: string, result: PipelineResults, stages: number): number {
  const done = Object.values(result.stepsResults).filter((r) => r.status === "completed").length;
  if (result.status !== "completed" || done !== stages) {
    throw new Error(`${what}: ${result.status}, ${done} of ${stages} stages run`);
  }
  return result.checkpointsCreated;
}

/** The example pipeline without checkpoints and in each durability mode, on this store, without and with I/O waits. */
export async function measureDurability(ctx: ScenarioContext): Promise<DurabilityRow[]> {
  const rows: DurabilityRow[] = [];
  try {
    for (const ioWaitMs of [0, IO_WAIT_MS]) {
      process.env.CAIRN_EXAMPLE_SLOW_MS = String(ioWaitMs);
      rows.push(await measurePass(ctx, ioWaitMs));
    }
  } finally {
    delete process.env.CAIRN_EXAMPLE_SLOW_MS;
  }
  return rows;
}

async function measurePass(ctx: ScenarioContext, ioWaitMs: number): Promise<DurabilityRow> {
  const dir = join(ctx.dir, `durability-${ioWaitMs}`);
  const manager = new CheckpointManager(ctx.store.options(dir));
  const pipelines: Pipeline[] = [];
  try {
    const off = await examplePipeline(join(dir, "out-off"), undefined);
    pipelines.push(off);
    const stages = off.stageNames.length;
    const checkpoints: Record<string, number> = {};
    const variant = (name: string, pipeline: Pipeline): Variant => ({
      name,
      run: async () => {
        const result = await pipeline.execute({ resume: false });
        checkpoints[name] = checkRun(name, result, stages);
        return result;
      },
    });
    const variants = [variant("off", off)];
    for (const mode of MODES) {
      const pipeline = await examplePipeline(join(dir, `out-${mode}`), manager, { durability: mode });
      pipelines.push(pipeline);
      variants.push(variant(mode, pipeline));
    }
    await manager.getStore(); // open and migrate before the clock starts
    ctx.log(
      `durability: ${off.name}, ${stages} stages, ${ioWaitMs} ms I/O wait per agent, no checkpoints vs sync, async, exit`,
    );
    const samples = await compareInRounds(variants, PLANS[ctx.profile.name]);
    const summary = (name: string) => summarize(samples.get(name) ?? []);
    const row: DurabilityRow = {
      store: ctx.store.name,
      ioWaitMs,
      pipeline: off.name,
      stages,
      off: summary("off"),
      modes: Object.fromEntries(
        MODES.map((m) => [m, { run: summary(m), checkpointsPerRun: checkpoints[m] ?? 0 }]),
      ) as DurabilityRow["modes"],
    };
    const ratio = (m: (typeof MODES)[number]) => (row.modes[m].run.p50Ms / row.off.p50Ms).toFixed(3);
    ctx.log(
      `durability (${ioWaitMs} ms wait): p50 off ${row.off.p50Ms.toFixed(1)} ms; ratio sync ${ratio("sync")}, async ${ratio("async")}, exit ${ratio("exit")}`,
    );
    return row;
  } finally {
    for (const p of pipelines) await p.close();
    await manager.close();
  }
}

/** The Markdown section of the durability scenario: p50 per mode and its ratio to no checkpoints. */
export function durabilitySection(rows: readonly DurabilityRow[]): [string, string, string] {
  const f = (v: number) => v.toFixed(1);
  const r = (row: DurabilityRow, m: (typeof MODES)[number]) =>
    `${(row.modes[m].run.p50Ms / row.off.p50Ms).toFixed(3)}×`;
  const body = [
    "| store | agent I/O wait | no checkpoints p50 ms | sync p50 ms | async p50 ms | exit p50 ms | sync / none | async / none | exit / none | checkpoints per run (sync, async, exit) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...rows.map(
      (row) =>
        `| ${row.store} | ${row.ioWaitMs} ms | ${f(row.off.p50Ms)} | ${f(row.modes.sync.run.p50Ms)} | ${f(row.modes.async.run.p50Ms)} | ${f(row.modes.exit.run.p50Ms)} | ${r(row, "sync")} | ${r(row, "async")} | ${r(row, "exit")} | ${MODES.map((m) => row.modes[m].checkpointsPerRun).join(", ")} |`,
    ),
  ].join("\n");
  return [
    "Durability modes: the example pipeline per mode",
    `\`examples/co2e/pipeline.yaml\` as in the end-to-end scenario, \`execute({ resume: false })\` timed whole without checkpoints and checkpointed into the store with \`durability\` sync, async and exit, the four interleaved in rounds after a warm-up. Every checkpointed run also takes and releases the run's lease and writes the completion checkpoint, which no mode defers: \`execute()\` resolves once the run is durable. Async overlaps a stage's checkpoint write with the next stage, which helps only as far as the write waits on I/O: encoding, hashing and the store client's own work run on the same event loop as the agents, and the example's agents are CPU-bound. The second row per store adds a ${IO_WAIT_MS} ms wait to every agent (\`CAIRN_EXAMPLE_SLOW_MS\`, simulated I/O), the case async is meant for.`,
    body,
  ];
}
