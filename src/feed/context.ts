/**
 * What the replicator's phases share: the raw source and target, the report being built, problem
 * and progress reporting, what it knows of the target's outputs, and the runs' key records.
 */
import { InvalidArgumentError } from "../core/errors.js";
import type { ValidationProblem } from "../core/types.js";
import { OutputMemo } from "../manager/check.js";
import type { GuardedStore } from "../stores/guarded-store.js";
import { parseKeyRecord } from "../transforms/data-key.js";
import { SourceReader } from "./copy.js";
import type {
  ReplicateOptions,
  ReplicationProblem,
  ReplicationProgress,
  ReplicationReport,
} from "./types.js";

/** How often progress is reported at most, outside phase changes. */
const PROGRESS_MS = 1000;
/** Runs whose target output hashes are kept in memory while following. */
const CACHED_RUNS = 64;
/** Runs whose last checkpoint's outputs are kept checked while following (output texts: memory). */
const MEMO_RUNS = 16;

/** The replication's shared state; one per `replicate` call. */
export class Replication {
  readonly report: ReplicationReport;
  phase: ReplicationProgress["phase"] = "sync";
  runsDone = 0;
  runsTotal = 0;
  lagSeconds: number | undefined;
  behind: number | undefined;
  private lastProgress = 0;
  private readonly reported = new Set<string>();
  /** Per run, the output addresses the target is known to hold (most recently used last). */
  private readonly targetHashes = new Map<string, Set<string>>();
  /** Per run, the outputs already checked while following, so each is read and checked once. */
  private readonly memos = new Map<string, OutputMemo>();

  constructor(
    readonly source: GuardedStore,
    readonly target: GuardedStore,
    readonly options: ReplicateOptions,
  ) {
    this.report = {
      checkpointsCopied: 0,
      outputsCopied: 0,
      statusesCopied: 0,
      runsDeleted: 0,
      checkpointsDeleted: 0,
      corrupt: [],
      diverged: [],
      syncs: 0,
    };
  }

  /** A reader of the source for one run at a time (runs are worked on in parallel, each with its own). */
  newReader(): SourceReader {
    return new SourceReader(this.source);
  }

  get aborted(): boolean {
    return this.options.signal?.aborted === true;
  }

  /** True when the run passes the `pipelineId` / `name` filters (`name` unknown: only the id). */
  wants(pipelineId: string, pipelineName: string | undefined): boolean {
    const { pipelineId: id, name } = this.options;
    if (id !== undefined && pipelineId !== id) return false;
    return name === undefined || pipelineName === undefined || pipelineName === name;
  }

  /** Reports a problem once per replication (a record re-read by a later sync is not news). */
  problem(problem: ReplicationProblem, key?: string): void {
    if (key !== undefined) {
      const seen = `${problem.kind}\0${key}`;
      if (this.reported.has(seen)) return;
      this.reported.add(seen);
    }
    if (problem.kind === "corrupt") this.report.corrupt.push(problem);
    if (problem.kind === "diverged") this.report.diverged.push(problem);
    if (problem.kind === "empty-source") this.report.emptySource ??= problem;
    this.options.onProblem?.(problem);
  }

  /** A source checkpoint that failed verification: reported, never copied. */
  corrupt(
    pipelineId: string,
    checkpointId: string | undefined,
    problems: readonly ValidationProblem[],
  ): void {
    const what = checkpointId === undefined ? `an entry of run ${pipelineId}` : `checkpoint ${checkpointId}`;
    this.problem(
      {
        kind: "corrupt",
        pipelineId,
        ...(checkpointId !== undefined ? { checkpointId } : {}),
        message: `${what} failed verification in the source (${problems.map((p) => p.message).join("; ")}); not copied`,
      },
      `${pipelineId}\0${checkpointId ?? problems.map((p) => p.message).join()}`,
    );
  }

  /** A run the target holds differently: reported, left as it is. */
  diverged(pipelineId: string, message: string, checkpointId?: string): void {
    this.problem(
      { kind: "diverged", pipelineId, ...(checkpointId !== undefined ? { checkpointId } : {}), message },
      `${pipelineId}\0${checkpointId ?? ""}\0${message}`,
    );
  }

