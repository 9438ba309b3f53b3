/** Span and metric attribute names (the `cairn.` namespace), and error recording on a span. */
import type { Span } from "@opentelemetry/api";
import type { Otel } from "./api.js";

/** Attribute names (see docs/notes/otel.md). */
export const ATTR = {
  pipeline: "cairn.pipeline.name",
  runId: "cairn.run.id",
  stage: "cairn.stage.name",
  stageIndex: "cairn.stage.index",
  store: "cairn.store",
  bytes: "cairn.checkpoint.bytes",
  checkpointId: "cairn.checkpoint.id",
  resumed: "cairn.resumed",
  skipped: "cairn.skipped",
  status: "cairn.status",
  attempts: "cairn.stage.attempts",
  corrupt: "cairn.corrupt_records",
  errorCode: "cairn.error.code",
} as const;

/** The attributes every cairn metric carries: the pipeline's name and the store strategy. */
export function metricAttributes(pipelineName: string | undefined, store: string | undefined) {
  return {
    ...(pipelineName !== undefined ? { [ATTR.pipeline]: pipelineName } : {}),
    ...(store !== undefined ? { [ATTR.store]: store } : {}),
  };
}

/** Records `error` on the span: the exception event, status ERROR, and cairn's error code. */
export function recordError(api: Otel, span: Span, error: unknown): void {
  const err = error instanceof Error ? error : new Error(String(error));
  span.recordException(err);
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: err.message });
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === "string") span.setAttribute(ATTR.errorCode, code);
}
