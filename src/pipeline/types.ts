/** Types of the Pipeline SDK. */
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { StoreConfig, StoreSpec } from "../stores/registry.js";
import type { CompressionSetting } from "../transforms/compression.js";
import type { EncryptionOptions } from "../transforms/keys.js";
import type { StageAction } from "./planner.js";

/** What an agent receives besides its inputs. */
export interface StageContext {
  /** The run being executed. */
  pipelineId: string;
  /** The pipeline's name. */
  pipelineName: string;
  stageName: string;
  stageIndex: number;
  /** 1 on the first attempt, 2 on the first retry... */
  attempt: number;
  /** How many times this run was resumed before this execution. */
  resumeCount: number;
  /**
   * Stable for this stage of this run across retries, resumes and processes: use it to make side
   * effects idempotent (a stage interrupted after its effect but before its checkpoint runs again).
   */
  idempotencyKey: string;
  /** Aborted when the stage times out, the run loses its lease, or the run is killed. */
  signal: AbortSignal;
  /** The step's `config`, if any. */
  config: Readonly<Record<string, unknown>>;
}

/** An agent as a plain function. */
export type AgentFunction = (inputs: Record<string, unknown>, context: StageContext) => unknown;

/** An agent as an object; `name` and `version` identify it in fingerprints and provenance. */
export interface AgentObject {
  name?: string;
  /** Bump it when the agent's behaviour changes: completed stages then re-run on resume. */
  version?: string;
  process(inputs: Record<string, unknown>, context: StageContext): unknown;
}

/** What runs a stage. */
export type Agent = AgentFunction | AgentObject;

/** One step of a pipeline. */
export interface StepDefinition {
  /** Stage name, unique in the pipeline. */
  name: string;
  /** The agent, or the name of one in the `agents` option or the `registerAgent` registry. */
  agent: Agent | string;
  /** Inputs overlaid on the run's inputs; a string `"$stage.a.b"` refers to an earlier output. */
  inputs?: Record<string, unknown>;
  /** Extra attempts after a failure (default 0). */
  retries?: number;
  /** Delay before the first retry, doubled for each further one (default 100 ms). */
  retryDelayMs?: number;
  /** Longest a single attempt may take; the attempt fails with `CAIRN_STAGE_TIMEOUT`. */
  timeoutMs?: number;
  /** Free-form configuration passed to the agent as `context.config`; part of the fingerprint. */
  config?: Record<string, unknown>;
}

/** Something that happened during a run, for logging and metrics. */
export type PipelineEvent =
  | { type: "run_started"; pipelineId: string; at: Date }
  | {
      type: "run_resumed";
      pipelineId: string;
      at: Date;
      checkpointId: string;
      resumeFromStage: string | undefined;
    }
  | {
      type: "stage_started";
      pipelineId: string;
      at: Date;
      stageName: string;
      stageIndex: number;
      attempt: number;
    }
  | { type: "stage_skipped"; pipelineId: string; at: Date; stageName: string; stageIndex: number }
  | {
      type: "stage_completed";
      pipelineId: string;
      at: Date;
      stageName: string;
      stageIndex: number;
      durationMs: number;
      attempts: number;
    }
  | {
      type: "stage_retry";
      pipelineId: string;
      at: Date;
      stageName: string;
      attempt: number;
      delayMs: number;
      error: Error;
    }
  | {
      type: "stage_failed";
      pipelineId: string;
      at: Date;
      stageName: string;
      stageIndex: number;
      error: Error;
    }
  | { type: "stage_rerun"; pipelineId: string; at: Date; stageName: string; reason: string }
  | { type: "checkpoint_created"; pipelineId: string; at: Date; checkpointId: string; stageName: string }
  | { type: "run_paused"; pipelineId: string; at: Date; pendingStages: string[] }
  | { type: "run_completed"; pipelineId: string; at: Date; durationMs: number }
  | { type: "run_failed"; pipelineId: string; at: Date; stageName: string; error: Error }
  | {
      /** The store no longer holds the run's checkpoints, though `expected` was written to it. */
      type: "history_lost";
      pipelineId: string;
      at: Date;
      expected: string;
      error: Error;
    };

