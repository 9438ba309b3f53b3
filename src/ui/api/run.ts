/**
 * The run page: the run's summary, its stages with status and duration, a timeline of stage
 * attempts across resumes, the checkpoint chain with each checkpoint's verdict, the recovery
 * point and plan, the resume command and the problems found. One walk of the run (the recovery
 * report's), one read of its timings (the cost model's), nothing re-implemented here.
 */
import {
  CheckpointCorruptError,
  CheckpointNotFoundError,
  InvalidArgumentError,
  KeyMissingError,
} from "../../core/errors.js";
import { assertValidName } from "../../core/ids.js";
import { buildRecoveryReportWithRun, type RecoveryReport } from "../../debug/report.js";
import {
  buildCheckpointGraph,
  buildStageGraph,
  renderStageSvg,
  renderSvg,
} from "../../debug/visualize/index.js";
import { readRun } from "../../manager/cost-history.js";
import type { RunValidation } from "../../manager/run-walk.js";
import type { ApiContext } from "./context.js";
import { type RunRow, runRow } from "./runs.js";

/** One stage of the run. */
export interface StageRow {
  name: string;
  index: number;
  status: "completed" | "failed" | "pending" | "skipped" | "running";
  durationMs: number | null;
  /** Executions seen in the run's timings (a failed one and its re-run after a resume: 2). */
  attempts: number;
  error?: string;
}

/** One execution of a stage, for the timeline. */
export interface Attempt {
  stage: string;
  /** 1 for the stage's first execution in the run. */
  attempt: number;
  /** 0 for the first session of the run, n for the session after its nth resume. */
  session: number;
  start: string;
  /** Null while it runs. */
  end: string | null;
  status: "completed" | "failed" | "running";
  /** Timed by the delta between checkpoints (a run without recorded timings). */
  approximate: boolean;
}

/** One checkpoint of the chain, with the one check's verdict. */
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

/** Where a resume starts and what it would do with each stage. */
export interface Recovery {
  checkpointId: string | null;
  stage: string | null;
  plan: { stage: string; action: "skip" | "run"; reason: string }[];
  /** The recovery report's recommendations, most urgent first. */
  advice: string[];
}

/** Something wrong with the run. */
export interface Problem {
  checkpointId: string | null;
  code: string;
  message: string;
}

/** Everything the run page shows. */
export interface RunDetail {
  summary: RunRow;
  stages: StageRow[];
  timeline: Attempt[];
  chain: ChainNode[];
  recovery: Recovery;
  problems: Problem[];
  resumeCommand: string | null;
}

/** The run page's data; `CAIRN_NOT_FOUND` for a run the store holds nothing of. */
export async function runDetail(ctx: ApiContext, pipelineId: string): Promise<RunDetail> {
  assertValidName("pipelineId", pipelineId);
  const { report, run } = await buildRecoveryReportWithRun(ctx.manager, pipelineId);
  const row = await runRow(ctx, pipelineId);
  if (!row)
    throw new CheckpointNotFoundError(pipelineId, `No pipeline run with id ${JSON.stringify(pipelineId)}`);
  // The walk's word on finishing stands: a corrupt pipeline_complete finishes nothing.
  const summary: RunRow = { ...row, status: report.run.status, finished: report.run.finished };
  const timeline = await timelineOf(ctx, pipelineId, run, report);
  return {
    summary,
    stages: stagesOf(report, run, timeline),
    timeline,
    chain: chainOf(run),
    recovery: recoveryOf(report),
    problems: problemsOf(report, run),
    resumeCommand: report.resumeCommand === null ? null : `${report.resumeCommand}${ctx.storeHint}`,
  };
}

/** The run's stage graph or checkpoint graph as SVG, drawn by `cairn visualize`'s renderers. */
export async function runGraphSvg(ctx: ApiContext, pipelineId: string, kind: string): Promise<string> {
  assertValidName("pipelineId", pipelineId);
  if (kind === "stages") return renderStageSvg(await buildStageGraph(ctx.manager, pipelineId));
  if (kind === "checkpoints") return renderSvg(await buildCheckpointGraph(ctx.manager, pipelineId));
  throw new InvalidArgumentError('kind must be "stages" or "checkpoints"');
}

