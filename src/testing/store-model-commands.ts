/**
 * The commands of the model-based store test (`store-model.ts`): each runs one store operation
 * and checks the answer, and what the store then holds, against the reference model.
 */
import type * as FastCheck from "fast-check";
import { expect } from "vitest";
import { PIPELINE_COMPLETE_STAGE } from "../core/types.js";
import type { CheckpointStore, Lease, StatusPatch } from "../stores/types.js";
import { makeRecord } from "./store-contract.js";
import {
  deleteFromModel,
  expectedRuns,
  fenceFor,
  knownIds,
  type Model,
  type ModelCheckpoint,
  type ModelRun,
  OUTPUT_POOL,
  outputHash,
  pick,
  sorted,
  staleTip,
  TTL,
  tipOf,
} from "./store-model-state.js";

export type Real = { store: CheckpointStore };
export type Cmd = FastCheck.AsyncCommand<Model, Real>;

export const OWNERS = ["owner-a", "owner-b", "owner-c"] as const;
const minute = (m: number) => new Date(Date.UTC(2024, 0, 1, 0, m)).toISOString();

async function failure(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Record<string, unknown>;
  }
  throw new Error("expected the store to refuse the operation, but it succeeded");
}

/** The store holds what the model holds: the run's listing, tip and outputs, and the runs index. */
async function expectRunMatches(store: CheckpointStore, run: ModelRun, m: Model): Promise<void> {
  const listed = await store.listCheckpoints(run.id);
  expect(listed.map((e) => (e.ok ? e.metadata : e.corrupt))).toEqual(
    sorted(run).map((c) => c.record.metadata),
  );
  expect(await store.getLatestCheckpoint(run.id)).toEqual(tipOf(run)?.record);
  expect(await store.listOutputHashes(run.id)).toEqual([...run.outputs.keys()].sort());
  for (const name of m.names) await expectListedRuns(store, m, name, false, 1000);
}

/** listRuns of one name, page by page, against the model's index. */
async function expectListedRuns(
  store: CheckpointStore,
  m: Model,
  pipelineName: string,
  unfinished: boolean,
  limit: number,
): Promise<void> {
  const found = [];
  let cursor: string | undefined;
  for (let page = 0; ; page++) {
    expect(page).toBeLessThan(50);
    const result = await store.listRuns({
      pipelineName,
      limit,
      ...(unfinished ? { unfinished: true } : {}),
      ...(cursor ? { cursor } : {}),
    });
    expect(result.runs.length).toBeLessThanOrEqual(limit);
    found.push(...result.runs);
    if (!result.nextCursor) break;
    cursor = result.nextCursor;
  }
  // A run deleteCheckpoints emptied may be listed or not; every other run exactly as modelled.
  const unknown = new Set(m.runs.filter((r) => r.entryUnknown).map((r) => r.id));
  expect(found.filter((e) => !unknown.has(e.pipelineId))).toEqual(expectedRuns(m, pipelineName, unfinished));
}

