/**
 * `checkpointReplicas`: a replicator per replica store, in this process, following the run's own
 * checkpoints while it executes. The stages never wait for it; when the execution ends the
 * follow is stopped and one last catch-up of the run is given a bounded time. A replica that
 * fails is reported (events, a process warning), never a reason to fail the run.
 */
import { InvalidConfigError } from "../core/errors.js";
import { replicate } from "../feed/replicate.js";
import type { ReplicationProblem, ReplicationReport } from "../feed/types.js";
import { resolveStore, resolveStoreUrl, type StoreSpec } from "../stores/registry.js";
import type { CheckpointStore } from "../stores/types.js";
import type { PipelineEvent } from "./types.js";

/** How long the last catch-up of each replica may take after `execute()` ends, by default. */
export const DEFAULT_REPLICA_TIMEOUT_MS = 5_000;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

const isStoreInstance = (v: unknown): v is CheckpointStore =>
  typeof v === "object" && v !== null && typeof (v as CheckpointStore).putCheckpoint === "function";

/** Every problem of a `checkpointReplicas` value (URLs and configurations are resolved, not opened). */
export function replicaProblems(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    return ["checkpointReplicas must be an array of store URLs or { strategy, config }"];
  const problems: string[] = [];
  value.forEach((spec: unknown, i) => {
    const where = `checkpointReplicas[${i}]`;
    try {
      if (typeof spec === "string") resolveStoreUrl(spec);
      else if (isStoreInstance(spec)) return;
      else if (isPlainObject(spec) && typeof spec.strategy === "string") {
        if (spec.config !== undefined && !isPlainObject(spec.config))
          problems.push(`${where}.config must be an object`);
        else resolveStore(spec.strategy, (spec.config ?? {}) as Record<string, unknown>);
      } else
        problems.push(`${where} must be a store URL or { strategy, config }, got ${JSON.stringify(spec)}`);
    } catch (error) {
      if (!(error instanceof InvalidConfigError)) throw error;
      problems.push(...error.problems.map((p) => `${where}: ${p}`));
    }
  });
  return problems;
}

/** How a replica is named in events: its URL without a password, its strategy, or its location. */
export function replicaName(spec: StoreSpec): string {
  if (typeof spec === "string")
    return spec.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@/\s]+@/i, "$1:<password>@");
  if ("location" in spec) return spec.location;
  return spec.strategy;
}

type Emit = (event: PipelineEvent) => void;

/** Resolves to `undefined` after `ms`, with its timer cleared once `promise` settles. */
async function within<T>(
  promise: Promise<T>,
  ms: number,
): Promise<{ done: true; value: T } | { done: false }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ done: false }>((resolve) => {
    timer = setTimeout(() => resolve({ done: false }), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise.then((value) => ({ done: true as const, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One replica's follow for one run. */
class Replica {
  private readonly stopFollow = new AbortController();
  private readonly follow: Promise<ReplicationReport | undefined>;

  constructor(
    private readonly source: CheckpointStore,
    private readonly spec: StoreSpec,
    private readonly pipelineId: string,
    private readonly emit: Emit,
  ) {
    this.follow = this.run(true, this.stopFollow.signal);
  }

  private problem(
    kind: ReplicationProblem["kind"] | "failed" | "timeout",
    message: string,
    error?: Error,
  ): void {
    const event: PipelineEvent = {
      type: "replica_problem",
      pipelineId: this.pipelineId,
      at: new Date(),
      replica: replicaName(this.spec),
      kind,
      message,
      ...(error ? { error } : {}),
    };
    this.emit(event);
    // Without an onEvent listener a failing backup would go unnoticed.
    if (kind === "failed" || kind === "timeout" || kind === "corrupt")
      process.emitWarning(`cairn: replica ${event.replica} of run ${this.pipelineId}: ${message}`);
  }

  /** One replication of the run; its failure is reported and resolves `undefined`. */
  private async run(follow: boolean, signal: AbortSignal): Promise<ReplicationReport | undefined> {
    try {
      return await replicate({
        from: this.source,
        to: this.spec,
        follow,
        pipelineId: this.pipelineId,
        signal,
        onProblem: (p) => this.problem(p.kind, p.message),
      });
    } catch (error) {
      if (signal.aborted && !follow) return undefined;
      this.problem("failed", `replication stopped: ${(error as Error).message}`, error as Error);
      return undefined;
    }
  }

  /** Stops the follow, then catches up once more; both within `deadline` (epoch ms). */
  async stop(deadline: number): Promise<void> {
    this.stopFollow.abort();
    const followed = await within(this.follow, deadline - Date.now());
    if (!followed.done) {
      this.problem("timeout", "the replicator did not stop in time; the replica may lag behind the run");
      return;
    }
    // The follow may stop between a change and its copy: one full compare of the run settles it.
    const last = new AbortController();
    const final = this.run(false, last.signal);
    const caught = await within(final, deadline - Date.now());
    if (!caught.done) {
      last.abort();
      this.problem("timeout", "the last catch-up did not finish in time; the replica may lag behind the run");
      return;
    }
    const report = caught.value;
    if (!report) return;
    this.emit({
      type: "replica_synced",
      pipelineId: this.pipelineId,
      at: new Date(),
      replica: replicaName(this.spec),
      checkpointsCopied: (followed.value?.checkpointsCopied ?? 0) + report.checkpointsCopied,
    });
  }
}

/** The replicators of one execution. */
export class Replicas {
  private constructor(
    private readonly replicas: Replica[],
    private readonly timeoutMs: number,
  ) {}

  /** Starts following `pipelineId` from `source` (the store as stored: no keys) into each replica. */
  static start(
    source: CheckpointStore,
    specs: readonly StoreSpec[],
    pipelineId: string,
    timeoutMs: number,
    emit: Emit,
  ): Replicas {
    return new Replicas(
      specs.map((spec) => new Replica(source, spec, pipelineId, emit)),
      timeoutMs,
    );
  }

  /** Stops every replicator after its last catch-up, in at most the timeout (all in parallel). */
  async stop(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    await Promise.all(this.replicas.map((r) => r.stop(deadline)));
  }
}
