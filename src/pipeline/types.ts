/** Types of the Pipeline SDK. */
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { StoreConfig, StoreSpec } from "../stores/registry.js";
import type { CompressionSetting } from "../transforms/compression.js";
import type { EncryptionOptions } from "../transforms/keys.js";
import type { PlanEstimate } from "./plan-estimate.js";
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
  /**
   * The shape of this step's output (integer ≥ 1, default 1). Bump it when a deploy changes what
   * the agent returns: on resume, a stored output of an older version is converted by
   * `migrateOutput`, or the stage runs again.
   */
  outputVersion?: number;
  /**
   * Converts a stored output of version `fromVersion` into the shape of `outputVersion`, so a
   * resume reuses it instead of running the agent again. Pure by contract: it may also run in a
   * dry run, and its result is stored only when the run goes on.
   */
  migrateOutput?: (output: unknown, fromVersion: number) => unknown | Promise<unknown>;
  /**
   * The stages this one waits for (YAML `depends_on`). Absent: the step listed before it (the
   * first step: none), so a pipeline without it is linear. `[]` makes the step a root.
   */
  dependsOn?: string[];
  /**
   * The agent acts on the outside world (YAML `side_effects`): with `checkpointPolicy: "auto"`
   * the checkpoints before and after it are never skipped, and with `durability: "async"` the
   * run waits for them (default false).
   */
  sideEffects?: boolean;
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
      /** A stored output was converted by the step's `migrateOutput` instead of running the agent. */
      type: "stage_migrated";
      pipelineId: string;
      at: Date;
      stageName: string;
      stageIndex: number;
      fromVersion: number;
      toVersion: number;
    }
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
      /**
       * A replica of `checkpointReplicas` has a problem: a corrupt record not copied, an outage it
       * retries, a replicator that failed or did not finish in time. The run goes on regardless.
       */
      type: "replica_problem";
      pipelineId: string;
      at: Date;
      /** The replica's URL (without a password), strategy or location. */
      replica: string;
      kind: "corrupt" | "outage" | "diverged" | "trimmed" | "empty-source" | "no-feed" | "failed" | "timeout";
      message: string;
      error?: Error;
    }
  | {
      /** A replica caught up with the run after `execute()` ended. */
      type: "replica_synced";
      pipelineId: string;
      at: Date;
      replica: string;
      /** Checkpoints copied to it during this execution. */
      checkpointsCopied: number;
    }
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
  /** The pipeline's own version (1–128 printable characters, e.g. `2.0.0`), recorded in every checkpoint. */
  version?: string;
  /**
   * Converts the inputs a run was started with when it resumes under another pipeline version
   * (`fromVersion`: the version that wrote them, undefined when none was set). Not called when
   * `execute()` is given inputs. Pure by contract, like `migrateOutput`.
   */
  migrateState?: (
    inputs: Record<string, unknown>,
    fromVersion: string | undefined,
  ) => Record<string, unknown> | Promise<Record<string, unknown>>;
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
  /**
   * Stores that get a copy of each run while it executes (URLs or `{ strategy, config }`): one
   * replicator per replica follows the run's checkpoints in this process, as stored (encrypted
   * records stay encrypted). Stages never wait for it; a replica's problems are reported as
   * `replica_problem` events and never fail the run. YAML: `checkpoint: { replicas: [...] }`.
   */
  checkpointReplicas?: StoreSpec[];
  /** How long each replica may take to catch up after `execute()` ends (default 5,000 ms). */
  checkpointReplicaTimeoutMs?: number;
  /** Continue the newest unfinished run of this pipeline on `execute()` (default true). */
  autoResume?: boolean;
  /** `false` is `durability: "exit"` (kept for older code); `true` changes nothing. */
  checkpointAfterEachStep?: boolean;
  /**
   * When a completed stage counts as done (YAML `durability`): `"sync"` (default) once its
   * checkpoint is durable; `"async"` at once, its checkpoint written while the next stages run
   * (a crash re-runs at most the stages whose checkpoints were in flight; a write error fails the
   * run at the next stage boundary); `"exit"`: checkpoints only on failure, pause and completion.
   */
  durability?: "sync" | "async" | "exit";
  /**
   * `"every-stage"` (default) or `"auto"`: skip the checkpoint after a stage where the cost model
   * learned from the store says re-running it is cheaper than writing it (YAML `checkpoint_policy`).
   */
  checkpointPolicy?: "every-stage" | "auto";
  /** Agents that steps name by string. */
  agents?: Record<string, Agent>;
  /** Called for every event; a throwing listener is reported as a warning, never breaks the run. */
  onEvent?: (event: PipelineEvent) => void;
  /** How long a runner's lease lasts without renewal (default 30 s). */
  leaseTtlMs?: number;
  /** How many independent stages run at once (integer ≥ 1, default 4; YAML `max_concurrency`). */
  maxConcurrency?: number;
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
  /** Stops the run once the stages running finish, with a checkpoint. */
  signal?: AbortSignal;
}

/** What happened to one stage in an execution. */
export interface StepResult {
  /** `migrated`: its stored output was converted by `migrateOutput`; the agent was not called. */
  status: "completed" | "skipped" | "migrated";
  output: unknown;
  /** Attempts made in this execution (0 when skipped or migrated). */
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

/** A stage whose stored output `migrateOutput` converted on resume. */
export interface MigratedStage {
  stageName: string;
  fromVersion: number;
  toVersion: number;
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
  /** Completed stages whose stored output was migrated to the step's `outputVersion` instead of re-run. */
  migratedStages: MigratedStage[];
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
  /** Always set for `rerun` and `migrate`, naming what changed or the earlier stage that runs. */
  reason?: string;
  inputs: Record<string, unknown>;
  /** For `migrate`: the stored output version and the step's. */
  fromVersion?: number;
  toVersion?: number;
  /** For `skip` and `migrate`: the checkpoint its stored output comes from (salvage may pick an older one). */
  source?: string;
}

/** What `execute({ dryRun: true })` resolves with. */
export interface DryRunResult {
  name: string;
  status: "dry_run";
  /** The run that would be executed; undefined when a new run would start. */
  pipelineId: string | undefined;
  /** The pipeline's `version` option, recorded in the checkpoints a run writes. */
  pipelineVersion: string | undefined;
  resumeFrom: string | undefined;
  stages: PlannedStage[];
  /**
   * Time to finish from the recovery point and time it saves, from the cost model learned from
   * the pipeline's newest runs in the store; absent without a store or without history.
   */
  estimate?: PlanEstimate;
}
