/**
 * cairn's tracer and metric instruments (meter `cairn-pipelines`), rebuilt when the global
 * provider changes: `metrics.getMeter` hands out a no-op meter before an SDK is registered,
 * and a meter cached from then would stay a no-op for the life of the process.
 */
import type { Counter, Histogram, Meter, MeterProvider, Tracer, TracerProvider } from "@opentelemetry/api";
import type { Otel } from "./api.js";

/** The instrumentation scope: tracer and meter name. */
export const SCOPE = "cairn-pipelines";

/** Metric names (see docs/notes/otel.md). */
export const METRIC = {
  checkpointsWritten: "cairn.checkpoints.written",
  bytesWritten: "cairn.checkpoint.bytes.written",
  writeDuration: "cairn.checkpoint.write.duration",
  loadDuration: "cairn.checkpoint.load.duration",
  resumes: "cairn.resumes",
  leaseLosses: "cairn.lease.losses",
  corruptRecords: "cairn.corrupt_records.found",
} as const;

/** cairn's metric instruments. */
export interface Instruments {
  checkpointsWritten: Counter;
  bytesWritten: Counter;
  writeDuration: Histogram;
  loadDuration: Histogram;
  resumes: Counter;
  leaseLosses: Counter;
  corruptRecords: Counter;
}

function createInstruments(meter: Meter): Instruments {
  const seconds = { unit: "s" };
  return {
    checkpointsWritten: meter.createCounter(METRIC.checkpointsWritten, {
      description: "Checkpoints written",
      unit: "{checkpoint}",
    }),
    bytesWritten: meter.createCounter(METRIC.bytesWritten, {
      description: "Bytes of checkpoint data written",
      unit: "By",
    }),
    writeDuration: meter.createHistogram(METRIC.writeDuration, {
      description: "Duration of checkpoint writes",
      ...seconds,
    }),
    loadDuration: meter.createHistogram(METRIC.loadDuration, {
      description: "Duration of checkpoint loads",
      ...seconds,
    }),
    resumes: meter.createCounter(METRIC.resumes, { description: "Runs resumed from a checkpoint" }),
    leaseLosses: meter.createCounter(METRIC.leaseLosses, {
      description: "Run leases lost to another runner or a store outage",
    }),
    corruptRecords: meter.createCounter(METRIC.corruptRecords, {
      description: "Corrupt checkpoint records (or stored outputs) found while loading",
    }),
  };
}

let meterFor: { provider: MeterProvider; instruments: Instruments } | undefined;
let tracerFor: { provider: TracerProvider; tracer: Tracer } | undefined;

/** The instruments of the current global meter provider. */
export function instruments(api: Otel): Instruments {
  const provider = api.metrics.getMeterProvider();
  if (meterFor?.provider !== provider)
    meterFor = { provider, instruments: createInstruments(provider.getMeter(SCOPE)) };
  return meterFor.instruments;
}

/** The tracer of the current global tracer provider. */
export function tracer(api: Otel): Tracer {
  const provider = api.trace.getTracerProvider();
  if (tracerFor?.provider !== provider) tracerFor = { provider, tracer: provider.getTracer(SCOPE) };
  return tracerFor.tracer;
}
