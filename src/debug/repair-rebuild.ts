/**
 * The valid-checkpoint half of `cairn repair`: rebuilds what can be rebuilt from verified data,
 * missing provenance (as a new checkpoint, since a written one never changes) and the store's
 * own indexes.
 */
import { canonicalJson } from "../core/codec.js";
import { sha256 } from "../core/record.js";
import { CheckpointStatus } from "../core/types.js";
import { EncodedOutput } from "../manager/build.js";
import { decodeVerified, type VerifiedRecord } from "../manager/verify.js";
import type { Lease } from "../stores/types.js";
import { checkpointBackup, writeBackup } from "./repair-backup.js";
import {
  newReport,
  type RepairContext,
  type RepairReport,
  resumePoint,
  underLease,
} from "./repair-context.js";

/** The provenance hash rebuilt for a stage from its verified output alone (the agent is not known here). */
export function rebuiltProvenance(stage: string, outputHash: string): string {
  return sha256(canonicalJson({ stage, output: outputHash }));
}

/** Repairs a checkpoint that verifies: provenance it lacks and the store's indexes. */
export async function rebuildValid(ctx: RepairContext, verified: VerifiedRecord): Promise<RepairReport> {
  const { record, body } = verified;
  const m = record.metadata;
  const missing = Object.keys(body.output_refs).filter((s) => body.provenance_hashes[s] === undefined);
  const out = newReport(ctx, m.checkpoint_id, m.pipeline_id, "healthy");
  // Indexes first: a run index that lost entries would mislead the resume-point check below.
  if (ctx.store.rebuildIndexes) {
    if (ctx.dryRun) out.actions.push(`would rebuild the ${ctx.store.strategy} store's indexes`);
    else {
      const done = await ctx.store.rebuildIndexes(m.pipeline_id);
      out.actions.push(...(done.length > 0 ? done : ["store indexes: nothing to rebuild"]));
    }
  }
  let rebuildable = missing.length > 0;
  const current = rebuildable ? await resumePoint(ctx, m.pipeline_id) : undefined;
  if (rebuildable && current !== m.checkpoint_id) {
    // The copy would become the newest checkpoint, and so the resume point in place of `current`.
    rebuildable = false;
    out.actions.push(
      `provenance is missing for ${missing.join(", ")}, not rebuilt: this is not the run's resume point ` +
        `(${current ?? "none"}), and a rebuilt copy would become the resume point in its place`,
    );
  }
  if (rebuildable) {
    out.status = ctx.dryRun ? "would-rebuild" : "rebuilt";
    const note = "(from each stage's verified output hash; the agent identity is not known here)";
    if (ctx.dryRun)
      out.actions.push(`would append a copy with provenance rebuilt for ${missing.join(", ")} ${note}`);
    else {
      await underLease(ctx, m.pipeline_id, (fence) => appendRebuilt(ctx, verified, missing, out, fence));
      out.actions.push(
        `appended ${out.newCheckpointId} with provenance rebuilt for ${missing.join(", ")} ${note}`,
      );
    }
  }
  out.resumePoint = await resumePoint(ctx, m.pipeline_id);
  return out;
}

async function appendRebuilt(
  ctx: RepairContext,
  verified: VerifiedRecord,
  missing: readonly string[],
  out: RepairReport,
  fence: Lease,
): Promise<void> {
  const { record, body, outputs } = verified;
  const m = record.metadata;
  const at = ctx.now();
  out.backup = await writeBackup(
    ctx.backupDir,
    ctx.store,
    m.checkpoint_id,
    await checkpointBackup(ctx.store, record, []),
    at,
  );
  out.actions.push(`backed up the record and its outputs to ${out.backup}`);
  const checkpoint = decodeVerified(verified);
  const provenance = { ...body.provenance_hashes };
  for (const stage of missing)
    provenance[stage] = rebuiltProvenance(stage, body.output_refs[stage] as string);
  // The verified output texts are reused as they are: same bytes, same hashes.
  const agentOutputs: Record<string, EncodedOutput> = {};
  for (const [stage, hash] of Object.entries(body.output_refs)) {
    agentOutputs[stage] = EncodedOutput.fromText(outputs.get(hash) as string);
  }
  const previous = checkpoint.stateData.repair;
  const failed = m.status === CheckpointStatus.Failed;
  out.newCheckpointId = await ctx.manager.createCheckpoint(
    {
      pipelineId: m.pipeline_id,
      pipelineName: m.pipeline_name,
      stageName: m.stage_name,
      stageIndex: m.stage_index,
      stateData: {
        ...checkpoint.stateData,
        repair: {
          rebuiltFrom: m.checkpoint_id,
          provenanceRebuilt: missing,
          at: at.toISOString(),
          ...(previous !== undefined ? { previous } : {}),
        },
      },
      completedStages: checkpoint.completedStages,
      pendingStages: checkpoint.pendingStages,
      agentOutputs,
      provenanceHashes: provenance,
      // The copy holds the same outputs: their versions and migrations stand.
      ...(checkpoint.pipelineVersion !== undefined ? { pipelineVersion: checkpoint.pipelineVersion } : {}),
      outputVersions: checkpoint.outputVersions,
      outputMigrations: checkpoint.outputMigrations,
      // A failed stage stays failed; anything else resumable is a completed stage's checkpoint.
      status: failed ? CheckpointStatus.Failed : CheckpointStatus.Completed,
      ...(failed && m.error_message !== null ? { errorMessage: m.error_message } : {}),
    },
    { fence },
  );
}
