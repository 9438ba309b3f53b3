/**
 * The read side of the cost model: the observations of a pipeline's newest runs, found through
 * the store's runs-by-name index, each run walked with the one check (`run-walk.ts`) so nothing
 * unverified is trusted. A checkpoint that fails the check is skipped; one encrypted under a key
 * this reader lacks lends only its metadata (stage, status, timestamp) to the timestamp deltas.
 *
 * Two sources per run. Runs that recorded `state_data.stage_timings` (`{ [stage]: { duration_ms,
 * attempts, started_at, checkpoint_ms?, failed? } }`, carried forward from checkpoint to
 * checkpoint) give one observation per distinct execution (stage and `started_at`); a later
 * record of the same execution adds its `checkpoint_ms`. Runs written before timings existed
 * (or whose bodies this reader cannot open) are timed by the delta between consecutive usable
 * checkpoints: approximate (it includes the previous checkpoint's write), and never across a
 * resume, a checkpoint that fails the check, or the first checkpoint of a run.
 */
import { CheckpointCorruptError, FormatTooNewError, InvalidArgumentError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import type { StoredMetadata } from "../core/record.js";
import { PIPELINE_COMPLETE_STAGE } from "../core/types.js";
import {
  buildCostModel,
  type CostModel,
  type CostModelOptions,
  type StageObservation,
} from "../pipeline/cost-model.js";
import type { CheckpointStore } from "../stores/types.js";
import { walkRun } from "./run-walk.js";
import { decodeVerified } from "./verify.js";

/** Runs read by default: the newest 50 of the pipeline. */
export const DEFAULT_COST_RUNS = 50;

/** Options of `CheckpointManager.learnCosts`. */
export interface LearnCostsOptions extends CostModelOptions {
  /** How many of the pipeline's newest runs to read (1–1,000; default {@link DEFAULT_COST_RUNS}). */
  runs?: number;
}

/** A learned cost model with what it was learned from. */
export interface LearnedCosts extends CostModel {
  /**
   * Runs read (newest first), with how each was timed; `newer_format`: a newer cairn wrote it,
   * so nothing of it is read (its own cairn can).
   */
  runs: { pipelineId: string; source: "timings" | "timestamps" | "none" | "newer_format" }[];
  /** Checkpoints passed over: they failed the check (their content is not trusted). */
  skippedCheckpoints: number;
  /** Checkpoints this reader could not open (no key): only their metadata was used. */
  sealedCheckpoints: number;
  /** The observations the model was built from, oldest first. */
  observations: StageObservation[];
}

/** What {@link readRun} found in one run. */
export interface RunRead {
  observations: StageObservation[];
  source: "timings" | "timestamps" | "none";
  skipped: number;
  sealed: number;
}

/** Reads the pipeline's newest runs and builds its cost model. */
export async function learnCosts(
  store: CheckpointStore,
  pipelineName: string,
  options: LearnCostsOptions = {},
): Promise<LearnedCosts> {
  assertValidName("pipelineName", pipelineName);
  const wanted = options.runs ?? DEFAULT_COST_RUNS;
  if (!Number.isInteger(wanted) || wanted < 1 || wanted > 1000) {
    throw new InvalidArgumentError(`runs must be an integer from 1 to 1000, got ${wanted}`);
  }
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listRuns({ pipelineName, limit: wanted, ...(cursor ? { cursor } : {}) });
    for (const run of page.runs) if (ids.length < wanted) ids.push(run.pipelineId);
    cursor = ids.length < wanted ? page.nextCursor : undefined;
  } while (cursor);
  const runs: LearnedCosts["runs"] = [];
  const observations: StageObservation[] = [];
  let skippedCheckpoints = 0;
  let sealedCheckpoints = 0;
  for (const pipelineId of ids) {
    let read: RunRead | undefined;
    try {
      read = await readRun(store, pipelineId, pipelineName);
    } catch (error) {
      // One run a newer cairn wrote does not keep the others from being learned from.
      if (!(error instanceof FormatTooNewError)) throw error;
      runs.push({ pipelineId, source: "newer_format" });
      continue;
    }
    if (read === undefined) continue;
    runs.push({ pipelineId, source: read.source });
    observations.push(...read.observations);
    skippedCheckpoints += read.skipped;
    sealedCheckpoints += read.sealed;
  }
  const model = buildCostModel(pipelineName, observations, options);
  observations.sort((a, b) => a.at - b.at);
  return { ...model, runs, skippedCheckpoints, sealedCheckpoints, observations };
}

/** A usable checkpoint of a run: its metadata, and its decoded state when it verified. */
interface Usable {
  metadata: StoredMetadata;
  state: Record<string, unknown> | undefined;
}

