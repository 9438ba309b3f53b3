import {
  CheckpointConflictError,
  HistoryLostError,
  InvalidArgumentError,
  InvalidConfigError,
} from "../core/errors.js";
import { assertValidName, newRunId } from "../core/ids.js";
import type { CheckpointMetadata, PipelineCheckpoint } from "../core/types.js";
import { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { SalvagedResume } from "../manager/salvage.js";
import { rawStore } from "../manager/sealed-transfer.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";
import { registerAgent } from "./agents.js";
import { executeRun, markSkipped, type StageProgress, type StartPoint } from "./execution.js";
import { loadPipelineOptions } from "./from-file.js";
import { LeaseKeeper, newRunnerId } from "./lease-keeper.js";
import { planEstimate } from "./plan-estimate.js";
import { plannedStages, planRun, type RunPlan, runInputsOf } from "./planner.js";
import { renderProgress } from "./progress.js";
import { DEFAULT_REPLICA_TIMEOUT_MS, Replicas } from "./replicas.js";
import { migratedInputs } from "./state-migration.js";
import type {
  Agent,
  DryRunResult,
  ExecuteOptions,
  PipelineEvent,
  PipelineOptions,
  PipelineResults,
} from "./types.js";
import {
  DEFAULT_MAX_CONCURRENCY,
  InvalidPipelineError,
  type NormalizedStep,
  pipelineProblems,
} from "./validate.js";

const DEFAULT_LEASE_TTL_MS = 30_000;

/**
 * Internal (not exported from the package): the options each Pipeline was built from, so a
 * worker can build a fresh instance per job (one instance executes one run at a time).
 */
export const pipelineOptionsOf = new WeakMap<Pipeline, PipelineOptions>();

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** The planner's view of a salvaged resume point. */
const salvageOf = (point: SalvagedResume | undefined) =>
  point ? { salvage: { sources: point.sources, unverified: point.unverified } } : {};

/**
 * A named, ordered list of stages run by agents, with a verified checkpoint after each stage.
 * An interrupted run resumes from its last valid checkpoint, in this process or another one,
 * and skips the stages that completed, as long as they are unchanged.
 */
export class Pipeline {
  /** Registers an agent that steps can name as a string. */
  static registerAgent(name: string, agent: Agent): void {
    registerAgent(name, agent);
  }

  /**
   * Loads a pipeline from a YAML or JSON file (the seed's step dicts; agents as names or
   * `./module.js:Export`). `overrides` replace options of the file, e.g. `checkpointStore`.
   */
  static async fromFile(path: string, overrides: Partial<PipelineOptions> = {}): Promise<Pipeline> {
    return new Pipeline(await loadPipelineOptions(path, overrides));
  }

  /** The pipeline's name. */
  readonly name: string;
  /** Whether checkpoints are written. */
  readonly checkpointEnabled: boolean;
  private readonly steps: NormalizedStep[];
  private readonly options: PipelineOptions;
  private readonly manager: CheckpointManager | undefined;
  private readonly progress = new Map<string, StageProgress>();
  private lastRunId: string | undefined;
  private readonly runnerId = newRunnerId();
  private paused = false;
  private running = false;
  /** The lease of the checkpointed execution in progress. */
  private keeper: LeaseKeeper | undefined;

  constructor(options: PipelineOptions) {
    const { steps, problems } = pipelineProblems(options);
    this.steps = steps;
    this.options = options;
    this.name = options.name;
    this.checkpointEnabled = options.checkpointEnabled === true;
    // The store options are checked even with checkpointing off: a misspelt strategy is a
    // mistake in the definition either way, and it is reported with every other problem.
    const store = options.checkpointStore;
    const storeGiven =
      store !== undefined ||
      options.checkpointStrategy !== undefined ||
      options.checkpointConfig !== undefined;
    const atRest = {
      ...(options.checkpointCompression !== undefined ? { compression: options.checkpointCompression } : {}),
      ...(options.checkpointEncryption !== undefined ? { encryption: options.checkpointEncryption } : {}),
    };
    // A given manager has its own at-rest settings; silently ignoring these would store in the clear.
    if (store instanceof CheckpointManager && Object.keys(atRest).length > 0)
      problems.push(
        "checkpointCompression and checkpointEncryption configure the manager the pipeline builds: " +
          "set compression and encryption on the CheckpointManager given as checkpointStore instead",
      );
    let manager: CheckpointManager | undefined;
    if (this.checkpointEnabled || storeGiven || Object.keys(atRest).length > 0) {
      try {
        manager =
          store instanceof CheckpointManager
            ? store
            : new CheckpointManager({
                ...(store !== undefined
                  ? { store }
                  : {
                      ...(options.checkpointStrategy !== undefined
                        ? { strategy: options.checkpointStrategy }
                        : {}),
                      ...(options.checkpointConfig !== undefined ? { config: options.checkpointConfig } : {}),
                    }),
                ...atRest,
              });
      } catch (error) {
        if (error instanceof InvalidConfigError)
          problems.push(...error.problems.map((p) => `checkpoint store: ${p}`));
        else if (error instanceof InvalidArgumentError) problems.push(`checkpoint store: ${error.message}`);
        else throw error;
      }
    }
    if (problems.length > 0) throw new InvalidPipelineError(problems);
    if (this.checkpointEnabled) this.manager = manager;
    pipelineOptionsOf.set(this, options);
    this.resetProgress();
  }

  /** The checkpoint manager (undefined when checkpointing is off). */
  get checkpointManager(): CheckpointManager | undefined {
    return this.manager;
  }

  /** The run id of the last `execute()`, if any. */
  get pipelineId(): string | undefined {
    return this.lastRunId;
  }

  /** Stage names in order. */
  get stageNames(): string[] {
    return this.steps.map((s) => s.name);
  }

  /** Each stage's dependencies, resolved (a step without `dependsOn` depends on the one before it). */
  get stageDependencies(): Record<string, string[]> {
    return Object.fromEntries(this.steps.map((s) => [s.name, [...s.dependsOn]]));
  }

  private resetProgress(): void {
    for (const step of this.steps)
      this.progress.set(step.name, { state: "pending", attempts: 0, durationMs: undefined });
  }

  private emit(event: PipelineEvent): void {
    if (!this.options.onEvent) return;
    try {
      this.options.onEvent(event);
    } catch (error) {
      // A broken logger must not break the run; it is reported, not hidden.
      process.emitWarning(`cairn: onEvent listener threw on ${event.type}: ${(error as Error).message}`);
    }
  }

  /**
   * Stops the running execution now, mid-stage, and releases its lease, for a process about to
   * exit: another runner can resume the run from its last checkpoint at once instead of after
   * the lease's TTL. The execution rejects with `LeaseLostError` and writes nothing more. Rejects
   * when the store could not release the lease (it then expires on its own); without a running
   * checkpointed execution it does nothing.
   */
  async abandon(): Promise<void> {
    await this.keeper?.abandon();
  }

  /** Asks the running execution to stop once its running stages finish, with a checkpoint. */
  pause(): void {
    if (this.running) this.paused = true;
  }

  /** Runs the pipeline, resuming an unfinished run when there is one (see the options). */
  execute(options: ExecuteOptions & { dryRun: true }): Promise<DryRunResult>;
  execute(options?: ExecuteOptions): Promise<PipelineResults>;
  async execute(options: ExecuteOptions = {}): Promise<PipelineResults | DryRunResult> {
    const problems: string[] = [];
    if (!isPlainObject(options)) throw new InvalidArgumentError("execute() options must be an object");
    if (options.inputs !== undefined && !isPlainObject(options.inputs))
      problems.push("inputs must be an object");
    if (options.resume !== undefined && typeof options.resume !== "boolean")
      problems.push("resume must be a boolean");
    if (options.runId !== undefined) assertValidName("runId", options.runId);
    if (problems.length > 0) throw new InvalidArgumentError(`execute(): ${problems.join("; ")}`);
    if (options.dryRun) return this.plan(options);
    if (this.running)
      throw new InvalidArgumentError(`pipeline ${this.name} is already executing in this process`);
    this.running = true;
    this.paused = false;
    this.resetProgress();
    try {
      return await (this.manager
        ? this.executeCheckpointed(this.manager, options)
        : this.executeInMemory(options));
    } finally {
      this.running = false;
      this.paused = false;
    }
  }

  private context(
    manager: CheckpointManager | undefined,
    hardSignal: AbortSignal,
    lease: () => undefined | LeaseKeeper["lease"],
    stop?: AbortSignal,
  ) {
    return {
      name: this.name,
      version: this.options.version,
      steps: this.steps,
      manager,
      durability:
        this.options.durability ?? (this.options.checkpointAfterEachStep === false ? "exit" : "sync"),
      checkpointPolicy: this.options.checkpointPolicy ?? "every-stage",
      maxConcurrency: this.options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
      emit: (event: PipelineEvent) => this.emit(event),
      pauseRequested: () => this.paused,
      progress: this.progress,
      hardSignal,
      stopSignal: stop,
      lease,
    };
  }

  private async executeInMemory(options: ExecuteOptions): Promise<PipelineResults> {
    const pipelineId = options.runId ?? newRunId(this.name);
    this.lastRunId = pipelineId;
    this.emit({ type: "run_started", pipelineId, at: new Date() });
    const ctx = this.context(undefined, new AbortController().signal, () => undefined, options.signal);
    const inputs = options.inputs ?? {};
    return executeRun(ctx, {
      pipelineId,
      inputs,
      plan: await planRun({ steps: this.steps, resume: undefined, inputs }),
    });
  }

  /** Which run to execute: the named one, the newest unfinished one, or a new one. */
  private async chooseRun(
    manager: CheckpointManager,
    options: ExecuteOptions,
  ): Promise<{ pipelineId: string; exists: boolean }> {
    if (options.runId !== undefined) {
      const info = await manager.getRunInfo(options.runId);
      if (info?.pipelineName !== undefined && info.pipelineName !== this.name) {
        throw new InvalidArgumentError(
          `run ${options.runId} belongs to pipeline ${info.pipelineName}, not ${this.name}`,
        );
      }
      if (info && options.resume === false) {
        throw new CheckpointConflictError(
          options.runId,
          `Run ${options.runId} already has checkpoints; resume it, or start a fresh run under another runId`,
        );
      }
      return { pipelineId: options.runId, exists: info !== undefined };
    }
    const autoResume = (this.options.autoResume ?? true) && options.resume !== false;
    const unfinished = autoResume ? await manager.findUnfinishedRun(this.name) : undefined;
    return unfinished
      ? { pipelineId: unfinished, exists: true }
      : { pipelineId: newRunId(this.name), exists: false };
  }

  private async executeCheckpointed(
    manager: CheckpointManager,
    options: ExecuteOptions,
  ): Promise<PipelineResults> {
    const { pipelineId, exists } = await this.chooseRun(manager, options);
    this.lastRunId = pipelineId;
    const store = await manager.getStore();
    // The run's newest checkpoint this runner knows of: what a vanished store is reported to lose.
    let known: string | undefined;
    // One runner id per Pipeline instance: after a store outage cut this instance off, its next
    // execute() takes its own unreleased lease back at once instead of waiting for it to expire.
    const keeper = await LeaseKeeper.acquire(
      store,
      pipelineId,
      this.options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
      this.runnerId,
      () => manager.lastWritten(pipelineId) ?? known,
    );
    this.keeper = keeper;
    const replicas = this.startReplicas(store, pipelineId);
    try {
      // Read the resume point only under the lease: nobody else can be writing the run now.
      const point = exists ? await manager.loadResumePoint(pipelineId) : undefined;
      const checkpoint = point?.checkpoint;
      known = checkpoint?.metadata.checkpointId;
      if (!checkpoint && options.runId !== undefined) await this.refuseLostHistory(manager, pipelineId);
      // Migrations run here, before anything is written: one that throws leaves the run as it was.
      const inputs = await this.inputsOf(options, checkpoint);
      const plan = await planRun({ steps: this.steps, resume: checkpoint, inputs, ...salvageOf(point) });
      if (checkpoint && plan.finished) return this.completedResults(checkpoint, plan);
      // A stage re-run to replace a damaged output may produce the same bytes, and a store keeps
      // the first text stored under an address: the damaged text goes first.
      if (point) await manager.discardDamagedOutputs(pipelineId, point.damagedOutputs);
      const start: StartPoint = { pipelineId, inputs, plan };
      if (checkpoint) {
        start.resume = { checkpoint, resumeCount: await manager.recordResume(checkpoint) };
        this.emit({
          type: "run_resumed",
          pipelineId,
          at: new Date(),
          checkpointId: checkpoint.metadata.checkpointId,
          // Migrated stages are restored, like skipped ones: the run goes on after them.
          resumeFromStage: plan.stages.find((s) => s.action !== "skip" && s.action !== "migrate")?.stageName,
        });
      } else this.emit({ type: "run_started", pipelineId, at: new Date() });
      const ctx = this.context(manager, keeper.signal, () => keeper.lease, options.signal);
      try {
        return await executeRun(ctx, start);
      } catch (error) {
        // The store lost the run's history while it ran (found by a write or the lease renewal).
        if (error instanceof HistoryLostError) this.reportLostHistory(error);
        throw error;
      }
    } finally {
      this.keeper = undefined;
      await keeper.release().catch((error: unknown) => {
        // The lease expires on its own; a failed release must not hide the run's own outcome.
        process.emitWarning(
          `cairn: could not release the lease on ${pipelineId}: ${(error as Error).message}`,
        );
      });
      // After the release: a successor need not wait for this runner's replicas to catch up.
      await replicas?.stop();
    }
  }

  /** Starts the replicators of `checkpointReplicas` for the run, on the records as stored. */
  private startReplicas(store: AtRestStore, pipelineId: string): Replicas | undefined {
    const specs = this.options.checkpointReplicas ?? [];
    if (specs.length === 0) return undefined;
    const timeout = this.options.checkpointReplicaTimeoutMs ?? DEFAULT_REPLICA_TIMEOUT_MS;
    return Replicas.start(rawStore(store), specs, pipelineId, timeout, (event) => this.emit(event));
  }

  /**
   * A named run whose checkpoints are all gone, though this manager wrote to it or the store's
   * head record says it has had some, is never started over silently: a `history_lost` event, a
   * warning, and `CAIRN_HISTORY_LOST`. Starting over is a choice: delete the run, or use a new runId.
   */
  private async refuseLostHistory(manager: CheckpointManager, pipelineId: string): Promise<void> {
    const expected = await manager.lostHistory(pipelineId);
    if (expected === undefined) return;
    const error = new HistoryLostError(pipelineId, expected);
    this.reportLostHistory(error);
    throw error;
  }

  private reportLostHistory(error: HistoryLostError): void {
    const { pipelineId, expected } = error;
    this.emit({ type: "history_lost", pipelineId, at: new Date(), expected, error });
    process.emitWarning(`cairn: ${error.message}`, { code: error.code });
  }

  /** The results of a run that already finished: nothing runs again. */
  private completedResults(checkpoint: PipelineCheckpoint, plan: RunPlan): PipelineResults {
    const stepsResults: PipelineResults["stepsResults"] = {};
    for (const step of this.steps) {
      markSkipped(step.name, checkpoint.agentOutputs[step.name], stepsResults, this.progress);
    }
    const at = checkpoint.metadata.timestamp;
    return {
      pipelineId: checkpoint.metadata.pipelineId,
      name: this.name,
      status: "completed",
      startedAt: at,
      completedAt: at,
      stepsResults,
      finalOutputs: checkpoint.agentOutputs,
      checkpointsCreated: 0,
      resumedFrom: checkpoint.metadata.checkpointId,
      alreadyComplete: true,
      skippedStages: plan.stages.map((s) => s.stageName),
      rerunStages: [],
      migratedStages: [],
      pendingStages: [],
    };
  }

  /** The run's inputs: those given, else the stored ones (through `migrateState` under a new version). */
  private inputsOf(
    options: ExecuteOptions,
    checkpoint: PipelineCheckpoint | undefined,
  ): Promise<Record<string, unknown>> {
    return migratedInputs(this.options, options.inputs, checkpoint, runInputsOf(options.inputs, checkpoint));
  }

  /** Validates and shows what `execute()` would do, reading the store but writing nothing. */
  private async plan(options: ExecuteOptions): Promise<DryRunResult> {
    let pipelineId: string | undefined;
    let point: SalvagedResume | undefined;
    if (this.manager) {
      const chosen = await this.chooseRun(this.manager, options);
      if (chosen.exists) {
        pipelineId = chosen.pipelineId;
        point = await this.manager.loadResumePoint(chosen.pipelineId);
      } else if (options.runId !== undefined) pipelineId = options.runId;
    }
    const checkpoint = point?.checkpoint;
    const plan = await planRun({
      steps: this.steps,
      resume: checkpoint,
      inputs: await this.inputsOf(options, checkpoint),
      ...salvageOf(point),
    });
    const stages = plannedStages(this.steps, plan);
    // Dependencies make the estimate's critical path (the wall time with unlimited concurrency).
    const estimate = await planEstimate(this.manager, this.name, {
      stages: plan.stages.map((s) => ({ ...s, dependsOn: this.steps[s.stageIndex]?.dependsOn ?? [] })),
    });
    return {
      name: this.name,
      status: "dry_run",
      pipelineId,
      pipelineVersion: this.options.version,
      resumeFrom: plan.resumeFrom,
      stages,
      ...(estimate ? { estimate } : {}),
    };
  }

  /** Checkpoint metadata of the last executed run (or the newest-created run of this pipeline), newest first. */
  async getCheckpointHistory(): Promise<CheckpointMetadata[]> {
    if (!this.manager) return [];
    let runId = this.lastRunId;
    if (runId === undefined)
      runId = (await this.manager.listRuns(this.name, { limit: 1 })).runs[0]?.pipelineId;
    return runId === undefined ? [] : this.manager.getCheckpointHistory(runId);
  }

  /** The progress of the current or last execution, one line per stage. */
  visualizeProgress(): string {
    return renderProgress(this.name, this.lastRunId, this.steps, this.progress);
  }

  /** Closes the checkpoint store (when the pipeline created it). */
  async close(): Promise<void> {
    if (this.manager && !(this.options.checkpointStore instanceof CheckpointManager))
      await this.manager.close();
  }
}
