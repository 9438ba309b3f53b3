/**
 * The tip object (`tips/<runId>.json`): a run's whole mutable state and THE commit point of every
 * change to the run. It is small and bounded: the newest manifest entries are inline (`recent`),
 * older ones live in immutable pages it references (`manifest.ts`). Every change is a
 * compare-and-swap of the tip (`ifMatch` its ETag, `ifNoneMatch: "*"` to create it).
 *
 * Beyond the design's fields the tip keeps `latest`, the manifest's newest entry (what
 * `getLatestCheckpoint` and `expectedTip` need), so neither ever reads a page; a tombstone
 * keeps `name`/`createdAt` so whoever finishes the deletion can remove the runs-by-name entry;
 * and `epoch` counts deletions, so a write that straddled one knows to start over.
 */
import { CheckpointCorruptError, StoreOperationError, StoreUnavailableError } from "../../core/errors.js";
import { newNonce, tipKey } from "./keys.js";
import type { ObjectClient } from "./objects.js";

/** One manifest entry: sequence, checkpoint id, object suffix, timestamp (for `compareStored` ties). */
export type CpEntry = [seq: number, id: string, suffix: string, timestamp: string];

/** The run's head record as the tip keeps it (`RunHead` plus the object's key). */
export interface TipHead {
  sequence: number;
  checkpointId: string;
  checksum: string;
  key: string;
  pruned?: { throughSequence: number; at: string };
}

/** The run's lease; `expiresAtMs` is on the server's clock. */
export interface TipLease {
  owner: string;
  token: number;
  ttlMs: number;
  expiresAtMs: number;
  released?: boolean;
}

/** A reference to an immutable manifest page. */
export interface PageRef {
  key: string;
  cps: number;
  outs: number;
  minSeq: number;
  maxSeq: number;
}

/** The tip object's body. */
export interface Tip {
  v: 1;
  nonce: string;
  name: string | null;
  createdAt: string | null;
  finished: boolean;
  head: TipHead | null;
  latest: CpEntry | null;
  lease: TipLease | null;
  lastToken: number;
  runKey: string | null;
  recent: { cps: CpEntry[]; outs: string[] };
  pages: PageRef[];
  deleting?: boolean;
  /**
   * How many times the run was deleted (absent: 0). A writer whose objects were written under
   * another epoch starts over: the deletion in between may have removed them.
   */
  epoch?: number;
}

/** A tip as read or written: undefined `tip`/`etag` when the object does not exist. */
export interface TipState {
  tip: Tip | undefined;
  etag: string | undefined;
  /** The server's clock at the read or write. */
  serverTime: Date;
}

/** A fresh tip holding nothing but the token counter (and, optionally, a lease and key record). */
export function emptyTip(lastToken = 0): Tip {
  return {
    v: 1,
    nonce: newNonce(),
    name: null,
    createdAt: null,
    finished: false,
    head: null,
    latest: null,
    lease: null,
    lastToken,
    runKey: null,
    recent: { cps: [], outs: [] },
    pages: [],
  };
}

/** True when the tip holds any checkpoint or output (a run "the store holds"). */
export function holdsData(tip: Tip | undefined): tip is Tip {
  return (
    tip !== undefined &&
    !tip.deleting &&
    (tip.recent.cps.length > 0 || tip.recent.outs.length > 0 || tip.pages.length > 0)
  );
}

/** The tip as readers see it: a tombstone is no run. */
export function liveTip(tip: Tip | undefined): Tip | undefined {
  return tip && !tip.deleting ? tip : undefined;
}

/** Parses a tip body; `CheckpointCorruptError` when it is not one. */
export function parseTip(body: Buffer, key: string): Tip {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw new CheckpointCorruptError(undefined, `${key} is not JSON`, { cause: error });
  }
  const tip = value as Partial<Tip> | null;
  if (
    tip === null ||
    typeof tip !== "object" ||
    tip.v !== 1 ||
    typeof tip.lastToken !== "number" ||
    !tip.recent ||
    !Array.isArray(tip.recent.cps) ||
    !Array.isArray(tip.recent.outs) ||
    !Array.isArray(tip.pages)
  ) {
    throw new CheckpointCorruptError(undefined, `${key} is not a run tip of layout 1`);
  }
  return tip as Tip;
}

