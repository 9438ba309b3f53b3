/**
 * `cairn repair`: deals with a damaged checkpoint without ever re-sealing data that changed.
 *
 * - Before any change it writes a backup of what is stored (see `repair-backup.ts`).
 * - A checkpoint that fails verification is quarantined: status `expired`, with an error
 *   message saying when, why and where the backup is. The checksum does not cover status
 *   fields, so nothing is re-sealed and it never becomes valid again; resume falls back to the
 *   newest valid ancestor. An entry that does not even parse is backed up and removed.
 * - Only with `force` is changed content accepted, and then as a NEW checkpoint holding the
 *   content as it is stored now, with a `repair` entry in its state data saying so; the old
 *   one is quarantined all the same, so the hash chain stays verifiable end to end.
 * - A valid checkpoint gets what can be rebuilt from verified data: missing provenance (as a new
 *   checkpoint) and the store's own indexes.
 */
import { resolve } from "node:path";
import { decode, decodeTree } from "../core/codec.js";
import { CheckpointCorruptError, CheckpointNotFoundError } from "../core/errors.js";
import { parseBody } from "../core/formats.js";
import { assertValidName } from "../core/ids.js";
import { type CheckpointBody, type CheckpointRecord, type StoredMetadata, sha256 } from "../core/record.js";
import { CheckpointStatus, type ValidationProblem } from "../core/types.js";
import { EncodedOutput } from "../manager/build.js";
import { checkRecord, listedParents, storeParents } from "../manager/check.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { CorruptEntry, ListedCheckpoint } from "../stores/types.js";
import { checkpointBackup, corruptEntryBackup, findCorruptEntry, writeBackup } from "./repair-backup.js";
import {
  DEFAULT_BACKUP_DIR,
  newReport,
  QUARANTINE_PREFIX,
  type RepairContext,
  type RepairOptions,
  type RepairReport,
  resumePoint,
  underLease,
} from "./repair-context.js";
import { rebuildValid } from "./repair-rebuild.js";

export {
  DEFAULT_BACKUP_DIR,
  QUARANTINE_PREFIX,
  type RepairOptions,
  type RepairReport,
  type RepairStatus,
} from "./repair-context.js";
export { rebuiltProvenance } from "./repair-rebuild.js";

/** Repairs one checkpoint as the module comment describes; `CAIRN_NOT_FOUND` for an unknown id. */
export async function repairCheckpoint(
  manager: CheckpointManager,
  checkpointId: string,
  options: RepairOptions = {},
): Promise<RepairReport> {
  assertValidName("checkpointId", checkpointId);
  const ctx: RepairContext = {
    manager,
    store: await manager.getStore(),
    dryRun: options.dryRun ?? false,
    force: options.force ?? false,
    backupDir: resolve(options.backupDir ?? DEFAULT_BACKUP_DIR),
    now: options.now ?? (() => new Date()),
  };
  let record: CheckpointRecord | undefined;
  try {
    record = await ctx.store.getCheckpoint(checkpointId);
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    const entry = await findCorruptEntry(ctx.store, checkpointId, error.message);
    if (!entry) throw error;
    return removeUnparseable(ctx, checkpointId, entry);
  }
  if (!record) throw new CheckpointNotFoundError(checkpointId);
  // The run is listed once: for the link to the parent and for the links from the children.
  const listing = await ctx.store.listCheckpoints(record.metadata.pipeline_id);
  const { problems, verified } = await checkRecord(
    ctx.store,
    record,
    listedParents(listing, storeParents(ctx.store)),
  );
  problems.push(...childLinkProblems(record, listing));
  if (problems.length === 0 && verified) return rebuildValid(ctx, verified);
  return ctx.force ? forceAccept(ctx, record, problems) : quarantine(ctx, record, problems);
}

/**
 * A checkpoint re-sealed after its children were written verifies on its own; only a child's
 * recorded `parent_checksum` gives it away, so the run's listing is checked for such links.
 */
function childLinkProblems(
  record: CheckpointRecord,
  listing: readonly ListedCheckpoint[],
): ValidationProblem[] {
  const { checkpoint_id: id, checksum } = record.metadata;
  const problems: ValidationProblem[] = [];
  for (const entry of listing) {
    if (!entry.ok || entry.metadata.parent_checkpoint_id !== id) continue;
    if (entry.metadata.parent_checksum !== checksum) {
      problems.push({
        kind: "broken_chain",
        message: `child ${entry.metadata.checkpoint_id} recorded this checkpoint's checksum as ${String(entry.metadata.parent_checksum).slice(0, 12)}…, it is now ${checksum.slice(0, 12)}…: re-sealed after the child was written`,
      });
    }
  }
  return problems;
}

