/** The types and shared steps of `cairn repair` (see `repair.ts`). */
import type { ValidationProblem } from "../core/types.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { LeaseKeeper } from "../pipeline/lease-keeper.js";
import type { Lease } from "../stores/types.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";

/** Where backups go unless `backupDir` says otherwise (relative to the working directory). */
export const DEFAULT_BACKUP_DIR = ".cairn/backups";

export { QUARANTINE_PREFIX } from "../manager/check.js";

/** Outcome of a repair; `would-*` are the dry-run forms. */
export type RepairStatus =
  | "healthy"
  | "rebuilt"
  | "quarantined"
  | "already-quarantined"
  | "force-accepted"
  | "removed"
  | "would-rebuild"
  | "would-quarantine"
  | "would-force-accept"
  | "would-remove";

/** Options of `repairCheckpoint`. */
export interface RepairOptions {
  /** Work out and report everything, change nothing, write no backup. */
  dryRun?: boolean;
  /** Accept changed content as a new checkpoint (recorded in its state data). */
  force?: boolean;
  /** Folder of backup files; default {@link DEFAULT_BACKUP_DIR}. */
  backupDir?: string;
  /** Clock for the backup name and the quarantine message; tests pass a fixed one. */
  now?: () => Date;
}

/** What a repair found and did. */
export interface RepairReport {
  checkpointId: string;
  /** The run, when the checkpoint was found in one. */
  pipelineId: string | undefined;
  status: RepairStatus;
  dryRun: boolean;
  /** True when the checkpoint failed verification or did not parse. */
  corrupt: boolean;
  problems: ValidationProblem[];
  /** What was done (or, in a dry run, would be), one sentence each. */
  actions: string[];
  /** Absolute path of the backup written before the first change. */
  backup?: string;
  /** The run's resume point afterwards (newest valid, resumable checkpoint). */
  resumePoint?: string;
  /** The checkpoint appended by a forced acceptance or a provenance rebuild. */
  newCheckpointId?: string;
}

/** What every repair step works with. */
export interface RepairContext {
  manager: CheckpointManager;
  store: AtRestStore;
  dryRun: boolean;
  force: boolean;
  backupDir: string;
  now: () => Date;
}

const LEASE_TTL_MS = 30_000;

/** An empty report; `corrupt` follows from the status. */
export function newReport(
  ctx: RepairContext,
  checkpointId: string,
  pipelineId: string | undefined,
  status: RepairStatus,
): RepairReport {
  const corrupt = !["healthy", "rebuilt", "would-rebuild"].includes(status);
  return { checkpointId, pipelineId, status, dryRun: ctx.dryRun, corrupt, problems: [], actions: [] };
}

/** Runs `work` holding the run's lease, so no runner writes to the run meanwhile. */
export async function underLease<T>(
  ctx: RepairContext,
  pipelineId: string,
  work: (lease: Lease) => Promise<T>,
): Promise<T> {
  const keeper = await LeaseKeeper.acquire(ctx.store, pipelineId, LEASE_TTL_MS);
  try {
    return await work(keeper.lease);
  } finally {
    await keeper.release();
  }
}

/** The run's resume point: its newest valid, resumable checkpoint. */
export async function resumePoint(ctx: RepairContext, pipelineId: string): Promise<string | undefined> {
  return (await ctx.manager.loadLatestCheckpoint(pipelineId))?.metadata.checkpointId;
}
