/** Helpers of the DAG tests: a pipeline of stages that sleep, trace their calls and may fail. */
import type { CheckpointManager, PipelineCheckpoint } from "../../src/index.js";
import { Pipeline, type PipelineOptions, type StepDefinition } from "../../src/index.js";

/** One stage of a test graph. */
export interface NodeSpec {
  name: string;
  dependsOn?: string[];
  /** How long the agent sleeps (real timers). */
  delayMs?: number;
  /** The agent's version (default "1"). */
  version?: string;
  inputs?: Record<string, unknown>;
  /** More step fields (retries, outputVersion, migrateOutput...). */
  extra?: Partial<StepDefinition>;
}

/** What the agents did, in the order it happened. */
export interface Trace {
  /** Stage names in the order their agents were called. */
  calls: string[];
  /** Stage names in the order their agents returned or threw. */
  ends: string[];
  /** Most agents running at once. */
  maxActive: number;
  active: number;
}

export const newTrace = (): Trace => ({ calls: [], ends: [], maxActive: 0, active: 0 });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Test hooks: stages that throw, and a callback when a stage starts. */
export interface GraphHooks {
  fail?: readonly string[];
  /** Stages whose first N attempts throw. */
  flaky?: Readonly<Record<string, number>>;
  onStart?: (stage: string) => void;
}

/** A pipeline over `nodes` on `manager`, each agent tracing into `trace`. */
export function graphPipeline(
  manager: CheckpointManager,
  nodes: readonly NodeSpec[],
  trace: Trace,
  hooks: GraphHooks = {},
  options: Partial<PipelineOptions> = {},
): Pipeline {
  const steps = nodes.map(
    (n): StepDefinition => ({
      name: n.name,
      ...(n.dependsOn ? { dependsOn: n.dependsOn } : {}),
      ...(n.inputs ? { inputs: n.inputs } : {}),
      ...n.extra,
      agent: {
        name: `Node-${n.name}`,
        version: n.version ?? "1",
        process: async (inputs, ctx) => {
          trace.calls.push(ctx.stageName);
          trace.active++;
          trace.maxActive = Math.max(trace.maxActive, trace.active);
          hooks.onStart?.(ctx.stageName);
          try {
            await sleep(n.delayMs ?? 5);
            if (hooks.fail?.includes(ctx.stageName)) throw new Error(`${ctx.stageName} broke`);
            if (ctx.attempt <= (hooks.flaky?.[ctx.stageName] ?? 0))
              throw new Error(`${ctx.stageName} flaked`);
            return { stage: ctx.stageName, seen: inputs };
          } finally {
            trace.active--;
            trace.ends.push(ctx.stageName);
          }
        },
      },
    }),
  );
  return new Pipeline({ name: "dag", checkpointEnabled: true, checkpointStore: manager, steps, ...options });
}

/** Every checkpoint of a run, oldest first. */
export async function checkpointsOf(
  manager: CheckpointManager,
  runId: string,
): Promise<PipelineCheckpoint[]> {
  const history = await manager.getCheckpointHistory(runId);
  const sorted = [...history].sort((a, b) => a.sequence - b.sequence);
  return Promise.all(sorted.map((m) => manager.loadCheckpoint(m.checkpointId)));
}

/** The diamond a → (b, c) → d. */
export const DIAMOND: NodeSpec[] = [
  { name: "a" },
  { name: "b", dependsOn: ["a"], inputs: { x: "$a.stage" } },
  { name: "c", dependsOn: ["a"], inputs: { x: "$a.stage" } },
  { name: "d", dependsOn: ["b", "c"], inputs: { b: "$b.stage", c: "$c.stage" } },
];