async function removeUnparseable(
  ctx: RepairContext,
  checkpointId: string,
  entry: CorruptEntry,
): Promise<RepairReport> {
  const out = newReport(ctx, checkpointId, entry.pipelineId, ctx.dryRun ? "would-remove" : "removed");
  out.problems.push({ kind: "unreadable", message: entry.reason });
  if (ctx.force) out.actions.push("--force does not apply: content that does not parse cannot be accepted");
  if (ctx.dryRun) {
    out.actions.push(
      `would back up the raw entry ${entry.location}`,
      `would remove it from run ${entry.pipelineId}`,
    );
  } else {
    await underLease(ctx, entry.pipelineId, async () => {
      const content = await corruptEntryBackup(ctx.store, entry);
      out.backup = await writeBackup(ctx.backupDir, ctx.store, checkpointId, content, ctx.now());
      out.actions.push(`backed up the raw entry ${entry.location} to ${out.backup}`);
      await ctx.store.removeCorruptEntry(entry);
      out.actions.push(`removed the unparseable entry ${entry.location} from run ${entry.pipelineId}`);
    });
  }
  out.resumePoint = await resumePoint(ctx, entry.pipelineId);
  return out;
}

const summarize = (problems: readonly ValidationProblem[]) => problems.map((p) => p.message).join("; ");

async function quarantine(
  ctx: RepairContext,
  record: CheckpointRecord,
  problems: ValidationProblem[],
  acceptedAs?: string,
): Promise<RepairReport> {
  const m = record.metadata;
  const already = m.status === CheckpointStatus.Expired && m.error_message?.startsWith(QUARANTINE_PREFIX);
  const status = already ? "already-quarantined" : ctx.dryRun ? "would-quarantine" : "quarantined";
  const out = newReport(ctx, m.checkpoint_id, m.pipeline_id, status);
  out.problems = problems;
  if (already) out.actions.push(`already ${m.error_message}; nothing changed`);
  else if (ctx.dryRun) {
    out.actions.push(
      "would back up the record and its outputs",
      "would set its status to expired (quarantine)",
    );
  } else {
    await underLease(ctx, m.pipeline_id, () => quarantineRecord(ctx, record, problems, out, acceptedAs));
  }
  out.resumePoint = await resumePoint(ctx, m.pipeline_id);
  return out;
}

async function quarantineRecord(
  ctx: RepairContext,
  record: CheckpointRecord,
  problems: ValidationProblem[],
  out: RepairReport,
  acceptedAs?: string,
): Promise<void> {
  const at = ctx.now();
  if (out.backup === undefined) {
    const content = await checkpointBackup(ctx.store, record, problems);
    out.backup = await writeBackup(ctx.backupDir, ctx.store, record.metadata.checkpoint_id, content, at);
    out.actions.push(`backed up the record and its outputs to ${out.backup}`);
  }
  const accepted = acceptedAs ? `; its content was accepted with --force as ${acceptedAs}` : "";
  const message = `${QUARANTINE_PREFIX} at ${at.toISOString()}: ${summarize(problems)}; backup ${out.backup}${accepted}`;
  // Status fields are outside the checksum: the record stays exactly as invalid as it was.
  await ctx.manager.updateCheckpointStatus(record.metadata.checkpoint_id, CheckpointStatus.Expired, message);
  out.actions.push(
    `quarantined ${record.metadata.checkpoint_id}: status expired, so resume no longer uses it`,
  );
}

/**
 * The checkpoint a forced acceptance of `m` already appended (same stage, later in the run, its
 * `stateData.repair` naming `m` and its checksum), if any. Only valid checkpoints count.
 */
async function earlierAcceptance(ctx: RepairContext, m: StoredMetadata): Promise<string | undefined> {
  for (const entry of await ctx.store.listCheckpoints(m.pipeline_id)) {
    if (!entry.ok) continue;
    const c = entry.metadata;
    if (c.sequence <= m.sequence || c.stage_name !== m.stage_name) continue;
    let repair: unknown;
    try {
      repair = (await ctx.manager.loadCheckpoint(c.checkpoint_id)).stateData.repair;
    } catch (error) {
      // An invalid or vanished checkpoint is no acceptance; a store error is thrown.
      if (error instanceof CheckpointCorruptError || error instanceof CheckpointNotFoundError) continue;
      throw error;
    }
    const r = repair as { forcedFrom?: unknown; originalChecksum?: unknown } | undefined;
    if (r?.forcedFrom === m.checkpoint_id && r.originalChecksum === m.checksum) return c.checkpoint_id;
  }
  return undefined;
}

