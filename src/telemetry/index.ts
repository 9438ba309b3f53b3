/** cairn's OpenTelemetry hooks; `@opentelemetry/api` is loaded lazily (see `api.ts`). */
export { loadOtel, otelNow, resetOtelForTests } from "./api.js";
export { ATTR } from "./attributes.js";
export { recordLeaseLoss, traceLoad, traceWrite } from "./checkpoints.js";
export { METRIC, SCOPE } from "./instruments.js";
export { activeRun, RunTelemetry, traceRun } from "./runs.js";
export { type MetricsSink, registerMetricsSink, type SinkAttributes } from "./sink.js";
