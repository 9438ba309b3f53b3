/**
 * Shapes of the console's HTTP API. The ones the server declares are its own types, imported
 * for their shape only (type imports are erased: nothing of the server is bundled); the rest are
 * what the page needs of answers whose server types carry more.
 */

export type { CheckpointDetail, Lazy } from "../api/checkpoint.js";
export type { Diff } from "../api/compare.js";
export type { Attempt, ChainNode, Problem, Recovery, RunDetail, StageRow } from "../api/run.js";
export type { RunRow, RunsPage } from "../api/runs.js";
export type { AuditEntry, AuditPage } from "../audit.js";
export type { LiveMode } from "../events.js";

/** GET /api/statistics: the page's data and when the server computed it. */
export type Statistics = Timed<StatisticsPage>;

import type { Diff } from "../api/compare.js";
import type { Problem } from "../api/run.js";
import type { StatisticsPage } from "../api/statistics.js";
import type { LiveMode } from "../events.js";
import type { Timed } from "../stats-cache.js";

/** GET /api/session */
export interface Session {
  version: string;
  store: { strategy: string; location: string };
  allowActions: boolean;
  csrfToken: string;
  live: LiveMode;
  user: string;
}

/** One side of a comparison: the checkpoint, whether it verifies, its metadata. */
export interface CompareSide {
  checkpointId: string;
  verified: boolean;
  problems: string[];
  /** Absent when not even its metadata parses. */
  metadata?: Record<string, unknown> | null;
}

/** GET /api/compare */
export interface CompareResult {
  a: CompareSide;
  b: CompareSide;
  state: Diff[];
  /** The state diff stopped at its limit. */
  stateTruncated?: boolean;
  outputs: Diff[];
  stages: { added: string[]; removed: string[] };
  /** What could not be compared, and why. */
  notes?: string[];
}

/** POST /api/actions/validate */
export interface ValidateResult {
  pipelineId: string;
  status: string;
  checkpoints: number;
  invalid: number;
  problems: Problem[];
}

/** POST /api/actions/quarantine */
export interface QuarantineResult {
  quarantined: string[];
  reports: { checkpointId: string; status: string; actions: string[]; backup?: string }[];
}

/** POST /api/actions/cleanup/preview */
export interface CleanupPreview {
  previewId: string;
  /** Until when `previewId` can be executed. */
  expiresAt?: string;
  runs: { pipelineId: string; checkpoints: number; wholeRun?: boolean; reason?: string }[];
  checkpoints: number;
  /** Runs left alone and why (unfinished, in use, busy). */
  skipped?: { pipelineId: string; reason: string }[];
}

/** POST /api/actions/cleanup */
export interface CleanupOutcome {
  removedRuns: string[];
  deletedCheckpoints: string[];
  deletedOutputs: number;
  skipped: { pipelineId: string; reason: string }[];
}

/** The body of an API error response. */
export interface ErrorBody {
  error: { code: string; message: string };
}
