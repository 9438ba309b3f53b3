/**
 * `GET /metrics`: cairn's metrics in the Prometheus text exposition, through prom-client (the
 * ecosystem's standard) on a registry of the console's own. The measurements come from the same
 * hooks as the OpenTelemetry instruments (`src/telemetry`), through a metrics sink, so they are
 * recorded whether or not `@opentelemetry/api` is installed; the console adds the changes its
 * live feed saw.
 */
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import { type MetricsSink, registerMetricsSink, type SinkAttributes } from "../telemetry/sink.js";

/** The Prometheus names of cairn's metrics (the OpenTelemetry names, Prometheus style). */
export const PROMETHEUS_METRIC = {
  checkpointsWritten: "cairn_checkpoints_written_total",
  bytesWritten: "cairn_checkpoint_bytes_written_total",
  writeDuration: "cairn_checkpoint_write_duration_seconds",
  loadDuration: "cairn_checkpoint_load_duration_seconds",
  resumes: "cairn_resumes_total",
  leaseLosses: "cairn_lease_losses_total",
  corruptRecords: "cairn_corrupt_records_found_total",
  feedChanges: "cairn_ui_feed_changes_total",
} as const;

/** The console's Prometheus registry and the sink that feeds it. */
export interface Prometheus {
  registry: Registry;
  /** Register it with `registerMetricsSink` (or call `register()`) to receive measurements. */
  sink: MetricsSink;
  /** Registers the sink; returns the function that unregisters it. */
  register(): () => void;
  /** Counts one change the console's live feed saw (`type`: the change's type). */
  feedChange(type: string): void;
  /** The Content-Type of `text()`. */
  contentType: string;
  /** The exposition text. */
  text(): Promise<string>;
}

const LABELS = ["pipeline", "store"] as const;
type Labels = Partial<Record<(typeof LABELS)[number], string>>;

/** Labels of the measurement; unknown ones are left out rather than given a made-up value. */
const labelsOf = (attrs: SinkAttributes): Labels => ({
  ...(attrs.pipeline !== undefined ? { pipeline: attrs.pipeline } : {}),
  ...(attrs.store !== undefined ? { store: attrs.store } : {}),
});

/**
 * A fresh registry (never prom-client's global one) with cairn's metrics; with `defaultMetrics`
 * (default true), the process metrics too, prefixed `cairn_ui_`.
 */
export function createPrometheus(options: { defaultMetrics?: boolean } = {}): Prometheus {
  const registry = new Registry();
  const registers = [registry];
  const labelNames = [...LABELS];
  const written = new Counter({
    name: PROMETHEUS_METRIC.checkpointsWritten,
    help: "Checkpoints written",
    labelNames,
    registers,
  });
  const bytes = new Counter({
    name: PROMETHEUS_METRIC.bytesWritten,
    help: "Bytes of checkpoint data written",
    labelNames,
    registers,
  });
  const writeDuration = new Histogram({
    name: PROMETHEUS_METRIC.writeDuration,
    help: "Duration of checkpoint writes, in seconds",
    labelNames,
    registers,
  });
  const loadDuration = new Histogram({
    name: PROMETHEUS_METRIC.loadDuration,
    help: "Duration of checkpoint loads, in seconds",
    labelNames,
    registers,
  });
  const resumes = new Counter({
    name: PROMETHEUS_METRIC.resumes,
    help: "Runs resumed from a checkpoint",
    labelNames,
    registers,
  });
  const leaseLosses = new Counter({
    name: PROMETHEUS_METRIC.leaseLosses,
    help: "Run leases lost to another runner or a store outage",
    labelNames,
    registers,
  });
  const corrupt = new Counter({
    name: PROMETHEUS_METRIC.corruptRecords,
    help: "Corrupt checkpoint records (or stored outputs) found while loading",
    labelNames,
    registers,
  });
  const feed = new Counter({
    name: PROMETHEUS_METRIC.feedChanges,
    help: "Changes the console's live feed saw, by type",
    labelNames: ["type"],
    registers,
  });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: "cairn_ui_" });

  const sink: MetricsSink = {
    checkpointWritten(attrs, size, seconds) {
      const labels = labelsOf(attrs);
      written.inc(labels);
      writeDuration.observe(labels, seconds);
      if (size !== undefined) bytes.inc(labels, size);
    },
    checkpointLoaded(attrs, seconds) {
      loadDuration.observe(labelsOf(attrs), seconds);
    },
    resumed(attrs) {
      resumes.inc(labelsOf(attrs));
    },
    leaseLost(attrs) {
      leaseLosses.inc(labelsOf(attrs));
    },
    corruptFound(attrs, n) {
      corrupt.inc(labelsOf(attrs), n);
    },
  };

  return {
    registry,
    sink,
    register: () => registerMetricsSink(sink),
    feedChange: (type) => feed.inc({ type }),
    contentType: registry.contentType,
    text: () => registry.metrics(),
  };
}