/**
 * The stage executions of one run as the cost model sees them (each with its start, duration,
 * attempts and whether it failed), from recorded timings or else timestamp deltas; `name`, when
 * given, leaves out a run of another pipeline (undefined). The console's timeline reads it too.
 */
export async function readRun(
  store: CheckpointStore,
  pipelineId: string,
  name: string | undefined,
): Promise<RunRead | undefined> {
  const listing = await store.listCheckpoints(pipelineId);
  // Emptied by retention since the index listed it.
  if (listing.length === 0) return undefined;
  // `undefined` in the sequence marks a checkpoint that breaks the timestamp chain.
  const chain: (Usable | undefined)[] = [];
  let skipped = 0;
  let sealed = 0;
  for await (const { verdict, verified } of walkRun(store, pipelineId, { listing, sealed: "report" })) {
    if (verdict.status === "gone") continue;
    const metadata = verdict.metadata;
    // An index rebuilt from other data may list a run of another pipeline under this name.
    if (name !== undefined && metadata !== undefined && metadata.pipeline_name !== name) return undefined;
    if (verdict.status === "sealed" && metadata !== undefined) {
      sealed++;
      chain.push({ metadata, state: undefined });
      continue;
    }
    if (verdict.status !== "valid" || verified === undefined || metadata === undefined) {
      skipped++;
      chain.push(undefined);
      continue;
    }
    let state: Record<string, unknown>;
    try {
      state = decodeVerified(verified).stateData;
    } catch (error) {
      // Verified but its content does not decode: a corrupt checkpoint, skipped like the others.
      if (!(error instanceof CheckpointCorruptError)) throw error;
      skipped++;
      chain.push(undefined);
      continue;
    }
    chain.push({ metadata, state });
  }
  const timed = fromTimings(pipelineId, chain);
  if (timed.length > 0) return { observations: timed, source: "timings", skipped, sealed };
  const deltas = fromTimestamps(pipelineId, chain);
  return { observations: deltas, source: deltas.length > 0 ? "timestamps" : "none", skipped, sealed };
}

const finiteAtLeast = (value: unknown, min: number): value is number =>
  typeof value === "number" && Number.isFinite(value) && value >= min;

/** One entry of `stage_timings`, when it has the recorded shape; anything else is ignored. */
function timingEntry(stageName: string, pipelineId: string, raw: unknown): StageObservation | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const t = raw as Record<string, unknown>;
  const at = typeof t.started_at === "string" ? Date.parse(t.started_at) : Number.NaN;
  if (!finiteAtLeast(t.duration_ms, 0) || Number.isNaN(at)) return undefined;
  return {
    stageName,
    pipelineId,
    at,
    durationMs: t.duration_ms,
    failed: t.failed === true,
    attempts: finiteAtLeast(t.attempts, 1) ? Math.floor(t.attempts) : 1,
    ...(finiteAtLeast(t.checkpoint_ms, 0) ? { checkpointMs: t.checkpoint_ms } : {}),
    approximate: false,
  };
}

/** Distinct executions recorded in the run's verified checkpoints' `stage_timings`. */
function fromTimings(pipelineId: string, chain: readonly (Usable | undefined)[]): StageObservation[] {
  const seen = new Map<string, StageObservation>();
  for (const usable of chain) {
    const timings = usable?.state?.stage_timings;
    if (typeof timings !== "object" || timings === null || Array.isArray(timings)) continue;
    for (const [stageName, raw] of Object.entries(timings)) {
      const o = timingEntry(stageName, pipelineId, raw);
      if (o === undefined) continue;
      const key = `${stageName}\u0000${o.at}`;
      const before = seen.get(key);
      // The same execution carried forward: a later record may add its checkpoint write time.
      seen.set(key, before && o.checkpointMs === undefined && before.checkpointMs !== undefined ? before : o);
    }
  }
  return [...seen.values()];
}

/** Approximate durations from the deltas between consecutive usable checkpoints. */
function fromTimestamps(pipelineId: string, chain: readonly (Usable | undefined)[]): StageObservation[] {
  const observations: StageObservation[] = [];
  for (let i = 1; i < chain.length; i++) {
    const before = chain[i - 1];
    const now = chain[i];
    if (before === undefined || now === undefined) continue;
    const m = now.metadata;
    // Resumed from: the delta spans the pause. The final record is no stage.
    if (before.metadata.resume_count > 0 || m.stage_name === PIPELINE_COMPLETE_STAGE) continue;
    const start = Date.parse(before.metadata.timestamp);
    const end = Date.parse(m.timestamp);
    if (Number.isNaN(start) || Number.isNaN(end) || end < start) continue;
    observations.push({
      stageName: m.stage_name,
      pipelineId,
      at: start,
      durationMs: end - start,
      failed: m.status === "failed",
      attempts: 1,
      approximate: true,
    });
  }
  return observations;
}
