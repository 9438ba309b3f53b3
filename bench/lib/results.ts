/** The shapes a child prints as JSON and the parent renders: one row per measured variant. */
import type { ScenarioName } from "./options.js";
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
  seconds: number;
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
