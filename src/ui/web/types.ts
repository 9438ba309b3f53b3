/** Shapes of the console's HTTP API (docs: /work/briefs/ui-design.md "HTTP API"). */

/** How the page learns about changes: the server's change feed or a poll interval. */
export type LiveMode = { mode: "feed" } | { mode: "poll"; intervalMs: number };

/** GET /api/session */
export interface Session {
  version: string;
  store: { strategy: string; location: string };
  allowActions: boolean;
  csrfToken: string;
  live: LiveMode;
  user: string;
}

/** One row of the runs table. */
export interface RunRow {
  pipelineId: string;
  pipelineName: string;
  status: string;
  finished: boolean;
  stagesDone: number;
  stagesTotal: number;
  checkpoints: number;
  corrupt: number;
  sizeBytes: number;
  lastUpdate: string | null;
  firstTimestamp: string | null;
  resumeCount: number;
  /** Encrypted under a key the server was not given: values and checks unavailable. */
  encrypted?: boolean;
  thread?: { threadId: string; namespace: string };
}

/** GET /api/runs */
export interface RunsPage {
  runs: RunRow[];
  nextCursor?: string;
  scanned: number;
  mode: "index" | "ids";
}

/** One stage of a run. */
export interface StageRow {
  name: string;
  index: number;
  status: "completed" | "failed" | "pending" | "skipped" | "running";
  durationMs: number | null;
  attempts: number;
  error?: string;
}

/** One stage attempt on the Gantt timeline. */
export interface Attempt {
  stage: string;
  attempt: number;
  /** 0 for the first run, n for the nth resume. */
  session: number;
  start: string;
  end: string | null;
  status: string;
  /** Timed by the delta between checkpoints (a run without recorded timings). */
  approximate?: boolean;
}

/** One checkpoint of a run's chain. */
export interface ChainNode {
  /** Null for a stored entry whose id cannot be told. */
  checkpointId: string | null;
  sequence: number | null;
  stage: string | null;
  status: string | null;
  timestamp: string | null;
  parentId: string | null;
  dataSize: number | null;
  check: "valid" | "invalid" | "corrupt" | "quarantined" | "encrypted";
  problems: string[];
}

/** The recommended recovery point and what resuming from it does. */
export interface Recovery {
  checkpointId: string | null;
  stage: string | null;
  plan: { stage: string; action: string; reason: string }[];
  /** The recovery report's recommendations, most urgent first. */
  advice?: string[];
}

/** A problem found in a run or checkpoint. */
export interface Problem {
  checkpointId: string | null;
  code: string;
  message: string;
}

/** GET /api/runs/:id */
export interface RunDetail {
  summary: RunRow;
  stages: StageRow[];
  timeline: Attempt[];
  chain: ChainNode[];
  recovery: Recovery;
  problems: Problem[];
  resumeCommand: string | null;
}

/** A value shown inline, or fetched from `url` when the viewer expands it. */
export type Lazy = { inline: unknown } | { lazy: true; size: number; url: string };

/** GET /api/checkpoints/:cid */
export interface CheckpointDetail {
  /** Null when not even the metadata parses (and then no stages, values or export). */
  metadata: Record<string, unknown> | null;
  completedStages: string[] | null;
  pendingStages: string[] | null;
  provenance: Record<string, string> | null;
  validation: { status: string; problems: unknown[] };
  encrypted: boolean;
  /** Null when the checkpoint does not verify or is encrypted without its key. */
  state: Lazy | null;
  /** `size` and `url` null when the output cannot be served (not verified, no key). */
  outputs: { name: string; hash: string; size: number | null; url: string | null }[];
  /** Null when the checkpoint cannot be exported (it does not verify). */
  exportUrl: string | null;
}

/** One difference between two checkpoints. */
export interface Diff {
  path: (string | number)[];
  kind: "added" | "removed" | "changed";
  before?: unknown;
  after?: unknown;
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

/** GET /api/statistics */
export interface Statistics {
  totals: {
    runs: number;
    checkpoints: number;
    completed: number;
    active: number;
    failed: number;
    corrupt: number;
    storedBytes: number;
  };
  resumes: { resumedRuns: number; resumedCompleted: number; successRate: number | null };
  series: { t: string; pipelineId: string; stage: string; size: number; stageMs: number | null }[];
  byStatus: Record<string, number>;
  /** When the server computed this (it reads every run: it keeps the answer a minute). */
  computedAt?: string;
  computeMs?: number;
}

/** One line of the audit trail. */
export interface AuditEntry {
  at: string;
  user: string;
  client: string;
  action: string;
  target: { pipelineId?: string; checkpointId?: string };
  outcome: "requested" | "done" | "failed";
  detail?: unknown;
  prev: string;
  hash: string;
}

/** GET /api/audit */
export interface AuditPage {
  entries: AuditEntry[];
  nextBefore?: string;
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