/**
 * Stage executions from the run's timings, each placed in the session it ran in. A resume
 * continues from a checkpoint C (resumed from n times: n sessions start after it); an execution
 * ran after that resume when C's own `stage_timings` do not record it and it started no earlier
 * than C was written (one C does not record but that started before it was re-run later).
 * Without C's timings (sealed, damaged) the start time alone decides.
 */
async function timelineOf(
  ctx: ApiContext,
  pipelineId: string,
  run: RunValidation,
  report: RecoveryReport,
): Promise<Attempt[]> {
  const read = await readRun(await ctx.manager.getStore(), pipelineId, undefined);
  const resumes: { at: number; count: number; known: Set<string> | undefined }[] = [];
  for (const v of run.checkpoints) {
    if (!v.metadata || v.metadata.resume_count === 0) continue;
    const known = v.status === "valid" ? await knownExecutions(ctx, v.metadata.checkpoint_id) : undefined;
    resumes.push({ at: Date.parse(v.metadata.timestamp), count: v.metadata.resume_count, known });
  }
  const sessionOf = (stage: string, at: number) =>
    resumes.reduce((sum, r) => {
      const after = r.known ? !r.known.has(`${stage}\u0000${at}`) && at >= r.at : at > r.at;
      return sum + (after ? r.count : 0);
    }, 0);
  const observations = [...(read?.observations ?? [])].sort((a, b) => a.at - b.at);
  const seen = new Map<string, number>();
  const attempts = observations.map((o): Attempt => {
    const attempt = (seen.get(o.stageName) ?? 0) + 1;
    seen.set(o.stageName, attempt);
    return {
      stage: o.stageName,
      attempt,
      session: sessionOf(o.stageName, o.at),
      start: new Date(o.at).toISOString(),
      end: new Date(o.at + o.durationMs).toISOString(),
      status: o.failed ? "failed" : "completed",
      approximate: o.approximate,
    };
  });
  // A run a runner holds is executing its next ready stage since its newest checkpoint.
  const running =
    report.run.status === "in_progress" ? report.stageGraph?.nodes.find((n) => n.ready) : undefined;
  if (running && report.run.lastAt) {
    const attempt = (seen.get(running.name) ?? 0) + 1;
    const session = resumes.reduce((sum, r) => sum + r.count, 0);
    attempts.push({
      stage: running.name,
      attempt,
      session,
      start: report.run.lastAt.toISOString(),
      end: null,
      status: "running",
      approximate: true,
    });
  }
  return attempts;
}

/** The executions a checkpoint's `stage_timings` record, as `stage NUL start (ms)`. */
async function knownExecutions(ctx: ApiContext, checkpointId: string): Promise<Set<string> | undefined> {
  let state: Record<string, unknown>;
  try {
    state = (await ctx.manager.loadCheckpoint(checkpointId)).stateData;
  } catch (error) {
    // Unreadable now (damaged or sealed since the walk): the start time decides instead.
    if (error instanceof CheckpointCorruptError || error instanceof KeyMissingError) return undefined;
    throw error;
  }
  const timings = state.stage_timings;
  if (typeof timings !== "object" || timings === null) return undefined;
  const known = new Set<string>();
  for (const [stage, t] of Object.entries(timings)) {
    const start = (t as { started_at?: unknown } | null)?.started_at;
    if (typeof start === "string") known.add(`${stage}\u0000${Date.parse(start)}`);
  }
  return known;
}

