/**
 * The data model of the seed document. TypeScript uses camelCase; everything persisted
 * (files, SQL columns, Redis values, export files) uses the seed's snake_case names.
 *
 * Glossary:
 * - run / `pipelineId`: one execution of a pipeline; resuming continues the same run.
 * - stage / `stageName`: one step of a run; its result is the stage's output.
 * - checkpoint: the saved state of a run after one stage; written once, only its status
 *   fields (status, error message, resume count) change afterwards.
 * - resume point: the newest checkpoint of a run that verifies and is resumable.
 */

/** Checkpoint statuses, as in the seed. */
export const CheckpointStatus = {
  InProgress: "in_progress",
  Completed: "completed",
  Failed: "failed",
  Resumed: "resumed",
  Expired: "expired",
} as const;

/** One of the values of {@link CheckpointStatus}. */
export type CheckpointStatusValue = (typeof CheckpointStatus)[keyof typeof CheckpointStatus];

/** Every status, in display order. */
export const CHECKPOINT_STATUSES: readonly CheckpointStatusValue[] = Object.values(CheckpointStatus);

/** Statuses a run may resume from; `expired` checkpoints are kept for audit only. */
export const RESUMABLE_STATUSES: ReadonlySet<CheckpointStatusValue> = new Set([
  CheckpointStatus.InProgress,
  CheckpointStatus.Completed,
  CheckpointStatus.Failed,
  CheckpointStatus.Resumed,
]);

/** Storage strategies, as in the seed (`database` is an alias of `postgres`). */
export const STRATEGIES = ["file", "sqlite", "database", "postgres", "redis", "memory"] as const;

/** One of the storage strategy names. */
export type Strategy = (typeof STRATEGIES)[number];

/** Stage name of the checkpoint written when a run finishes successfully. */
export const PIPELINE_COMPLETE_STAGE = "pipeline_complete";

/**
 * Version of the checkpoint record format cairn writes; bumped on any change of the format.
 * Older formats are still read (upcast in memory, see `formats.ts`).
 */
export const FORMAT_VERSION = 2;

/** How a stage's stored output was produced by a user migration (`migrateOutput`). */
export interface OutputMigration {
  /** The output version it was migrated from. */
  from: number;
  /** The output version it was migrated to. */
  to: number;
  /** The pipeline version that migrated it, when the pipeline has one. */
  by: string | undefined;
}

/** Metadata of one checkpoint. */
export interface CheckpointMetadata {
  /** Unique, readable id: `{pipelineId}_{stageName}_{UTC time}_{suffix}`. */
  checkpointId: string;
  /** The run this checkpoint belongs to. */
  pipelineId: string;
  /** The pipeline's name (several runs share it). */
  pipelineName: string;
  /** The stage this checkpoint was taken after. */
  stageName: string;
  /** Position of that stage in the pipeline, from 0. */
  stageIndex: number;
  /** Position of this checkpoint in its run's history, from 1; orders checkpoints exactly. */
  sequence: number;
  /** When the checkpoint was created (UTC). */
  timestamp: Date;
  /** Mutable status. */
  status: CheckpointStatusValue;
  /** SHA-256 (hex) over the checkpoint's immutable content. */
  checksum: string;
  /** Bytes of encoded state and outputs the checkpoint holds. */
  dataSize: number;
  /** Error message of a failed stage. Mutable. */
  errorMessage?: string;
  /** How many times a run resumed from this checkpoint. Mutable. */
  resumeCount: number;
  /** The run's previous checkpoint, if any. */
  parentCheckpointId?: string;
  /** The previous checkpoint's checksum: links the run's history into a hash chain. */
  parentChecksum?: string;
  /** Persisted format version. */
  formatVersion: number;
}

/** A checkpoint with its full content. */
export interface PipelineCheckpoint {
  /** Metadata, including the integrity checksum. */
  metadata: CheckpointMetadata;
  /** Run state: inputs, pipeline configuration and anything the runner keeps. */
  stateData: Record<string, unknown>;
  /** Stages completed when the checkpoint was taken, in order. */
  completedStages: string[];
  /** Stages still to run, in order. */
  pendingStages: string[];
  /** Output of every completed stage, by stage name. */
  agentOutputs: Record<string, unknown>;
  /** Provenance hash of every completed stage, by stage name. */
  provenanceHashes: Record<string, string>;
  /** The Pipeline's `version` option when the checkpoint was written. */
  pipelineVersion: string | undefined;
  /** The version of every stage output (1 for records written before output versions). */
  outputVersions: Record<string, number>;
  /** The outputs a user migration produced, by stage name. */
  outputMigrations: Record<string, OutputMigration>;
}

