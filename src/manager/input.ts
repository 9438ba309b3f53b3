/**
 * The input of `createCheckpoint`: checked and encoded before the store is touched, then sealed
 * as the child of the run's newest readable checkpoint.
 */
import { encode } from "../core/codec.js";
import { InvalidArgumentError } from "../core/errors.js";
import { assertValidName, newCheckpointId, pipelineNameFromRunId } from "../core/ids.js";
import type { CheckpointRecord, OutputRecord, StatusPatch, StoredMetadata } from "../core/record.js";
import {
  CHECKPOINT_STATUSES,
  CheckpointStatus,
  type CheckpointStatusValue,
  type CreateCheckpointInput,
  FORMAT_VERSION,
  type OutputMigration,
} from "../core/types.js";
import type { DataKey } from "../transforms/data-key.js";
import { checkProvenance, checkStageList, type EncodedContent, encodeOutputs, sealRecord } from "./build.js";

/** A `createCheckpoint` input, checked, with its content encoded. */
export interface CheckedInput {
  pipelineId: string;
  pipelineName: string;
  stageName: string;
  stageIndex: number;
  status: CheckpointStatusValue;
  errorMessage: string | undefined;
  content: EncodedContent;
}

/** Checks a `createCheckpoint` input and encodes its content; throws on the first problem. */
export function checkInput(input: CreateCheckpointInput): CheckedInput {
  if (input === null || typeof input !== "object")
    throw new InvalidArgumentError("createCheckpoint needs an input object");
  const pipelineId = assertValidName("pipelineId", input.pipelineId);
  const stageName = assertValidName("stageName", input.stageName);
  const pipelineName = input.pipelineName ?? pipelineNameFromRunId(pipelineId);
  if (typeof pipelineName !== "string" || pipelineName.length === 0) {
    throw new InvalidArgumentError("pipelineName must be a non-empty string");
  }
  if (!Number.isInteger(input.stageIndex) || input.stageIndex < 0) {
    throw new InvalidArgumentError(
      `stageIndex must be a non-negative integer, got ${String(input.stageIndex)}`,
    );
  }
  const status = input.status ?? CheckpointStatus.InProgress;
  assertStatus(status);
  if (input.errorMessage !== undefined && typeof input.errorMessage !== "string") {
    throw new InvalidArgumentError("errorMessage must be a string");
  }
  const stateData = input.stateData ?? {};
  if (stateData === null || typeof stateData !== "object" || Array.isArray(stateData)) {
    throw new InvalidArgumentError("stateData must be an object");
  }
  // Encode before touching the store: an unserializable value must not leave anything behind.
  const outputs = encodeOutputs(input.agentOutputs);
  const outputVersions = checkOutputVersions(input.outputVersions, outputs);
  const content = {
    stateText: encode(stateData, "stateData"),
    completedStages: checkStageList("completedStages", input.completedStages),
    pendingStages: checkStageList("pendingStages", input.pendingStages),
    provenanceHashes: checkProvenance(input.provenanceHashes),
    outputs,
    pipelineVersion: checkPipelineVersion(input.pipelineVersion),
    outputVersions,
    outputMigrations: checkOutputMigrations(input.outputMigrations, outputs, outputVersions),
  };
  return {
    pipelineId,
    pipelineName,
    stageName,
    stageIndex: input.stageIndex,
    status,
    errorMessage: input.errorMessage,
    content,
  };
}

/** Seals a checked input as the checkpoint after `parent`, the run's newest readable one. */
export function sealChild(
  input: CheckedInput,
  parent: StoredMetadata | undefined,
  timestamp: Date,
  key?: DataKey,
): { record: CheckpointRecord; outputs: OutputRecord[] } {
  return sealRecord(
    {
      checkpoint_id: newCheckpointId(input.pipelineId, input.stageName, timestamp),
      pipeline_id: input.pipelineId,
      pipeline_name: input.pipelineName,
      stage_name: input.stageName,
      stage_index: input.stageIndex,
      sequence: (parent?.sequence ?? 0) + 1,
      timestamp: timestamp.toISOString(),
      status: input.status,
      error_message: input.errorMessage ?? null,
      resume_count: 0,
      parent_checkpoint_id: parent?.checkpoint_id ?? null,
      parent_checksum: parent?.checksum ?? null,
      format_version: FORMAT_VERSION,
    },
    input.content,
    undefined,
    key,
  );
}

const PRINTABLE = /^[\x20-\x7e\u00a0-\uffff]{1,128}$/u;

/** Checks a pipeline version: 1–128 printable characters, or undefined. */
export function checkPipelineVersion(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !PRINTABLE.test(value))
    throw new InvalidArgumentError(
      `pipelineVersion must be a string of 1 to 128 printable characters, got ${JSON.stringify(value)}`,
    );
  return value;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);
const isVersion = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 1;

/** Checks output versions: stage (with an output) → integer ≥ 1; the other stages are version 1. */
function checkOutputVersions(value: unknown, outputs: ReadonlyMap<string, unknown>): Record<string, number> {
  if (value === undefined) return {};
  if (!isPlainObject(value))
    throw new InvalidArgumentError("outputVersions must be an object of stage name → version");
  for (const [stage, version] of Object.entries(value)) {
    if (!outputs.has(stage))
      throw new InvalidArgumentError(`outputVersions.${stage} names a stage with no agentOutputs entry`);
    if (!isVersion(version))
      throw new InvalidArgumentError(
        `outputVersions.${stage} must be an integer of at least 1, got ${JSON.stringify(version)}`,
      );
  }
  return value as Record<string, number>;
}

/** Checks output migrations: each of a stage with an output, `from < to`, `to` its output version. */
function checkOutputMigrations(
  value: unknown,
  outputs: ReadonlyMap<string, unknown>,
  versions: Record<string, number>,
): Record<string, OutputMigration> {
  if (value === undefined) return {};
  if (!isPlainObject(value))
    throw new InvalidArgumentError("outputMigrations must be an object of stage name → migration");
  const out: Record<string, OutputMigration> = {};
  for (const [stage, m] of Object.entries(value)) {
    const where = `outputMigrations.${stage}`;
    if (!outputs.has(stage))
      throw new InvalidArgumentError(`${where} names a stage with no agentOutputs entry`);
    if (!isPlainObject(m) || !isVersion(m.from) || !isVersion(m.to) || m.from >= m.to)
      throw new InvalidArgumentError(`${where} must be { from, to, by } with integers 1 ≤ from < to`);
    if (m.to !== (versions[stage] ?? 1))
      throw new InvalidArgumentError(
        `${where}.to (${m.to}) is not the stage's output version (${versions[stage] ?? 1})`,
      );
    if (m.by !== undefined && typeof m.by !== "string")
      throw new InvalidArgumentError(`${where}.by must be a pipeline version string or undefined`);
    out[stage] = { from: m.from, to: m.to, by: m.by };
  }
  return out;
}

/** Throws `InvalidArgumentError` unless `status` is a checkpoint status. */
export function assertStatus(status: unknown): asserts status is CheckpointStatusValue {
  if (!CHECKPOINT_STATUSES.includes(status as CheckpointStatusValue)) {
    throw new InvalidArgumentError(
      `Unknown checkpoint status ${JSON.stringify(status)} (expected one of ${CHECKPOINT_STATUSES.join(", ")})`,
    );
  }
}

/** The patch of `updateCheckpointStatus`: the status, and the error message when one is given. */
export function statusPatch(status: CheckpointStatusValue, errorMessage: string | undefined): StatusPatch {
  return { status, ...(errorMessage !== undefined ? { error_message: errorMessage } : {}) };
}