  /** Calls `onProgress` at a phase change (`force`) or when a second has passed since the last. */
  progress(force = false): void {
    const now = Date.now();
    if (!this.options.onProgress || (!force && now - this.lastProgress < PROGRESS_MS)) return;
    this.lastProgress = now;
    const r = this.report;
    this.options.onProgress({
      phase: this.phase,
      runsDone: this.runsDone,
      runsTotal: this.runsTotal,
      checkpointsCopied: r.checkpointsCopied,
      outputsCopied: r.outputsCopied,
      statusesCopied: r.statusesCopied,
      deletions: r.runsDeleted + r.checkpointsDeleted,
      ...(this.lagSeconds !== undefined ? { lagSeconds: this.lagSeconds } : {}),
      ...(this.behind !== undefined ? { behind: this.behind } : {}),
    });
  }

  /** Enters a phase and says so. */
  enter(phase: ReplicationProgress["phase"]): void {
    const changed = this.phase !== phase;
    this.phase = phase;
    if (changed) this.progress(true);
  }

  /**
   * The output addresses the target holds for a run: listed once, then kept up to date with what
   * this replicator copies. `fresh` lists again (each sync does, so outputs removed on the target
   * behind the replicator's back are copied again).
   */
  async targetOutputs(pipelineId: string, fresh = false): Promise<Set<string>> {
    let set = fresh ? undefined : this.targetHashes.get(pipelineId);
    this.targetHashes.delete(pipelineId);
    set ??= new Set(await this.target.listOutputHashes(pipelineId));
    this.targetHashes.set(pipelineId, set);
    if (this.targetHashes.size > CACHED_RUNS)
      this.targetHashes.delete(this.targetHashes.keys().next().value as string);
    return set;
  }

  /** The output memo of a run while following (a run's outputs are cumulative: each read once). */
  memoFor(pipelineId: string): OutputMemo {
    const memo = this.memos.get(pipelineId) ?? new OutputMemo();
    this.memos.delete(pipelineId);
    this.memos.set(pipelineId, memo);
    if (this.memos.size > MEMO_RUNS) this.memos.delete(this.memos.keys().next().value as string);
    return memo;
  }

  /** Forgets what is known of a run (it was deleted on the target, or at the source). */
  forgetRun(pipelineId: string): void {
    this.targetHashes.delete(pipelineId);
    this.memos.delete(pipelineId);
  }

  /**
   * Makes the target's key record of a run the source's (an encrypted run's data key, wrapped),
   * before any of its records is copied. The same data key re-wrapped (a rekey) is copied over;
   * another data key on a target that holds checkpoints of the run is a divergence (false).
   */
  async syncRunKey(pipelineId: string, targetHasCheckpoints: boolean): Promise<boolean> {
    const wanted = await this.source.getRunKey?.(pipelineId);
    if (wanted === undefined) return true;
    if (!this.target.getRunKey || !this.target.putRunKey)
      throw new InvalidArgumentError(
        `the ${this.target.strategy} target cannot hold encrypted runs (no run key records); run ${pipelineId} is encrypted`,
      );
    const current = await this.target.getRunKey(pipelineId);
    if (current === wanted) return true;
    if (current !== undefined && targetHasCheckpoints) {
      const sameKey = keyId(pipelineId, current) === keyId(pipelineId, wanted);
      if (!sameKey) {
        this.diverged(
          pipelineId,
          `the target's run ${pipelineId} is encrypted under another data key than the source's; left as it is`,
        );
        return false;
      }
    }
    if (await this.target.putRunKey(pipelineId, wanted, current)) return true;
    // Changed in between (a writer on the target): looked at again on the next change or sync.
    this.diverged(pipelineId, `the key record of run ${pipelineId} changed on the target while copying it`);
    return false;
  }
}

function keyId(pipelineId: string, record: string): string | undefined {
  try {
    return parseKeyRecord(pipelineId, record).id;
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn` over `items`, at most `limit` at a time. After a failure no new item is started; the
 * ones running finish, then the first error is thrown (nothing is left running behind the caller).
 */
export async function settleLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failed) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.error;
}