/** How to build a {@link Pipeline}. Defaults follow the seed. */
export interface PipelineOptions {
  /** Pipeline name; runs are named after it. */
  name: string;
  steps: StepDefinition[];
  /** Write checkpoints (default false, as in the seed). */
  checkpointEnabled?: boolean;
  /** Store strategy or URL (default: `CAIRN_STORE`, else the file store at `.cairn/checkpoints`). */
  checkpointStrategy?: string;
  /** Options of the store. */
  checkpointConfig?: StoreConfig;
  /** A store URL, a store instance, or a CheckpointManager to use instead of strategy + config. */
  checkpointStore?: StoreSpec | CheckpointManager;
  /** Compression at rest of the manager the pipeline builds (the manager's `compression` option). */
  checkpointCompression?: CompressionSetting;
  /** Encryption at rest of the manager the pipeline builds: the key ring (the manager's `encryption` option). */
  checkpointEncryption?: EncryptionOptions;
  /** Continue the newest unfinished run of this pipeline on `execute()` (default true). */
  autoResume?: boolean;
  /** Checkpoint after every stage (default true); otherwise only on failure, pause and completion. */
  checkpointAfterEachStep?: boolean;
  /** Agents that steps name by string. */
  agents?: Record<string, Agent>;
  /** Called for every event; a throwing listener is reported as a warning, never breaks the run. */
  onEvent?: (event: PipelineEvent) => void;
  /** How long a runner's lease lasts without renewal (default 30 s). */
  leaseTtlMs?: number;
}

/** Options of `execute()`. */
export interface ExecuteOptions {
  /** The run's inputs; on resume, defaults to the inputs the run started with. */
  inputs?: Record<string, unknown>;
  /** `false` starts a fresh run even when an unfinished one exists. */
  resume?: boolean;
  /** Execute (or resume) this run id instead of picking one. */
  runId?: string;
  /** Validate and return the plan without running agents or writing checkpoints. */
  dryRun?: boolean;
  /** Stops the run after the current stage, with a checkpoint. */
  signal?: AbortSignal;
}

/** What happened to one stage in an execution. */
export interface StepResult {
  status: "completed" | "skipped";
  output: unknown;
  /** Attempts made in this execution (0 when skipped). */
  attempts: number;
  durationMs: number;
  /** The checkpoint written after the stage, when there was one. */
  checkpointId: string | undefined;
}

/** Why a completed stage ran again on resume. */
export interface RerunReason {
  stageName: string;
  reason: string;
}

/** What `execute()` resolves with. */
export interface PipelineResults {
  pipelineId: string;
  name: string;
  /** `paused` when stopped by `pause()` or a signal; the run resumes later. */
  status: "completed" | "paused";
  startedAt: Date;
  completedAt: Date;
  stepsResults: Record<string, StepResult>;
  /** Every stage output of the run, by stage name. */
  finalOutputs: Record<string, unknown>;
  checkpointsCreated: number;
  /** The checkpoint this execution resumed from (for a run already complete, its last checkpoint). */
  resumedFrom?: string;
  /** True when the run had already completed before this execution: nothing ran, nothing was written. */
  alreadyComplete?: boolean;
  /** Stages skipped because a valid checkpoint already held them. */
  skippedStages: string[];
  /** Completed stages that ran again because they or an earlier stage changed, with the planner's reason. */
  rerunStages: RerunReason[];
  /** Stages not run (only when paused). */
  pendingStages: string[];
}

/** One stage of a dry run's plan. */
export interface PlannedStage {
  stageName: string;
  stageIndex: number;
  agent: string;
  /** The planner's decision; `execute()` does exactly this. */
  action: StageAction;
  /** Always set for `rerun`, naming what changed or the earlier stage that runs. */
  reason?: string;
  inputs: Record<string, unknown>;
}

/** What `execute({ dryRun: true })` resolves with. */
export interface DryRunResult {
  name: string;
  status: "dry_run";
  /** The run that would be executed; undefined when a new run would start. */
  pipelineId: string | undefined;
  resumeFrom: string | undefined;
  stages: PlannedStage[];
}