/** A put: a new checkpoint, optionally with an expected tip (right or stale) and a fence. */
export class PutCommand implements Cmd {
  constructor(
    readonly runIndex: number,
    readonly otherName: boolean,
    readonly seqPick: number,
    readonly at: number,
    readonly tip: "none" | "right" | "stale",
    readonly stalePick: number,
    readonly outputs: number[],
    readonly complete: boolean,
    /** Index into the run's leases handed out so far, or -1 for an unfenced write. */
    readonly fence: number,
  ) {}
  check = () => true;
  async run(m: Model, { store }: Real): Promise<void> {
    const run = m.runs[this.runIndex % m.runs.length] as ModelRun;
    const fence = this.fence < 0 ? undefined : fenceFor(run, this.fence);
    if (fence === "undecided") return;
    const free: number[] = [];
    for (let s = 1; s <= run.maxSequence + 3; s++) if (!run.usedSequences.has(s)) free.push(s);
    const sequence = this.seqPick % 3 === 0 ? run.maxSequence + 1 : (pick(free, this.seqPick) as number);
    const name = m.names[this.otherName ? 1 : 0] as string;
    const made = makeRecord(run.id, sequence, {
      pipelineName: name,
      timestamp: minute(this.at),
      ...(this.complete ? { stage: PIPELINE_COMPLETE_STAGE } : {}),
      outputs: Object.fromEntries(this.outputs.map((i) => [`s${i}`, OUTPUT_POOL[i] as string])),
    });
    const tip = tipOf(run)?.record.metadata.checkpoint_id ?? null;
    const expectedTip =
      this.tip === "right" ? tip : this.tip === "stale" ? staleTip(run, tip, this.stalePick) : undefined;
    const options = expectedTip === undefined ? undefined : { expectedTip };
    run.usedSequences.add(sequence);
    run.maxSequence = Math.max(run.maxSequence, sequence);
    const id = made.record.metadata.checkpoint_id;
    const leaseOk = fence === undefined || fence.ok;
    const tipOk = this.tip !== "stale";
    if (leaseOk && tipOk) {
      await store.putCheckpoint(made.record, made.outputs, fence?.lease, options);
      run.checkpoints.set(id, { record: made.record, refs: made.outputs.map((o) => o.hash) });
      for (const o of made.outputs) if (!run.outputs.has(o.hash)) run.outputs.set(o.hash, o.body);
      if (!run.entry && !run.entryUnknown)
        run.entry = { pipelineId: run.id, pipelineName: name, createdAt: minute(this.at), finished: false };
      if (this.complete && run.entry) run.entry.finished = true;
      await expectRunMatches(store, run, m);
      return;
    }
    const error = await failure(store.putCheckpoint(made.record, made.outputs, fence?.lease, options));
    if (!leaseOk && !tipOk) expect(["CAIRN_LEASE_LOST", "CAIRN_CONFLICT"]).toContain(error.code);
    else if (!leaseOk) expect(error).toMatchObject({ name: "LeaseLostError", code: "CAIRN_LEASE_LOST" });
    else
      expect(error).toMatchObject({
        name: "TipMovedError",
        code: "CAIRN_CONFLICT",
        pipelineId: run.id,
        expected: expectedTip,
        actual: tip,
      });
    // Nothing of a refused write is stored: not the checkpoint, not its outputs.
    expect(await store.getCheckpoint(id)).toBeUndefined();
    await expectRunMatches(store, run, m);
  }
  toString = () =>
    `put(run${this.runIndex}${this.otherName ? ",otherName" : ""},seq#${this.seqPick},t${this.at},tip=${this.tip}${this.tip === "stale" ? `#${this.stalePick}` : ""},outputs=[${this.outputs}]${this.complete ? ",complete" : ""}${this.fence >= 0 ? `,fence#${this.fence}` : ""})`;
}

/** A re-put of an existing checkpoint id: refused, the original kept. */
export class ConflictCommand implements Cmd {
  constructor(
    readonly runIndex: number,
    readonly which: number,
  ) {}
  check = (m: Readonly<Model>) => (m.runs[this.runIndex % m.runs.length] as ModelRun).checkpoints.size > 0;
  async run(m: Model, { store }: Real): Promise<void> {
    const run = m.runs[this.runIndex % m.runs.length] as ModelRun;
    const original = (pick(sorted(run).reverse(), this.which) as ModelCheckpoint).record;
    const id = original.metadata.checkpoint_id;
    const clash = makeRecord(run.id, run.maxSequence + 1, { id, outputs: { x: '"clash"' } });
    const error = await failure(store.putCheckpoint(clash.record, clash.outputs));
    expect(error).toMatchObject({ code: "CAIRN_CONFLICT", name: "CheckpointConflictError" });
    expect(await store.getCheckpoint(id)).toEqual(original);
    await expectRunMatches(store, run, m);
  }
  toString = () => `conflict(run${this.runIndex},#${this.which})`;
}

/** Reads one checkpoint, existing or deleted, and the run's listing, tip and outputs. */
export class ReadCommand implements Cmd {
  constructor(
    readonly runIndex: number,
    readonly which: number,
  ) {}
  check = () => true;
  async run(m: Model, { store }: Real): Promise<void> {
    const run = m.runs[this.runIndex % m.runs.length] as ModelRun;
    const id = pick(knownIds(run), this.which);
    if (id !== undefined) expect(await store.getCheckpoint(id)).toEqual(run.checkpoints.get(id)?.record);
    await expectRunMatches(store, run, m);
    const hashes = [...OUTPUT_POOL.map(outputHash), outputHash("never stored")];
    const got = await store.getOutputs(run.id, hashes);
    expect(new Map([...got].sort())).toEqual(new Map([...run.outputs].sort()));
    if (run.checkpoints.size > 0) expect(await store.listPipelineIds()).toContain(run.id);
  }
  toString = () => `read(run${this.runIndex},#${this.which})`;
}

