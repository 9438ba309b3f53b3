/**
 * The spans and metrics of checkpoint writes and loads (`cairn.checkpoint.write`,
 * `cairn.checkpoint.load`), of lost leases and of corrupt records found. Each is a child of
 * the run's stage or run span when the run is executing in this process, a root span (or a
 * child of the caller's active span) otherwise, as for direct `CheckpointManager` use.
 */
import type { Context, Span } from "@opentelemetry/api";
import { LeaseLostError } from "../core/errors.js";
import { type Otel, otel, otelNow } from "./api.js";
import { ATTR, metricAttributes, recordError } from "./attributes.js";
import { instruments, tracer } from "./instruments.js";
import { activeRun } from "./runs.js";
import { activeSinks, emit, type MetricsSink, sinkAttributes } from "./sink.js";

/** What a checkpoint write is about. */
export interface WriteSubject {
  store: string;
  pipelineId: string;
  pipelineName: string;
  stageName: string;
  status: string;
}

const seconds = (since: number) => (performance.now() - since) / 1000;

function parentOf(api: Otel, pipelineId: string | undefined, stageName?: string): Context {
  const run = pipelineId !== undefined ? activeRun(pipelineId) : undefined;
  return run?.parentOf(stageName) ?? api.context.active();
}

/** A write measured for the metrics sinks only (no OpenTelemetry): timed and counted, no span. */
async function sinkWrite(
  sinks: readonly MetricsSink[],
  subject: WriteSubject,
  write: () => Promise<string>,
  sizeOf: (checkpointId: string) => number | undefined,
): Promise<string> {
  const { store, pipelineId, pipelineName } = subject;
  const began = performance.now();
  try {
    const checkpointId = await write();
    const bytes = sizeOf(checkpointId);
    const attrs = sinkAttributes(pipelineName, store);
    emit(sinks, (sink) => sink.checkpointWritten(attrs, bytes, seconds(began)));
    return checkpointId;
  } catch (error) {
    if (error instanceof LeaseLostError) recordLeaseLoss(pipelineId, store, pipelineName);
    throw error;
  }
}

/**
 * Writes a checkpoint under a `cairn.checkpoint.write` span and counts it; `sizeOf` gives the
 * written checkpoint's data size. Without telemetry and metrics sinks, only `write()` runs.
 */
export async function traceWrite(
  subject: WriteSubject,
  write: () => Promise<string>,
  sizeOf: (checkpointId: string) => number | undefined,
): Promise<string> {
  const api = await otel();
  const sinks = activeSinks();
  if (!api) return sinks ? sinkWrite(sinks, subject, write, sizeOf) : write();
  const { store, pipelineId, pipelineName, stageName } = subject;
  const span = tracer(api).startSpan(
    "cairn.checkpoint.write",
    {
      attributes: {
        [ATTR.pipeline]: pipelineName,
        [ATTR.runId]: pipelineId,
        [ATTR.stage]: stageName,
        [ATTR.store]: store,
        [ATTR.status]: subject.status,
      },
    },
    parentOf(api, pipelineId, stageName),
  );
  const began = performance.now();
  try {
    const checkpointId = await write();
    const bytes = sizeOf(checkpointId);
    const attributes = metricAttributes(pipelineName, store);
    const meters = instruments(api);
    const took = seconds(began);
    meters.checkpointsWritten.add(1, attributes);
    meters.writeDuration.record(took, attributes);
    if (bytes !== undefined) meters.bytesWritten.add(bytes, attributes);
    if (sinks) {
      const attrs = sinkAttributes(pipelineName, store);
      emit(sinks, (sink) => sink.checkpointWritten(attrs, bytes, took));
    }
    span.setAttributes({
      [ATTR.checkpointId]: checkpointId,
      ...(bytes !== undefined ? { [ATTR.bytes]: bytes } : {}),
    });
    return checkpointId;
  } catch (error) {
    recordError(api, span, error);
    if (error instanceof LeaseLostError) recordLeaseLoss(pipelineId, store, pipelineName);
    throw error;
  } finally {
    span.end();
  }
}

/** What a load reports back: the checkpoint loaded (if any) and the corrupt records it passed. */
export interface LoadOutcome {
  pipelineName?: string | undefined;
  pipelineId?: string | undefined;
  checkpointId?: string | undefined;
  bytes?: number | undefined;
  corrupt: number;
}

/**
 * Loads under a `cairn.checkpoint.load` span, timing it and counting the corrupt records it
 * found; `outcomeOf` describes the result, `corruptOf` a corrupt-record error the load threw.
 */
