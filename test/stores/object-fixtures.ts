/**
 * Helpers of the object store's unit tests: a `MemoryObjects` bucket seen through a wrapper that
 * counts sequential rounds of calls, stores on it, and runs of checkpoints.
 */
import { makeRecord } from "cairn-pipelines/testing";
import type { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import { ObjectStore } from "../../src/stores/object/object-store.js";
import type { ObjectClient } from "../../src/stores/object/objects.js";
import type { CheckpointRecord } from "../../src/stores/types.js";

/**
 * A client that counts rounds: a round starts whenever a call begins with no other call in
 * flight, so calls issued in parallel share a round and a call that waits for another starts a
 * new one. That is the number of sequential round trips an operation costs.
 */
export class RoundCounter {
  rounds = 0;
  private inFlight = 0;
  readonly client: ObjectClient;

  constructor(readonly objects: MemoryObjects) {
    const wrap =
      <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        if (this.inFlight === 0) this.rounds++;
        this.inFlight++;
        try {
          return await fn.apply(objects, args);
        } finally {
          this.inFlight--;
        }
      };
    this.client = {
      location: objects.location,
      get: wrap(objects.get),
      put: wrap(objects.put),
      delete: wrap(objects.delete),
      deleteMany: wrap(objects.deleteMany),
      list: wrap(objects.list),
      probeConditions: wrap(objects.probeConditions),
      close: () => objects.close(),
    };
  }

  /** Zeroes the round count and the bucket's call counters. */
  reset(): void {
    this.rounds = 0;
    this.objects.resetCalls();
  }
}

/** A set-up store on a bucket (a new instance per call, as another process would have). */
export async function openStore(client: ObjectClient, options: { singleWriter?: boolean } = {}) {
  const store = new ObjectStore({ strategy: "memobj", client, ...options });
  await store.setup();
  return store;
}

/** Puts `n` checkpoints (sequences from `from`) on a run, chained, each with one output. */
export async function writeRun(
  store: ObjectStore,
  runId: string,
  n: number,
  from = 1,
): Promise<CheckpointRecord[]> {
  const written: CheckpointRecord[] = [];
  for (let s = from; s < from + n; s++) {
    const made = makeRecord(runId, s, { outputs: { [`s${s}`]: `"out ${s}"` } });
    await store.putCheckpoint(made.record, made.outputs);
    written.push(made.record);
  }
  return written;
}

/** The ids of a listing, corrupt entries as `!location`. */
export const idsOf = (listing: Awaited<ReturnType<ObjectStore["listCheckpoints"]>>): string[] =>
  listing.map((e) => (e.ok ? e.metadata.checkpoint_id : `!${e.corrupt.location}`));

/** The tip object of a run, parsed, read behind the store's back. */
export function tipOf(
  objects: MemoryObjects,
  runId: string,
): Record<string, unknown> & {
  pages: { key: string }[];
  recent: { cps: unknown[]; outs: string[] };
  deleting?: boolean;
  lastToken: number;
} {
  return JSON.parse(objects.peek(`tips/${runId}.json`) ?? "null");
}