/** Changes the status fields of a checkpoint; a deleted one is not found. */
export class UpdateCommand implements Cmd {
  constructor(
    readonly runIndex: number,
    readonly which: number,
    readonly patch: StatusPatch,
  ) {}
  check = () => true;
  async run(m: Model, { store }: Real): Promise<void> {
    const run = m.runs[this.runIndex % m.runs.length] as ModelRun;
    const id = pick(knownIds(run), this.which);
    if (id === undefined) return;
    const held = run.checkpoints.get(id);
    if (!held) {
      expect(await failure(store.updateCheckpoint(id, this.patch))).toMatchObject({
        code: "CAIRN_NOT_FOUND",
      });
      return;
    }
    await store.updateCheckpoint(id, this.patch);
    held.record = { ...held.record, metadata: { ...held.record.metadata, ...this.patch } };
    expect(await store.getCheckpoint(id)).toEqual(held.record);
  }
  toString = () => `update(run${this.runIndex},#${this.which},${JSON.stringify(this.patch)})`;
}

/** Deletes some checkpoints (and an id that is not there); counts what existed. */
export class DeleteCheckpointsCommand implements Cmd {
  constructor(
    readonly runIndex: number,
    readonly which: number[],
  ) {}
  check = () => true;
  async run(m: Model, { store }: Real): Promise<void> {
    const run = m.runs[this.runIndex % m.runs.length] as ModelRun;
    const known = knownIds(run);
    const ids = [...new Set(this.which.map((i) => pick(known, i)).filter((id) => id !== undefined))];
    ids.push(`${run.id}_gone_20240101T000000000Z_00000000`);
    const existing = ids.filter((id) => run.checkpoints.has(id));
    expect(await store.deleteCheckpoints(run.id, ids)).toBe(existing.length);
    deleteFromModel(run, existing);
    await expectRunMatches(store, run, m);
  }
  toString = () => `deleteCheckpoints(run${this.runIndex},[${this.which}])`;
}

/** Retention: keeps the newest `keep` checkpoints, then deletes the outputs nothing refers to. */
export class RetentionCommand implements Cmd {
  constructor(
    readonly runIndex: number,
    readonly keep: number,
  ) {}
  check = () => true;
  async run(m: Model, { store }: Real): Promise<void> {
    const run = m.runs[this.runIndex % m.runs.length] as ModelRun;
    const old = sorted(run)
      .slice(0, Math.max(0, run.checkpoints.size - this.keep))
      .map((c) => c.record.metadata.checkpoint_id);
    expect(await store.deleteCheckpoints(run.id, old)).toBe(old.length);
    deleteFromModel(run, old);
    const referenced = new Set([...run.checkpoints.values()].flatMap((c) => c.refs));
    const orphans = [...run.outputs.keys()].filter((h) => !referenced.has(h));
    expect(await store.deleteOutputs(run.id, orphans)).toBe(orphans.length);
    for (const hash of orphans) run.outputs.delete(hash);
    await expectRunMatches(store, run, m);
  }
  toString = () => `retention(run${this.runIndex},keep=${this.keep})`;
}

/** Deletes some outputs of a run by hash (a missing one among them); counts what existed. */
export class DeleteOutputsCommand implements Cmd {
  constructor(
    readonly runIndex: number,
    readonly which: number[],
  ) {}
  check = () => true;
  async run(m: Model, { store }: Real): Promise<void> {
    const run = m.runs[this.runIndex % m.runs.length] as ModelRun;
    const hashes = [
      ...new Set([...this.which.map((i) => outputHash(OUTPUT_POOL[i] as string)), outputHash("missing")]),
    ];
    expect(await store.deleteOutputs(run.id, hashes)).toBe(hashes.filter((h) => run.outputs.has(h)).length);
    for (const hash of hashes) run.outputs.delete(hash);
    await expectRunMatches(store, run, m);
  }
  toString = () => `deleteOutputs(run${this.runIndex},[${this.which}])`;
}

