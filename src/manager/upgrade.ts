/**
 * `upgrade`: brings runs written in an older record format into the current one without
 * rewriting anything stored. For each run whose newest checkpoint is older than
 * `FORMAT_VERSION`, one new checkpoint is written under the run's lease, as the child of that
 * tip and only of it (`expectedTip`): the tip's content, verified and upcast, in the current
 * format, with the same stage, index and status (a finished run stays finished). The hash chain
 * continues through it, the old records stay until retention, and outputs are referenced by
 * their addresses (already stored, so never written again). Re-running skips runs already
 * current, so an upgrade killed part-way is finished by running it again.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { CheckpointCorruptError, CheckpointNotFoundError, RunLockedError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import type { CheckpointRecord } from "../core/record.js";
import { type CreateCheckpointInput, FORMAT_VERSION } from "../core/types.js";
import { LeaseKeeper } from "../pipeline/lease-keeper.js";
import type { Lease } from "../stores/types.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";
import { EncodedOutput } from "./build.js";
import { inUseReason } from "./cleanup-lease.js";
import { decodeVerified, type VerifiedRecord, verifyRecord } from "./verify.js";

/** Which runs `upgrade` looks at. */
export type UpgradeTarget = { pipelineId: string } | { all: true };

/** Options of `upgrade`. */
export interface UpgradeOptions {
  /** Only report what would be written. */
  dryRun?: boolean;
  /** Called before each run and once at the end: `done` of `total` runs looked at. */
  onProgress?: (done: number, total: number) => void;
}

/** One run `upgrade` rewrote (or, with `dryRun`, would rewrite). */
export interface UpgradedRun {
  pipelineId: string;
  /** The old tip, now the new checkpoint's parent. */
  fromCheckpointId: string;
  fromVersion: number;
  /** The new checkpoint; undefined with `dryRun`. */
  checkpointId: string | undefined;
}

/** What `upgrade` did. */
export interface UpgradeReport {
  dryRun: boolean;
  /** The format every upgraded run's newest checkpoint is now in. */
  formatVersion: number;
  /** Runs looked at. */
  runs: number;
  upgraded: UpgradedRun[];
  /** Runs whose newest checkpoint is already in the current format. */
  current: string[];
  /** Runs left as they are, and why. */
  skipped: UpgradeSkip[];
}

/** A run `upgrade` left as it is: in use (its lease is held), a tip that fails verification, no checkpoint. */
export interface UpgradeSkip {
  pipelineId: string;
  kind: "in_use" | "corrupt" | "empty";
  reason: string;
}

/** Writes a checkpoint as the child of `expectedTip` only, under `fence`. */
export type PinnedWrite = (
  input: CreateCheckpointInput,
  fence: Lease,
  expectedTip: string,
) => Promise<string>;

/** The lease an upgrade holds on a run while it writes (renewed in the background). */
const UPGRADE_LEASE_MS = 60_000;

/** The new checkpoint's input: the tip's verified content as it is, outputs by their stored text. */
function copyOf(verified: VerifiedRecord): CreateCheckpointInput {
  const m = verified.record.metadata;
  const checkpoint = decodeVerified(verified);
  // The verified texts are reused as they are: same bytes, same addresses, nothing written again.
  const agentOutputs: Record<string, EncodedOutput> = {};
  for (const [stage, hash] of Object.entries(verified.body.output_refs)) {
    agentOutputs[stage] = EncodedOutput.fromText(verified.outputs.get(hash) as string);
  }
  return {
    pipelineId: m.pipeline_id,
    pipelineName: m.pipeline_name,
    stageName: m.stage_name,
    stageIndex: m.stage_index,
    stateData: checkpoint.stateData,
    completedStages: checkpoint.completedStages,
    pendingStages: checkpoint.pendingStages,
    agentOutputs,
    provenanceHashes: checkpoint.provenanceHashes,
    // What the upcast filled in for an older record (no pipeline version, outputs at version 1).
    ...(checkpoint.pipelineVersion !== undefined ? { pipelineVersion: checkpoint.pipelineVersion } : {}),
    outputVersions: checkpoint.outputVersions,
    outputMigrations: checkpoint.outputMigrations,
    status: m.status,
    ...(m.error_message !== null ? { errorMessage: m.error_message } : {}),
  };
}

/** The run's newest record, or why it cannot be upgraded (`FormatTooNewError` is thrown). */
async function readTip(store: AtRestStore, pipelineId: string): Promise<CheckpointRecord | UpgradeSkip> {
  try {
    const tip = await store.getLatestCheckpoint(pipelineId);
    return tip ?? { pipelineId, kind: "empty", reason: "it has no checkpoint" };
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    return { pipelineId, kind: "corrupt", reason: `its newest checkpoint cannot be read: ${error.message}` };
  }
}

/**
 * The run's tip, verified, when it needs upgrading; "current" when it does not; otherwise why it
 * is skipped. Reads only, so it is asked before the lease is taken and again under it.
 */
