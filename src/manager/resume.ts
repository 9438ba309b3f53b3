/**
 * The manager's resume paths: the newest verified checkpoint, the salvaged resume point, and the
 * resume context built from a checkpoint. Each forgets what the manager's writer knows of the run
 * when the resume is not from the checkpoint it wrote last.
 */
import { TooLargeError } from "../core/errors.js";
import { CheckpointStatus, type PipelineCheckpoint, type ResumeContext } from "../core/types.js";
import type { CheckpointStore } from "../stores/types.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";
import type { ChainWriter } from "./chain-writer.js";
import { assertLoadable } from "./limits.js";
import { findResumePoint } from "./runs.js";
import { findSalvagedResume, type SalvagedResume } from "./salvage.js";
import { decodeVerified } from "./verify.js";

/** What the resume paths need of their manager. */
export interface ResumeDeps {
  getStore(): Promise<AtRestStore>;
  writer: ChainWriter;
  maxRecordBytes: number;
}

/** The run's newest checkpoint that verifies and is resumable; corrupt ones are skipped. */
export async function loadLatest(d: ResumeDeps, pipelineId: string): Promise<PipelineCheckpoint | undefined> {
  const found = await findResumePoint(() => d.getStore(), pipelineId);
  // Resuming behind the newest checkpoint (it failed verification): what this manager knows
  // of the run's stored outputs may be wrong, so the next write reads the run again.
  const last = d.writer.lastWritten(pipelineId);
  if (last !== undefined && last !== found?.record.metadata.checkpoint_id) d.writer.forget(pipelineId);
  if (found) assertLoadable(found.record.metadata, d.maxRecordBytes);
  return found && decodeVerified(found);
}

/** The run's resume point at stage granularity (salvage); see `CheckpointManager.loadResumePoint`. */
export async function loadSalvaged(d: ResumeDeps, pipelineId: string): Promise<SalvagedResume | undefined> {
  const found = await findSalvagedResume(await d.getStore(), pipelineId);
  const base = found?.checkpoint.metadata.checkpointId;
  // Resuming behind the newest checkpoint, or past a damaged output: what this manager knows
  // of the run's stored outputs may be wrong, so the next write reads the run again.
  const last = d.writer.lastWritten(pipelineId);
  const salvaged = found !== undefined && Object.keys(found.unverified).length > 0;
  if (last !== undefined && (last !== base || salvaged)) d.writer.forget(pipelineId);
  if (found) {
    const { checkpointId, dataSize } = found.checkpoint.metadata;
    if (dataSize > d.maxRecordBytes)
      throw new TooLargeError(`Checkpoint ${checkpointId}`, dataSize, d.maxRecordBytes);
  }
  return found;
}

/** The resume context of a checkpoint resumed from, its resume already counted. */
export function resumeContextOf(checkpoint: PipelineCheckpoint, resumeCount: number): ResumeContext {
  const { metadata } = checkpoint;
  return {
    checkpointId: metadata.checkpointId,
    pipelineId: metadata.pipelineId,
    pipelineName: metadata.pipelineName,
    resumeFromStage: checkpoint.pendingStages[0],
    resumeFromIndex: checkpoint.completedStages.length,
    completedStages: checkpoint.completedStages,
    pendingStages: checkpoint.pendingStages,
    stateData: checkpoint.stateData,
    agentOutputs: checkpoint.agentOutputs,
    provenanceHashes: checkpoint.provenanceHashes,
    pipelineVersion: checkpoint.pipelineVersion,
    outputVersions: checkpoint.outputVersions,
    outputMigrations: checkpoint.outputMigrations,
    resumeCount,
  };
}

/** Marks a checkpoint as resumed from and bumps its resume count; returns the new count. */
export async function markResumed(store: CheckpointStore, checkpoint: PipelineCheckpoint): Promise<number> {
  const resumeCount = checkpoint.metadata.resumeCount + 1;
  await store.updateCheckpoint(checkpoint.metadata.checkpointId, {
    status: CheckpointStatus.Resumed,
    resume_count: resumeCount,
  });
  return resumeCount;
}
