/**
 * The reference model of the model-based store test (`store-model.ts`): what a store must hold
 * after a sequence of operations, in plain Maps, with the contract's rules written out once.
 */
import { compareStored, sha256 } from "../core/record.js";
import type { CheckpointRecord, Lease, RunEntry } from "../stores/types.js";

/** Long enough that no lease runs out during a test: expiry is not modelled. */
export const TTL = 600_000;

/** The item at `index`, wrapping around; undefined for an empty list. */
export const pick = <T>(items: readonly T[], index: number): T | undefined =>
  items.length === 0 ? undefined : items[index % items.length];

/** Output bodies the test's checkpoints share, so runs reuse and orphan outputs. */
export const OUTPUT_POOL = ['"a"', '"b"', '{"rows":[1,2,3]}', "[]"] as const;

/** The content address of an output body. */
export const outputHash = (body: string): string => sha256(body);

/** A stored checkpoint and the outputs it refers to. */
export interface ModelCheckpoint {
  record: CheckpointRecord;
  refs: string[];
}

/** What the model knows of a run's lease. */
export interface ModelLease {
  /** False after deleteRun, which may or may not drop the lease: the next acquire teaches it. */
  known: boolean;
  /** The run's current lease; `live` is false once released (expiry is not modelled). */
  current: { owner: string; token: number; live: boolean } | undefined;
  /** The largest token the run has handed out. */
  maxToken: number;
  /** Every lease the store handed out, current or stale, for renew, release and fences. */
  handed: Lease[];
}

/** One run of the model. */
export interface ModelRun {
  id: string;
  checkpoints: Map<string, ModelCheckpoint>;
  outputs: Map<string, string>;
  /** Ids deleted, for reads and stale tips that must find nothing. */
  deleted: string[];
  usedSequences: Set<number>;
  maxSequence: number;
  /** The run's listRuns entry, as the contract defines it. */
  entry: RunEntry | undefined;
  /** True once deleteCheckpoints emptied the run: the contract lets it stay listed or not. */
  entryUnknown: boolean;
  lease: ModelLease;
}

/** The reference model: runs that write under the first pipeline name, now and then under the second. */
export interface Model {
  runs: ModelRun[];
  names: string[];
}

/** A fresh model for these run ids and pipeline names. */
export function newModel(runIds: readonly string[], names: readonly string[]): Model {
  return {
    names: [...names],
    runs: runIds.map((id) => ({
      id,
      checkpoints: new Map(),
      outputs: new Map(),
      deleted: [],
      usedSequences: new Set(),
      maxSequence: 0,
      entry: undefined,
      entryUnknown: false,
      lease: { known: true, current: undefined, maxToken: 0, handed: [] },
    })),
  };
}

/** The run's checkpoints in listing order: by sequence, oldest first. */
export function sorted(run: ModelRun): ModelCheckpoint[] {
  return [...run.checkpoints.values()].sort((a, b) => compareStored(a.record.metadata, b.record.metadata));
}

/** Ids a command may name: the run's checkpoints newest first (the tip most often), then deleted ones. */
export function knownIds(run: ModelRun): string[] {
  return [
    ...sorted(run)
      .map((c) => c.record.metadata.checkpoint_id)
      .reverse(),
    ...[...run.deleted].reverse(),
  ];
}

/** The run's newest checkpoint, as getLatestCheckpoint and expectedTip see it. */
export function tipOf(run: ModelRun): ModelCheckpoint | undefined {
  return sorted(run).at(-1);
}

const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The runs listRuns must return for a name: newest first by creation, then by run id. */
export function expectedRuns(model: Model, pipelineName: string, unfinished: boolean): RunEntry[] {
  return model.runs
    .flatMap((r) => (r.entry ? [{ ...r.entry }] : []))
    .filter((e) => e.pipelineName === pipelineName && !(unfinished && e.finished))
    .sort((a, b) => byteOrder(b.createdAt, a.createdAt) || byteOrder(b.pipelineId, a.pipelineId));
}

/** A tip that is not the run's tip: none, an older or deleted checkpoint, or one never written. */
export function staleTip(run: ModelRun, tip: string | null, index: number): string | null {
  const choices: (string | null)[] = [`${run.id}_never_20240101T000000000Z_00000000`, ...run.deleted];
  if (tip !== null) choices.push(null, ...[...run.checkpoints.keys()].filter((id) => id !== tip));
  return pick(choices, index) as string | null;
}

/** The fence a put uses and whether the store must accept it; "undecided" when the contract leaves it open. */
export function fenceFor(run: ModelRun, index: number): { lease: Lease; ok: boolean } | "undecided" {
  const lease = run.lease;
  if (!lease.known) return "undecided";
  const held = pick(lease.handed, index);
  if (!held)
    return {
      lease: { pipelineId: run.id, owner: "nobody", token: 1, expiresAt: new Date(Date.now() + TTL) },
      ok: false,
    };
  const current = lease.current;
  const same = current !== undefined && current.owner === held.owner && current.token === held.token;
  // A released lease nobody took over: whether it still fences is left to the store.
  if (same && !current.live) return "undecided";
  return { lease: held, ok: same };
}

/** Removes deleted checkpoints from the model. */
export function deleteFromModel(run: ModelRun, ids: readonly string[]): void {
  for (const id of ids) {
    run.checkpoints.delete(id);
    run.deleted.push(id);
  }
  // A run emptied by deleteCheckpoints may stay listed or not (the contract leaves it open).
  if (run.checkpoints.size === 0 && ids.length > 0 && run.entry) {
    run.entry = undefined;
    run.entryUnknown = true;
  }
}