export async function traceLoad<T>(
  store: string,
  pipelineId: string | undefined,
  load: () => Promise<T>,
  outcomeOf: (result: T) => LoadOutcome,
  corruptOf: (error: unknown) => LoadOutcome | undefined,
): Promise<T> {
  const api = await otel();
  const sinks = activeSinks();
  if (!api) return sinks ? sinkLoad(sinks, store, pipelineId, load, outcomeOf, corruptOf) : load();
  const attributes = {
    [ATTR.store]: store,
    ...(pipelineId !== undefined ? { [ATTR.runId]: pipelineId } : {}),
  };
  const span = tracer(api).startSpan("cairn.checkpoint.load", { attributes }, parentOf(api, pipelineId));
  const began = performance.now();
  let outcome: LoadOutcome | undefined;
  try {
    const result = await load();
    outcome = outcomeOf(result);
    return result;
  } catch (error) {
    outcome = corruptOf(error);
    recordError(api, span, error);
    throw error;
  } finally {
    const name = loadedName(outcome, pipelineId);
    const metric = metricAttributes(name, store);
    const took = seconds(began);
    instruments(api).loadDuration.record(took, metric);
    if (outcome) describeLoad(api, span, outcome, metric);
    span.end();
    if (sinks) loadMeasured(sinks, name, store, took, outcome?.corrupt ?? 0);
  }
}

/** The pipeline name of a load: what it loaded says, else the run executing here. */
function loadedName(outcome: LoadOutcome | undefined, pipelineId: string | undefined): string | undefined {
  return (
    outcome?.pipelineName ?? (pipelineId !== undefined ? activeRun(pipelineId)?.pipelineName : undefined)
  );
}

function loadMeasured(
  sinks: readonly MetricsSink[],
  name: string | undefined,
  store: string,
  took: number,
  corrupt: number,
): void {
  const attrs = sinkAttributes(name, store);
  emit(sinks, (sink) => {
    sink.checkpointLoaded(attrs, took);
    if (corrupt > 0) sink.corruptFound(attrs, corrupt);
  });
}

/** A load measured for the metrics sinks only (no OpenTelemetry): timed, corrupt records counted. */
async function sinkLoad<T>(
  sinks: readonly MetricsSink[],
  store: string,
  pipelineId: string | undefined,
  load: () => Promise<T>,
  outcomeOf: (result: T) => LoadOutcome,
  corruptOf: (error: unknown) => LoadOutcome | undefined,
): Promise<T> {
  const began = performance.now();
  let outcome: LoadOutcome | undefined;
  try {
    const result = await load();
    outcome = outcomeOf(result);
    return result;
  } catch (error) {
    outcome = corruptOf(error);
    throw error;
  } finally {
    loadMeasured(sinks, loadedName(outcome, pipelineId), store, seconds(began), outcome?.corrupt ?? 0);
  }
}

function describeLoad(api: Otel, span: Span, outcome: LoadOutcome, metric: Record<string, string>): void {
  const { checkpointId, bytes, corrupt } = outcome;
  span.setAttributes({
    ...metric,
    ...(outcome.pipelineId !== undefined ? { [ATTR.runId]: outcome.pipelineId } : {}),
    ...(checkpointId !== undefined ? { [ATTR.checkpointId]: checkpointId } : {}),
    ...(bytes !== undefined ? { [ATTR.bytes]: bytes } : {}),
    [ATTR.corrupt]: corrupt,
  });
  // Corrupt records found by a load: a checksum or content mismatch, passed over or thrown.
  if (corrupt > 0) instruments(api).corruptRecords.add(corrupt, metric);
}

/**
 * Counts a lost lease: once per execution in this process (its renewal and a fenced write can
 * both find the loss), once per call for a run that no execution here holds.
 */
export function recordLeaseLoss(pipelineId: string, store?: string, pipelineName?: string): void {
  const api = otelNow();
  const sinks = activeSinks();
  if (!api && !sinks) return;
  const run = activeRun(pipelineId);
  if (run) {
    if (run.leaseLost) return;
    run.leaseLost = true;
  }
  const name = run?.pipelineName ?? pipelineName;
  const where = run?.store ?? store;
  if (api) instruments(api).leaseLosses.add(1, metricAttributes(name, where));
  if (sinks) {
    const attrs = sinkAttributes(name, where);
    emit(sinks, (sink) => sink.leaseLost(attrs));
  }
}
