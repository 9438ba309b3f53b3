/** What the fleet harness (worker-fleet.ts) and its worker processes (worker-process.ts) share. */
import type { WorkerConnection, WorkerEngine } from "../../src/workers/types.js";

/** What the fleet harness passes to each worker process. */
export interface WorkerProcessConfig {
  engine: WorkerEngine;
  connection: WorkerConnection;
  queue: string;
  /** The checkpoint store's URL (a shared one: postgres or redis). */
  store: string;
  leaseTtlMs: number;
  concurrency: number;
  /** The journal file the stages append to. */
  journal: string;
}

/** The stages of the fleet pipeline. */
export const FLEET_STAGES = ["s1", "s2", "s3", "s4", "s5"] as const;
/** The fleet pipeline's name. */
export const FLEET_PIPELINE = "fleet";

/** One line of the journal: a stage of a run started or finished in a worker process. */
export interface JournalEntry {
  ev: "start" | "finish";
  run: string;
  stage: string;
  pid: number;
  /** Date.now() in the worker. */
  t: number;
}

/** A run's inputs: how long each stage takes (`stageMs`, default 20), and some slower (`slow: { s3: 2000 }`). */
export interface FleetInputs {
  stageMs?: number;
  slow?: Partial<Record<(typeof FLEET_STAGES)[number], number>>;
}