/** What `CheckpointManager.createCheckpoint` takes. */
export interface CreateCheckpointInput {
  pipelineId: string;
  /** Defaults to the part of `pipelineId` before its run suffix, or `pipelineId` itself. */
  pipelineName?: string;
  stageName: string;
  stageIndex: number;
  stateData?: Record<string, unknown>;
  completedStages?: string[];
  pendingStages?: string[];
  agentOutputs?: Record<string, unknown>;
  provenanceHashes?: Record<string, string>;
  /** The Pipeline's `version` option (1–128 printable characters). */
  pipelineVersion?: string;
  /** Output version by stage (integers ≥ 1); stages with an output left out default to 1. */
  outputVersions?: Record<string, number>;
  /** The outputs a user migration produced, by stage; each must have an output. */
  outputMigrations?: Record<string, OutputMigration>;
  /** Defaults to `in_progress`. */
  status?: CheckpointStatusValue;
  errorMessage?: string;
}

/** What `resumePipeline` returns: everything a runner needs to continue a run. */
export interface ResumeContext {
  checkpointId: string;
  pipelineId: string;
  pipelineName: string;
  /** First stage to run, or undefined when nothing is pending. */
  resumeFromStage: string | undefined;
  /** Index of that stage in the pipeline. */
  resumeFromIndex: number;
  completedStages: string[];
  pendingStages: string[];
  stateData: Record<string, unknown>;
  agentOutputs: Record<string, unknown>;
  provenanceHashes: Record<string, string>;
  /** The Pipeline's `version` option when the checkpoint was written. */
  pipelineVersion: string | undefined;
  /** The version of every stage output. */
  outputVersions: Record<string, number>;
  /** The outputs a user migration produced, by stage name. */
  outputMigrations: Record<string, OutputMigration>;
  /** Resume count of the checkpoint after this resume was recorded. */
  resumeCount: number;
}

/** One problem found when validating a checkpoint. */
export interface ValidationProblem {
  /** Stable kind of problem. */
  kind:
    | "unreadable"
    | "checksum_mismatch"
    | "output_missing"
    | "output_hash_mismatch"
    | "broken_chain"
    | "invalid_metadata";
  /** Human-readable explanation. */
  message: string;
}

/** Result of `validateCheckpoint`. */
export interface ValidationResult {
  checkpointId: string;
  valid: boolean;
  problems: ValidationProblem[];
  /** Invalid, and quarantined by `cairn repair` (status `expired`): a handled problem. */
  quarantined: boolean;
}

/**
 * A run summary's status: a checkpoint status, or `paused` for a run that is unfinished and
 * nobody is executing it: paused, stopped or its runner died; `cairn run`/`execute()` resumes it.
 */
export type RunSummaryStatus = CheckpointStatusValue | "paused";

/** Summary of one run, as `listPipelines` returns it. */
export interface PipelineSummary {
  pipelineId: string;
  pipelineName: string;
  /**
   * `completed` once the run wrote `pipeline_complete`; for an unfinished run whose newest
   * checkpoint is completed, resumed or in_progress: `in_progress` while a runner holds its lease,
   * else `paused`;
   * otherwise the newest checkpoint's status (`failed`, `expired`).
   */
  status: RunSummaryStatus;
  /** True once the run wrote its `pipeline_complete` checkpoint. */
  finished: boolean;
  checkpointCount: number;
  corruptCount: number;
  latestCheckpointId: string | undefined;
  latestStage: string | undefined;
  completedStages: number;
  totalStages: number;
  firstTimestamp: Date | undefined;
  lastTimestamp: Date | undefined;
  resumeCount: number;
}

/** What `getStatistics` returns; computed from the store. */
export interface CheckpointStatistics {
  totalCheckpoints: number;
  totalPipelines: number;
  /** Runs that have not written `pipeline_complete`. */
  activePipelines: number;
  completedPipelines: number;
  storageStrategy: string;
  checkpointsByStatus: Record<CheckpointStatusValue, number>;
  /** Listing entries that do not parse (unreadable); the name is kept for compatibility. */
  corruptCheckpoints: number;
  /**
   * With `verify`: the one check over every checkpoint. `invalid` includes the unreadable entries
   * and the quarantined checkpoints (`quarantined` says how many of them).
   */
  check?: { valid: number; invalid: number; quarantined: number };
  /** Sum of the checkpoints' `data_size`: each counts every output it refers to, shared or not. */
  totalDataSize: number;
  /** Bytes the store holds: each record body once and each distinct output of a run once. */
  storedDataSize: number;
  /** `totalDataSize` per checkpoint. */
  averageDataSize: number;
  /**
   * Record bodies and distinct outputs as stored at rest (compressed, encrypted) against their
   * uncompressed size, and how many are compressed or encrypted; works without keys.
   */
  atRest: {
    /** Bytes as stored. */
    storedBytes: number;
    /** Uncompressed bytes (records in `unsizedRecords` left out). */
    plainBytes: number;
    records: number;
    compressedRecords: number;
    encryptedRecords: number;
    /** Compressed and encrypted under a key not given: uncompressed size unknown. */
    unsizedRecords: number;
  };
  totalResumeCount: number;
  resumedPipelines: number;
  /** Share of resumed runs that went on to complete; `null` when no run was resumed. */
  resumeSuccessRate: number | null;
  oldestCheckpoint: Date | undefined;
  newestCheckpoint: Date | undefined;
}