/** Whether entry `a` sorts after `b` the way `compareStored` orders records (sequence, time, id). */
export function compareEntries(a: CpEntry, b: CpEntry): number {
  const order = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return a[0] - b[0] || order(a[3], b[3]) || order(a[1], b[1]);
}

/** The newest of some entries, or null. */
export function newestOf(entries: Iterable<CpEntry>): CpEntry | null {
  let newest: CpEntry | null = null;
  for (const entry of entries) if (newest === null || compareEntries(entry, newest) > 0) newest = entry;
  return newest;
}

/** Maximum compare-and-swap attempts of one operation before it gives up. */
export const MAX_ATTEMPTS = 50;

/** A short jittered pause before the next attempt of a lost compare-and-swap. */
export function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(200, 2 ** Math.min(attempt, 8));
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The error of an operation whose compare-and-swap kept losing. */
export function contentionError(strategy: string, operation: string, runId: string): StoreOperationError {
  return new StoreOperationError(strategy, operation, {
    cause: new Error(`the tip of run ${runId} kept changing: ${MAX_ATTEMPTS} attempts lost`),
  });
}

/**
 * Reads and writes tips, and caches the last one this store instance read or wrote per run, so
 * a writer's next compare-and-swap can go straight to the server without a GET.
 */
export class Tips {
  private readonly cache = new Map<string, TipState>();

  constructor(private readonly client: ObjectClient) {}

  /** GETs the tip (never from the cache) and caches it. */
  async read(runId: string): Promise<TipState> {
    const key = tipKey(runId);
    const got = await this.client.get(key);
    const state: TipState = got
      ? { tip: parseTip(got.body, key), etag: got.etag, serverTime: got.serverTime }
      : { tip: undefined, etag: undefined, serverTime: new Date() };
    this.cache.set(runId, state);
    return state;
  }

  /** The cached tip of a run, else a fresh read. */
  async cached(runId: string): Promise<TipState> {
    return this.cache.get(runId) ?? this.read(runId);
  }

  /** Forgets a run's cached tip. */
  forget(runId: string): void {
    this.cache.delete(runId);
  }

  /**
   * Compare-and-swap of the tip from `from` to `next` (a fresh nonce is set here). Returns the new
   * state, or undefined when the condition failed. An answer lost in flight (`maybeCommitted`)
   * is settled by reading the tip back: our nonce there means the write happened.
   */
  async cas(runId: string, from: TipState, next: Tip): Promise<TipState | undefined> {
    const key = tipKey(runId);
    next.nonce = newNonce();
    const body = JSON.stringify(next);
    let result: Awaited<ReturnType<ObjectClient["put"]>>;
    try {
      result = await this.client.put(
        key,
        body,
        from.etag === undefined ? { ifNoneMatch: "*" } : { ifMatch: from.etag },
      );
    } catch (error) {
      if (!(error instanceof StoreUnavailableError && error.maybeCommitted)) throw error;
      const now = await this.read(runId).catch(() => {
        throw error;
      });
      if (now.tip?.nonce === next.nonce) return now;
      this.cache.delete(runId);
      return undefined;
    }
    if (!result.ok) {
      this.cache.delete(runId);
      return undefined;
    }
    const state: TipState = { tip: next, etag: result.etag, serverTime: result.serverTime };
    this.cache.set(runId, state);
    return state;
  }
}

/** The tip's deletion count. */
export const epochOf = (tip: Tip | undefined): number => tip?.epoch ?? 0;

/** A deep copy of a tip, to build the next version from. */
export const cloneTip = (tip: Tip): Tip => structuredClone(tip);