/** The stages from the stage graph (else the newest readable checkpoint's lists), with attempts. */
function stagesOf(report: RecoveryReport, run: RunValidation, timeline: readonly Attempt[]): StageRow[] {
  const attemptsOf = (name: string) => timeline.filter((a) => a.stage === name);
  const lastDuration = (name: string): number | null => {
    const done = attemptsOf(name).filter((a) => a.end !== null);
    const last = done.at(-1);
    return last?.end ? Date.parse(last.end) - Date.parse(last.start) : null;
  };
  const nodes = report.stageGraph?.nodes;
  if (nodes) {
    return nodes.map((n): StageRow => {
      const attempts = attemptsOf(n.name);
      const status =
        attempts.some((a) => a.status === "running") && n.state === "pending" ? "running" : n.state;
      return {
        name: n.name,
        index: n.index,
        status,
        durationMs: n.durationMs ?? lastDuration(n.name),
        attempts: attempts.length,
        ...(n.errorMessage !== undefined ? { error: n.errorMessage } : {}),
      };
    });
  }
  const body = run.checkpoints.findLast((v) => v.body !== undefined && v.status !== "gone")?.body;
  if (!body) return [];
  const completed = new Set(body.completed_stages);
  return [...body.completed_stages, ...body.pending_stages].map((name, index) => ({
    name,
    index,
    status: completed.has(name) ? "completed" : "pending",
    durationMs: lastDuration(name),
    attempts: attemptsOf(name).length,
  }));
}

/** Each listed checkpoint with the walk's verdict. */
function chainOf(run: RunValidation): ChainNode[] {
  return run.checkpoints
    .filter((v) => v.status !== "gone")
    .map((v): ChainNode => {
      const m = v.metadata;
      const check: ChainNode["check"] =
        v.status === "valid"
          ? "valid"
          : v.status === "sealed"
            ? "encrypted"
            : v.quarantined
              ? "quarantined"
              : m === undefined
                ? "corrupt"
                : "invalid";
      return {
        checkpointId: v.checkpointId,
        sequence: m?.sequence ?? null,
        stage: m?.stage_name ?? null,
        status: m?.status ?? null,
        timestamp: m?.timestamp ?? null,
        parentId: m?.parent_checkpoint_id ?? null,
        dataSize: m?.data_size ?? null,
        check,
        problems: v.problems.map((p) => p.message),
      };
    });
}

/** The recovery point, and per stage whether a resume from it skips or runs it. */
function recoveryOf(report: RecoveryReport): Recovery {
  const point = report.recoveryPoint;
  const advice = report.recommendations;
  if (report.run.finished || report.thread) {
    return { checkpointId: point?.checkpointId ?? null, stage: point?.stageName ?? null, plan: [], advice };
  }
  const nodes = report.stageGraph?.nodes;
  const names =
    nodes?.map((n) => n.name) ?? (point ? [...point.completedStages, ...point.pendingStages] : []);
  const completed = new Set(point?.completedStages ?? []);
  const plan = names.map((stage) => {
    if (point && completed.has(stage)) {
      return { stage, action: "skip" as const, reason: `completed in checkpoint ${point.checkpointId}` };
    }
    const node = nodes?.find((n) => n.name === stage);
    const reason =
      node?.state === "failed"
        ? `failed${node.errorMessage !== undefined ? `: ${node.errorMessage}` : ""}; runs again`
        : point
          ? "pending"
          : "no checkpoint verifies: a resume starts over";
    return { stage, action: "run" as const, reason };
  });
  return { checkpointId: point?.checkpointId ?? null, stage: point?.stageName ?? null, plan, advice };
}

/** Invalid checkpoints' problems, orphans, lost history and a missing key. */
function problemsOf(report: RecoveryReport, run: RunValidation): Problem[] {
  const problems: Problem[] = [];
  for (const v of run.checkpoints) {
    if (v.status !== "invalid") continue;
    for (const p of v.problems)
      problems.push({ checkpointId: v.checkpointId, code: p.kind, message: p.message });
  }
  for (const o of report.orphaned) {
    problems.push({
      checkpointId: o.checkpointId,
      code: "orphaned",
      message: `its parent ${o.missingParentId} is no longer in the store while older checkpoints are`,
    });
  }
  for (const h of report.history) {
    if (h.problem) problems.push({ checkpointId: null, code: `lost_history`, message: h.message });
  }
  const key = report.statistics.keyMissing ?? report.recoveryKeyMissing;
  if (key) {
    problems.push({
      checkpointId: null,
      code: "key_missing",
      message: `encrypted under ${key.kind} ${key.keyId}, which the console was not given: not verified`,
    });
  }
  return problems;
}