/** Deletes a whole run: checkpoints, outputs, index entry. */
export class DeleteRunCommand implements Cmd {
  constructor(readonly runIndex: number) {}
  check = () => true;
  async run(m: Model, { store }: Real): Promise<void> {
    const run = m.runs[this.runIndex % m.runs.length] as ModelRun;
    await store.deleteRun(run.id);
    run.deleted.push(...run.checkpoints.keys());
    run.checkpoints.clear();
    run.outputs.clear();
    run.entry = undefined;
    run.entryUnknown = false;
    // Whether a run's lease survives deleteRun is the store's choice: learn it again.
    run.lease = { known: false, current: undefined, maxToken: 0, handed: [] };
    await expectRunMatches(store, run, m);
  }
  toString = () => `deleteRun(run${this.runIndex})`;
}

/** Lists one pipeline name's runs, page by page, against the model's index. */
export class ListRunsCommand implements Cmd {
  constructor(
    readonly nameIndex: number,
    readonly unfinished: boolean,
    readonly limit: number,
  ) {}
  check = () => true;
  async run(m: Model, { store }: Real): Promise<void> {
    const pipelineName = m.names[this.nameIndex % m.names.length] as string;
    await expectListedRuns(store, m, pipelineName, this.unfinished, this.limit);
  }
  toString = () =>
    `listRuns(name${this.nameIndex}${this.unfinished ? ",unfinished" : ""},limit=${this.limit})`;
}

/** Acquires a run's lease for an owner. */
export class AcquireCommand implements Cmd {
  constructor(
    readonly runIndex: number,
    readonly ownerIndex: number,
  ) {}
  check = () => true;
  async run(m: Model, { store }: Real): Promise<void> {
    const run = m.runs[this.runIndex % m.runs.length] as ModelRun;
    const owner = OWNERS[this.ownerIndex % OWNERS.length] as string;
    const attempt = await store.acquireLease(run.id, owner, TTL);
    const lease = run.lease;
    const current = lease.current;
    if (!lease.known) {
      lease.known = true;
    } else if (current?.live && current.owner !== owner) {
      expect(attempt).toMatchObject({
        acquired: false,
        holder: { pipelineId: run.id, owner: current.owner, token: current.token },
      });
    } else {
      expect(attempt).toMatchObject({ acquired: true, lease: { pipelineId: run.id, owner } });
      const token = attempt.acquired ? attempt.lease.token : 0;
      // The live holder acquiring again may keep its token; a new holder gets a larger one than any before.
      if (!(current?.live && token === current.token)) expect(token).toBeGreaterThan(lease.maxToken);
    }
    const now = attempt.acquired ? attempt.lease : attempt.holder;
    lease.current = { owner: now.owner, token: now.token, live: true };
    lease.maxToken = Math.max(lease.maxToken, now.token);
    if (attempt.acquired) lease.handed.push(attempt.lease);
  }
  toString = () => `acquire(run${this.runIndex},${OWNERS[this.ownerIndex % OWNERS.length]})`;
}

/** Renews or releases a lease handed out earlier, current or stale. */
export class LeaseCommand implements Cmd {
  constructor(
    readonly runIndex: number,
    readonly which: number,
    readonly release: boolean,
  ) {}
  check = (m: Readonly<Model>) => (m.runs[this.runIndex % m.runs.length] as ModelRun).lease.handed.length > 0;
  async run(m: Model, { store }: Real): Promise<void> {
    const lease = (m.runs[this.runIndex % m.runs.length] as ModelRun).lease;
    const held = pick(lease.handed, this.which) as Lease;
    const current = lease.current;
    const same = current !== undefined && current.owner === held.owner && current.token === held.token;
    if (this.release) {
      await store.releaseLease(held);
      if (same) current.live = false;
      return;
    }
    const renewed = await store.renewLease(held, TTL);
    if (!same) expect(renewed).toBeUndefined();
    // Renewing a lease its holder released is left to the store; a live one must renew.
    else if (current.live || renewed) {
      expect(renewed).toMatchObject({ pipelineId: held.pipelineId, owner: held.owner, token: held.token });
      current.live = true;
    }
  }
  toString = () => `${this.release ? "release" : "renew"}(run${this.runIndex},#${this.which})`;
}