async function examine(
  store: AtRestStore,
  pipelineId: string,
): Promise<VerifiedRecord | "current" | UpgradeSkip> {
  const tip = await readTip(store, pipelineId);
  if ("reason" in tip) return tip;
  const m = tip.metadata;
  if (m.format_version >= FORMAT_VERSION) return "current";
  try {
    return await verifyRecord(store, tip);
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    return {
      pipelineId,
      kind: "corrupt",
      reason: `its newest checkpoint ${m.checkpoint_id} fails verification (see cairn repair): ${error.message}`,
    };
  }
}

/** Records a run's outcome; true when the run is to be written. */
function noted(
  report: UpgradeReport,
  pipelineId: string,
  found: VerifiedRecord | "current" | UpgradeSkip,
): found is VerifiedRecord {
  if (found === "current") report.current.push(pipelineId);
  else if ("reason" in found) report.skipped.push(found);
  else return true;
  return false;
}

function upgraded(verified: VerifiedRecord, checkpointId: string | undefined): UpgradedRun {
  const m = verified.record.metadata;
  return {
    pipelineId: m.pipeline_id,
    fromCheckpointId: m.checkpoint_id,
    fromVersion: m.format_version,
    checkpointId,
  };
}

async function upgradeRun(
  store: AtRestStore,
  write: PinnedWrite,
  pipelineId: string,
  report: UpgradeReport,
): Promise<void> {
  // Runs current or skipped are only read: no lease is taken, nothing is written.
  const found = await examine(store, pipelineId);
  if (!noted(report, pipelineId, found)) return;
  if (report.dryRun) {
    // A dry run takes no lease (that is a write too): a live one is only looked at.
    const holder = await store.getLease(pipelineId);
    if (holder) report.skipped.push({ pipelineId, kind: "in_use", reason: inUseReason(holder) });
    else report.upgraded.push(upgraded(found, undefined));
    return;
  }
  const keeper = await takeLease(store, pipelineId);
  if (!(keeper instanceof LeaseKeeper)) {
    report.skipped.push({ pipelineId, kind: "in_use", reason: inUseReason(keeper) });
    return;
  }
  try {
    // Read again under the lease: nobody else writes the run now, and this is what is copied.
    const verified = await examine(store, pipelineId);
    if (!noted(report, pipelineId, verified)) return;
    const tipId = verified.record.metadata.checkpoint_id;
    report.upgraded.push(upgraded(verified, await write(copyOf(verified), keeper.lease, tipId)));
  } finally {
    await keeper.release();
  }
}

/** Owner ids of upgrades: a killed upgrade's lease is known as such (`isGoneLocalOwner`). */
function newUpgradeOwner(): string {
  return `cairn-upgrade:${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
}

/**
 * The run's lease for this upgrade, or who holds it. A killed upgrade of this host holds a lease
 * that protects nothing: it is ended at once, so running upgrade again after a kill finishes the
 * job instead of skipping that run until the lease runs out.
 */
async function takeLease(store: AtRestStore, pipelineId: string): Promise<LeaseKeeper | Lease> {
  const owner = newUpgradeOwner();
  for (let attempt = 1; ; attempt++) {
    try {
      return await LeaseKeeper.acquire(store, pipelineId, UPGRADE_LEASE_MS, owner);
    } catch (error) {
      if (!(error instanceof RunLockedError)) throw error;
      const holder = await store.getLease(pipelineId);
      const dead = error.holderGone && error.holder.startsWith("cairn-upgrade:");
      if (holder === undefined && attempt < 3) continue;
      if (!dead || holder?.owner !== error.holder || attempt >= 3)
        return holder ?? { pipelineId, owner: error.holder, token: 0, expiresAt: error.expiresAt };
      await store.releaseLease(holder);
    }
  }
}

/** Upgrades one run or every run; see the module comment. */
export async function upgrade(
  store: AtRestStore,
  write: PinnedWrite,
  target: UpgradeTarget,
  options: UpgradeOptions = {},
): Promise<UpgradeReport> {
  let runs: string[];
  if ("pipelineId" in target) {
    const id = assertValidName("pipelineId", target.pipelineId);
    if ((await store.listCheckpoints(id)).length === 0)
      throw new CheckpointNotFoundError(id, `No pipeline run with id ${JSON.stringify(id)} in the store`);
    runs = [id];
  } else runs = await store.listPipelineIds();
  const report: UpgradeReport = {
    dryRun: options.dryRun ?? false,
    formatVersion: FORMAT_VERSION,
    runs: 0,
    upgraded: [],
    current: [],
    skipped: [],
  };
  for (const [i, pipelineId] of runs.entries()) {
    options.onProgress?.(i, runs.length);
    await upgradeRun(store, write, pipelineId, report);
    report.runs++;
  }
  options.onProgress?.(runs.length, runs.length);
  return report;
}
