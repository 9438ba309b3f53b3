/**
 * Metrics sinks: receivers of the same measurements as cairn's OpenTelemetry instruments,
 * registered in-process (the console's Prometheus registry is one). The hooks in this folder
 * feed them whether or not `@opentelemetry/api` is installed or `CAIRN_TELEMETRY=off`; with no
 * sink registered and no OpenTelemetry, the hooks do no extra work (one length check).
 */

/** What every measurement is about: the pipeline's name and the store strategy, when known. */
export interface SinkAttributes {
  pipeline?: string;
  store?: string;
}

/** A receiver of cairn's metrics, one call per measurement. */
export interface MetricsSink {
  /** A checkpoint was written: its data size (when known) and how long the write took. */
  checkpointWritten(attrs: SinkAttributes, bytes: number | undefined, seconds: number): void;
  /** A checkpoint (or a run's newest) was loaded, or its load failed, after `seconds`. */
  checkpointLoaded(attrs: SinkAttributes, seconds: number): void;
  /** A run resumed from a checkpoint. */
  resumed(attrs: SinkAttributes): void;
  /** A run's lease was lost to another runner or a store outage. */
  leaseLost(attrs: SinkAttributes): void;
  /** `n` corrupt records (or stored outputs) were found while loading. */
  corruptFound(attrs: SinkAttributes, n: number): void;
}

/** Replaced, never mutated: a hook iterating it is not disturbed by a (un)registration. */
let sinks: readonly MetricsSink[] = [];

/** Registers a sink; returns the function that unregisters it. */
export function registerMetricsSink(sink: MetricsSink): () => void {
  sinks = [...sinks, sink];
  return () => {
    sinks = sinks.filter((s) => s !== sink);
  };
}

/** The registered sinks; undefined when there are none (the common case, checked without allocating). */
export function activeSinks(): readonly MetricsSink[] | undefined {
  return sinks.length > 0 ? sinks : undefined;
}

/** The attributes a sink gets, from the same values as the OpenTelemetry metric attributes. */
export function sinkAttributes(pipeline: string | undefined, store: string | undefined): SinkAttributes {
  return {
    ...(pipeline !== undefined ? { pipeline } : {}),
    ...(store !== undefined ? { store } : {}),
  };
}

/** Calls `measure` on each sink; a sink that throws does not break the operation it measures. */
export function emit(targets: readonly MetricsSink[], measure: (sink: MetricsSink) => void): void {
  for (const sink of targets) {
    try {
      measure(sink);
    } catch {
      // A metrics receiver's failure must never fail a checkpoint write or a run.
    }
  }
}
