/**
 * Public types of the change feed (`CheckpointManager.watch`) and of the replicator
 * (`replicate`). The store side of the feed is in `stores/types.ts` (`StoreChange`).
 */
import type { StoreSpec } from "../stores/registry.js";
import type { StoreChange } from "../stores/types.js";

/** One change as `watch` delivers it: the store's change, with its opaque `cursor`. */
export type ChangeEvent = StoreChange;

/** Options of `CheckpointManager.watch`. */
export interface WatchOptions {
  /** Only changes of this run. */
  pipelineId?: string;
  /** Only changes of runs of this pipeline name. */
  name?: string;
  /** Deliver every change after this cursor (a `cursor` of an earlier event); default: from now. */
  since?: string;
  /** Without `since`: start at the oldest change the store still retains instead of now. */
  fromStart?: boolean;
  /** Stops the iteration (it ends without an error). */
  signal?: AbortSignal;
}

/** Options of `replicate`. */
export interface ReplicateOptions {
  /** The source store: a URL, `{ strategy, config }`, or an open store. */
  from: StoreSpec;
  /** The target store (the replica), in the same forms. */
  to: StoreSpec;
  /** Keep running on the source's change feed after the catch-up, until `signal` aborts. */
  follow?: boolean;
  /** Only this run. */
  pipelineId?: string;
  /** Only runs of this pipeline name. */
  name?: string;
  /** Keep a run (and its checkpoints) on the replica after the source deletes it. */
  keepDeleted?: boolean;
  /** Stops a follow (the replicator saves its cursor and resolves). */
  signal?: AbortSignal;
  /** Full-compare interval while following a source without a change feed (default 5,000 ms). */
  pollMs?: number;
  /** Called as the replicator makes progress (about once per second, and at each phase change). */
  onProgress?: (progress: ReplicationProgress) => void;
  /** Called for each problem: a corrupt source record (not copied), an outage, a divergence. */
  onProblem?: (problem: ReplicationProblem) => void;
}

/** Where a replicator is. */
export interface ReplicationProgress {
  /** `sync`: comparing runs in full; `follow`: applying the feed; `retrying`: the source or target is down. */
  phase: "sync" | "follow" | "retrying";
  /** Runs compared so far in this sync, and how many there are. */
  runsDone: number;
  runsTotal: number;
  checkpointsCopied: number;
  outputsCopied: number;
  statusesCopied: number;
  deletions: number;
  /** Seconds between the oldest change not yet applied and now (0 when caught up); follow only. */
  lagSeconds?: number;
  /** Changes of the feed not yet applied; follow only. */
  behind?: number;
}

/**
 * Something the replicator reports and carries on from. `empty-source`: a full sync found no run
 * in the source (after the filters) while the target holds some, and deleted nothing (a wrong
 * source?). `no-feed`: the source opened read-only serves no change feed (a schema from before
 * the feed, or a redis prefix without one): it is compared in full instead, as a feedless source.
 */
export interface ReplicationProblem {
  kind: "corrupt" | "outage" | "diverged" | "trimmed" | "empty-source" | "no-feed";
  pipelineId?: string;
  checkpointId?: string;
  /** What happened and what the replicator did about it. */
  message: string;
}

/** What `replicate` did, when it returns (catch-up done, or the follow stopped). */
export interface ReplicationReport {
  checkpointsCopied: number;
  outputsCopied: number;
  statusesCopied: number;
  runsDeleted: number;
  checkpointsDeleted: number;
  /** Source records that failed verification and were not copied. */
  corrupt: ReplicationProblem[];
  /** Runs and checkpoints the target holds differently from the source, left as they are. */
  diverged: ReplicationProblem[];
  /** Set when a full sync found the source empty and the target not, and so deleted nothing. */
  emptySource?: ReplicationProblem;
  /** Full compares made (1 for the first catch-up, more after a trimmed cursor or a poll). */
  syncs: number;
  /** The source cursor the replica is at (saved in the target); undefined for a source without a feed. */
  cursor?: string;
}