/** The content of a checkpoint as stored now, decoded; every reason it cannot be accepted otherwise. */
async function currentContent(ctx: RepairContext, record: CheckpointRecord) {
  const id = record.metadata.checkpoint_id;
  const refusals: string[] = [];
  let body: CheckpointBody;
  let stateData: Record<string, unknown> = {};
  try {
    body = parseBody(record.metadata, record.body);
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    throw new CheckpointCorruptError(id, `cannot accept it with --force: ${(error as Error).message}`);
  }
  try {
    const state = decodeTree(body.state_data);
    if (state === null || typeof state !== "object" || Array.isArray(state))
      refusals.push("its state data is not an object");
    else stateData = state as Record<string, unknown>;
  } catch (error) {
    refusals.push(`its state data does not decode: ${(error as Error).message}`);
  }
  const hashes = [...new Set(Object.values(body.output_refs))];
  const stored =
    hashes.length > 0 ? await ctx.store.getOutputs(record.metadata.pipeline_id, hashes) : new Map();
  const agentOutputs: Record<string, unknown> = {};
  const changed: string[] = [];
  for (const [stage, hash] of Object.entries(body.output_refs)) {
    const text = stored.get(hash);
    if (text === undefined) {
      refusals.push(
        `the output of stage ${stage} (${hash.slice(0, 12)}…) is missing, and missing data cannot be accepted`,
      );
      continue;
    }
    try {
      // Re-encoded canonically: a changed output is taken as it is, under its new hash.
      agentOutputs[stage] = EncodedOutput.of(decode(text), `agentOutputs.${stage}`);
    } catch (error) {
      refusals.push(`the output of stage ${stage} does not decode: ${(error as Error).message}`);
    }
    if (sha256(text) !== hash) changed.push(stage);
  }
  if (refusals.length > 0) {
    throw new CheckpointCorruptError(
      id,
      refusals.map((r) => `cannot accept it with --force: ${r}`),
    );
  }
  return { body, stateData, agentOutputs, changed };
}

/** The pipeline and output versions a forced copy keeps; a changed output is no migration's result. */
function versionsOf(body: CheckpointBody, changed: readonly string[]) {
  const migrations = Object.entries(body.output_migrations).filter(([s]) => !changed.includes(s));
  return {
    ...(body.pipeline_version !== null ? { pipelineVersion: body.pipeline_version } : {}),
    outputVersions: body.output_versions,
    outputMigrations: Object.fromEntries(
      migrations.map(([s, m]) => [s, { from: m.from, to: m.to, by: m.by ?? undefined }]),
    ),
  };
}

async function forceAccept(
  ctx: RepairContext,
  record: CheckpointRecord,
  problems: ValidationProblem[],
): Promise<RepairReport> {
  const m = record.metadata;
  // Accepted once: forcing again would append one more copy each time.
  if (m.status === CheckpointStatus.Expired && m.error_message?.includes("accepted with --force as")) {
    return quarantine(ctx, record, problems);
  }
  // Refuses (throws) before anything is written when the content cannot be accepted.
  const { body, stateData, agentOutputs, changed } = await currentContent(ctx, record);
  const out = newReport(
    ctx,
    m.checkpoint_id,
    m.pipeline_id,
    ctx.dryRun ? "would-force-accept" : "force-accepted",
  );
  out.problems = problems;
  // Provenance hashes cover each stage's output: those of changed outputs no longer hold.
  const provenance = Object.fromEntries(
    Object.entries(body.provenance_hashes).filter(([s]) => !changed.includes(s)),
  );
  const dropped = Object.keys(body.provenance_hashes).filter((s) => changed.includes(s));
  const at = ctx.now();
  const repair: Record<string, unknown> = {
    forcedFrom: m.checkpoint_id,
    originalChecksum: m.checksum,
    reason: problems.map((p) => p.message),
    at: at.toISOString(),
    ...(dropped.length > 0 ? { provenanceDropped: dropped } : {}),
    ...(stateData.repair !== undefined ? { previous: stateData.repair } : {}),
  };
  const accepting = `the content of ${m.checkpoint_id} as stored now (stage ${m.stage_name})`;
  if (ctx.dryRun) {
    out.actions.push(
      "would back up the record and its outputs",
      `would append a new checkpoint holding ${accepting}, recording the forced acceptance in stateData.repair`,
      "would quarantine the changed checkpoint (status expired); it stays invalid",
    );
  } else {
    await underLease(ctx, m.pipeline_id, async (fence) => {
      // A repair killed between the append and the quarantine left its copy: finish that one.
      const earlier = await earlierAcceptance(ctx, m);
      if (earlier !== undefined) {
        out.newCheckpointId = earlier;
        out.actions.push(
          `found ${earlier}, appended by an earlier forced repair that did not finish; not appending again`,
        );
        await quarantineRecord(ctx, record, problems, out, earlier);
        return;
      }
      out.backup = await writeBackup(
        ctx.backupDir,
        ctx.store,
        m.checkpoint_id,
        await checkpointBackup(ctx.store, record, problems),
        at,
      );
      out.actions.push(`backed up the record and its outputs to ${out.backup}`);
      out.newCheckpointId = await ctx.manager.createCheckpoint(
        {
          pipelineId: m.pipeline_id,
          pipelineName: m.pipeline_name,
          stageName: m.stage_name,
          stageIndex: m.stage_index,
          stateData: { ...stateData, repair },
          completedStages: body.completed_stages,
          pendingStages: body.pending_stages,
          agentOutputs,
          provenanceHashes: provenance,
          ...versionsOf(body, changed),
          status: CheckpointStatus.Completed,
        },
        { fence },
      );
      out.actions.push(`appended ${out.newCheckpointId} holding ${accepting}; stateData.repair records it`);
      if (dropped.length > 0)
        out.actions.push(`left out the provenance of changed outputs: ${dropped.join(", ")}`);
      await quarantineRecord(ctx, record, problems, out, out.newCheckpointId);
    });
  }
  out.resumePoint = await resumePoint(ctx, m.pipeline_id);
  return out;
}
