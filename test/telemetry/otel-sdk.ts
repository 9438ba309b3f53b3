/**
 * The OpenTelemetry SDK with in-memory exporters, registered globally for one test and removed
 * after it: the spans cairn ended, and its metrics collected on demand.
 */
import { metrics, trace } from "@opentelemetry/api";
import { type DataPoint, type Histogram, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";

/** A reader the test collects from when it wants, with no export interval. */
class CollectingReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

/** The registered SDK. */
export interface OtelSdk {
  spans(name?: string): ReadableSpan[];
  /** Per metric name, its data points (all attribute sets). */
  metric(name: string): Promise<DataPoint<number | Histogram>[]>;
  /** The sum of a counter's data points (0 when it never counted). */
  total(name: string): Promise<number>;
  /** How many values a histogram recorded. */
  count(name: string): Promise<number>;
  close(): Promise<void>;
}

/** Registers the SDK globally; `close()` unregisters it. */
export function registerSdk(): OtelSdk {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  if (!trace.setGlobalTracerProvider(tracerProvider))
    throw new Error("a tracer provider is already registered");
  if (!metrics.setGlobalMeterProvider(meterProvider))
    throw new Error("a meter provider is already registered");
  const metric = async (name: string) => {
    const { resourceMetrics } = await reader.collect();
    const found = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .filter((m) => m.descriptor.name === name);
    return found.flatMap((m) => m.dataPoints as DataPoint<number | Histogram>[]);
  };
  return {
    spans: (name) => exporter.getFinishedSpans().filter((s) => name === undefined || s.name === name),
    metric,
    total: async (name) => (await metric(name)).reduce((sum, p) => sum + (p.value as number), 0),
    count: async (name) => (await metric(name)).reduce((sum, p) => sum + (p.value as Histogram).count, 0),
    close: async () => {
      trace.disable();
      metrics.disable();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** The id of a span's parent, if it has one. */
export const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
/** A span's own id. */
export const idOf = (span: ReadableSpan) => span.spanContext().spanId;
