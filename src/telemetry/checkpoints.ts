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

/**
 * Writes a checkpoint under a `cairn.checkpoint.write` span and counts it; `sizeOf` gives the
 * written checkpoint's data size. Without telemetry, only `write()` runs.
 */
export async function traceWrite(
  subject: WriteSubject,
  write: () => Promise<string>,
  sizeOf: (checkpointId: string) => number | undefined,
): Promise<string> {
  const api = await otel();
  if (!api) return write();
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
    meters.checkpointsWritten.add(1, attributes);
    meters.writeDuration.record(seconds(began), attributes);
    if (bytes !== undefined) meters.bytesWritten.add(bytes, attributes);
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
  if (!api) return load();
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
    const name =
      outcome?.pipelineName ?? (pipelineId !== undefined ? activeRun(pipelineId)?.pipelineName : undefined);
    const metric = metricAttributes(name, store);
    instruments(api).loadDuration.record(seconds(began), metric);
    if (outcome) describeLoad(api, span, outcome, metric);
    span.end();
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
  if (!api) return;
  const run = activeRun(pipelineId);
  if (run) {
    if (run.leaseLost) return;
    run.leaseLost = true;
  }
  instruments(api).leaseLosses.add(
    1,
    metricAttributes(run?.pipelineName ?? pipelineName, run?.store ?? store),
  );
}
