/**
 * The spans of a pipeline execution: `cairn.run` for the execution and `cairn.stage` for each
 * stage it runs, skips or migrates, built from the pipeline's own events. Active runs are found
 * by run id, so checkpoint writes and loads (and a lost lease) attach to them without a
 * registered context manager: the parent is passed explicitly.
 */
import type { Context, Span } from "@opentelemetry/api";
import type { PipelineEvent } from "../pipeline/types.js";
import { type Otel, otel } from "./api.js";
import { ATTR, metricAttributes, recordError } from "./attributes.js";
import { instruments, tracer } from "./instruments.js";
import { activeSinks, emit, sinkAttributes } from "./sink.js";

/** Executions in progress in this process, by run id. */
const active = new Map<string, RunTelemetry>();

/** The telemetry of the execution in progress on `runId` in this process, if any. */
export function activeRun(runId: string): RunTelemetry | undefined {
  return active.get(runId);
}

/**
 * One execution's spans and metrics. Without OpenTelemetry (`api` null: absent or switched off)
 * it exists only for the metrics sinks: no spans, the resume and lease-loss counts only.
 */
export class RunTelemetry {
  private readonly span: Span | undefined;
  private readonly context: Context | undefined;
  private readonly stages = new Map<string, { span: Span; context: Context; ended: boolean }>();
  private runId: string | undefined;
  private resumed = false;
  /** Set once this execution's lost lease was counted: a renewal and a fenced write both see it. */
  leaseLost = false;

  constructor(
    private readonly api: Otel | null,
    readonly pipelineName: string,
    readonly store: string | undefined,
  ) {
    if (!api) return;
    const attributes = {
      [ATTR.pipeline]: pipelineName,
      ...(store !== undefined ? { [ATTR.store]: store } : {}),
    };
    // The caller's active span (when it registered a context manager) is the run's parent.
    this.span = tracer(api).startSpan("cairn.run", { attributes }, api.context.active());
    this.context = api.trace.setSpan(api.context.active(), this.span);
  }

  /** The metric attributes of this execution. */
  get metricAttributes() {
    return metricAttributes(this.pipelineName, this.store);
  }

  /** Names the run once it is chosen: from now on its checkpoint writes and loads are children. */
  identify(runId: string): void {
    if (this.runId === runId) return;
    this.runId = runId;
    this.span?.setAttribute(ATTR.runId, runId);
    active.set(runId, this);
  }

  /** The parent of a checkpoint write or load of this run: the stage's span, else the run's (none without OpenTelemetry). */
  parentOf(stageName?: string): Context | undefined {
    return (stageName !== undefined ? this.stages.get(stageName)?.context : undefined) ?? this.context;
  }

  /** Follows the execution through its events. */
  observe(event: PipelineEvent): void {
    switch (event.type) {
      case "run_started":
        this.identify(event.pipelineId);
        return;
      case "run_resumed":
        this.identify(event.pipelineId);
        this.resumed = true;
        this.countResume();
        return;
      case "stage_started":
        this.stageSpan(event.stageName, event.stageIndex, false);
        return;
      case "stage_retry":
        this.stages.get(event.stageName)?.span.addEvent("cairn.stage.retry", { attempt: event.attempt });
        return;
      case "stage_skipped":
        this.endStage(this.stageSpan(event.stageName, event.stageIndex, true), "skipped");
        return;
      case "stage_migrated":
        this.endStage(this.stageSpan(event.stageName, event.stageIndex, true), "migrated");
        return;
      case "stage_completed": {
        const stage = this.stages.get(event.stageName);
        stage?.span.setAttribute(ATTR.attempts, event.attempts);
        this.endStage(stage, "completed");
        return;
      }
      case "stage_failed": {
        const stage = this.stages.get(event.stageName);
        if (stage && this.api) recordError(this.api, stage.span, event.error);
        this.endStage(stage, "failed");
        return;
      }
      default:
        return;
    }
  }

  /** Ends the run span with the execution's outcome. */
  finish(status: string): void {
    if (this.api) this.span?.setStatus({ code: this.api.SpanStatusCode.OK });
    this.end(status);
  }

  /** Ends the run span with the error the execution failed with. */
  fail(error: unknown): void {
    if (this.api && this.span) recordError(this.api, this.span, error);
    this.end("failed");
  }

  private countResume(): void {
    if (this.api) instruments(this.api).resumes.add(1, this.metricAttributes);
    const sinks = activeSinks();
    if (sinks) {
      const attrs = sinkAttributes(this.pipelineName, this.store);
      emit(sinks, (sink) => sink.resumed(attrs));
    }
  }

  private end(status: string): void {
    // Stages still open were cut short (a lost lease, a store error): they end with the run.
    for (const stage of this.stages.values()) this.endStage(stage, "interrupted");
    this.span?.setAttributes({ [ATTR.status]: status, [ATTR.resumed]: this.resumed });
    this.span?.end();
    if (this.runId !== undefined && active.get(this.runId) === this) active.delete(this.runId);
  }

  private stageSpan(stageName: string, stageIndex: number, skipped: boolean) {
    const open = this.stages.get(stageName);
    if (open && !open.ended) return open;
    if (!this.api || !this.context) return undefined;
    const span = tracer(this.api).startSpan(
      "cairn.stage",
      {
        attributes: {
          [ATTR.pipeline]: this.pipelineName,
          ...(this.runId !== undefined ? { [ATTR.runId]: this.runId } : {}),
          [ATTR.stage]: stageName,
          [ATTR.stageIndex]: stageIndex,
          [ATTR.skipped]: skipped,
          ...(this.store !== undefined ? { [ATTR.store]: this.store } : {}),
        },
      },
      this.context,
    );
    const stage = { span, context: this.api.trace.setSpan(this.context, span), ended: false };
    this.stages.set(stageName, stage);
    return stage;
  }

  private endStage(stage: { span: Span; ended: boolean } | undefined, status: string): void {
    if (!stage || stage.ended) return;
    stage.ended = true;
    stage.span.setAttribute(ATTR.status, status);
    stage.span.end();
  }
}

/**
 * Starts the telemetry of one `execute()`: undefined when telemetry is off and no metrics sink
 * is registered, so the pipeline does no telemetry work at all.
 */
export async function startRun(
  pipelineName: string,
  store: string | undefined,
): Promise<RunTelemetry | undefined> {
  const api = await otel();
  return api || activeSinks() ? new RunTelemetry(api, pipelineName, store) : undefined;
}

/** Runs one execution under its run span, ending it with the outcome. */
export async function traceRun<T extends { status: string }>(
  pipelineName: string,
  store: string | undefined,
  execution: (run: RunTelemetry | undefined) => Promise<T>,
): Promise<T> {
  const run = await startRun(pipelineName, store);
  if (!run) return execution(undefined);
  try {
    const result = await execution(run);
    run.finish(result.status);
    return result;
  } catch (error) {
    run.fail(error);
    throw error;
  }
}
