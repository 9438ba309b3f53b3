/** The shapes a child prints as JSON and the parent renders: one row per measured variant. */

import type { AtRestResult } from "./at-rest.js";
import type { DagRow } from "./dag.js";
import type { DurabilityRow } from "./durability.js";
import type { ScenarioName } from "./options.js";
import type { Sent } from "./requests.js";
import { type Summary, summarize } from "./stats.js";

/** One measured variant of one case of one scenario on one store. */
export interface Row {
  scenario: ScenarioName;
  store: string;
  /** The case within the scenario: a payload label (`1 MB`) or a run length (`1000`). */
  case: string;
  /** `cairn`, `raw`, later `langgraph`... */
  variant: string;
  summary: Summary;
  /** Resume only: seconds it took to fill the run (durability off, see the report notes). */
  fillSeconds?: number;
  /** HTTP stores: requests and round trips of one operation, counted outside the timed samples. */
  requests?: Sent;
  /** Write rows of HTTP stores: the same for the first checkpoint of a fresh run. */
  firstRequests?: Sent;
}

/** What a child prints for its store. */
export interface StoreResult {
  store: string;
  durability: string;
  rawFloor: string;
  /** Server stores: the server measured (`PostgreSQL 15.2 at postgres://...`), without credentials. */
  server?: string;
  /** Set when the store was not measured (its server did not answer): why. */
  skipped?: string;
  rows: Row[];
  /** Scenarios the store does not run, each with why (see BenchStore.skips). */
  skippedScenarios?: Partial<Record<ScenarioName, string>>;
  /** The growth scenario's runs (growth.ts). */
  growth?: GrowthRow[];
  /** The end-to-end scenario (e2e.ts). */
  e2e?: EndToEndRow;
  /** The start-up scenario (startup.ts). */
  startup?: StartupRow;
  /** The walks scenario (walks.ts). */
  walks?: WalksRow;
  /** The at-rest scenario (at-rest.ts). */
  atRest?: AtRestResult;
  /** The DAG scenario (dag.ts); only with `--scenario dag`. */
  dag?: DagRow;
  /** The durability scenario (durability.ts); only with `--scenario durability`. */
  durabilityModes?: DurabilityRow[];
  seconds: number;
}

/** One growth run: `stages` checkpoints, each adding a ~100 KB output, written once by each side. */
export interface GrowthRow {
  store: string;
  stages: number;
  /** Bytes of the outputs' JSON, summed over the stages (each output counted once). */
  outputBytes: number;
  /** What a layout storing every output in every checkpoint would hold (computed, not written). */
  naiveBytes: number;
  cairnSeconds: number;
  cairnBytes: number;
  /** How `cairnBytes` was measured. */
  cairnBytesMethod: string;
  langgraphSeconds?: number;
  langgraphBytes?: number;
  langgraphBytesMethod?: string;
  /** The same run as a LangGraph thread through CairnSaver on this store (issue 19). */
  saverSeconds?: number;
  saverBytes?: number;
  saverBytesMethod?: string;
  /** Resume on the run just written, when `stages` is the profile's grown-resume length. */
  resume?: GrownResume;
}

/** Latency of loading the newest checkpoint (with every output) of a grown run, read by a fresh reader. */
export interface GrownResume {
  /** `loadLatestCheckpoint`: found and verified (checksum, every output hash); outputs decode on read. */
  cairn: Summary;
  /** The same load, then every output read (decoded), as LangGraph's getTuple returns them. */
  cairnDecoded?: Summary;
  langgraph?: Summary;
  /** CairnSaver's `getTuple` through a fresh saver on the thread written beside cairn's run. */
  saver?: Summary;
}

/** The example pipeline run whole with checkpointing off and on, through one store. */
export interface EndToEndRow {
  store: string;
  pipeline: string;
  stages: number;
  /** Run time of `execute()` with checkpointing off / on, milliseconds. */
  off: Summary;
  on: Summary;
  /** Checkpoints one run with checkpointing on writes (`checkpointsCreated`). */
  checkpointsPerRun: number;
}

/** `execute()` start-up (until the first stage begins) by the number of other runs in the store. */
export interface StartupRow {
  store: string;
  points: { others: number; fillSeconds: number; summary: Summary }[];
}

/** Walks of runs of growing length (issue 11): one point per run length. */
export interface WalksRow {
  store: string;
  points: {
    checkpoints: number;
    fillSeconds: number;
    validateMs: number;
    analyzeMs: number;
    /** File store only: `exportPipeline` of the run. */
    exportMs?: number | undefined;
    /** New writes at the end of the run. */
    write: Summary;
  }[];
}

/** What a full run saves as JSON and renders as Markdown. */
export interface RunReport {
  date: string;
  profile: string;
  machine: Record<string, string>;
  plans: Record<string, unknown>;
  payloads: { label: string; records: number; jsonBytes: number }[];
  stores: StoreResult[];
  failures: string[];
  seconds: number;
}

/** Turns the samples of compared variants into rows. */
export function toRows(
  scenario: ScenarioName,
  store: string,
  caseLabel: string,
  samples: Map<string, number[]>,
): Row[] {
  return [...samples].map(([variant, ms]) => ({
    scenario,
    store,
    case: caseLabel,
    variant,
    summary: summarize(ms),
  }));
}
