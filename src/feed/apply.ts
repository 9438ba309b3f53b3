/**
 * Applying changes of the source's feed to the target, idempotently: after a kill the
 * replicator applies again every change after its saved cursor, some of which it had applied.
 * Each apply reads the current state of both stores rather than trusting the change's details,
 * so applying a change late (after later ones happened) or twice converges all the same.
 * A run's changes are applied in order by one `RunApplier`; different runs in parallel.
 */
import { CheckpointCorruptError } from "../core/errors.js";
import type { StoredMetadata } from "../core/record.js";
import { storeParents } from "../manager/check.js";
import type { StoreChange } from "../stores/types.js";
import type { Replication } from "./context.js";
import { putCopy, type SourceReader, targetMetadata } from "./copy.js";
import { copyStatus, importNew, statusDiffers } from "./sync.js";

/** The head sequences of a run on both sides, read once per batch and kept up to date after. */
interface Heads {
  source: number;
  /** Undefined when the target holds nothing of the run. */
  target: number | undefined;
}

/** Applies one run's changes of a batch, in order. */
export class RunApplier {
  private readonly reader: SourceReader;
  private heads: Heads | undefined;

  constructor(
    private readonly r: Replication,
    private readonly pipelineId: string,
  ) {
    this.reader = r.newReader();
  }

  /**
   * Applies the run's changes of a batch in order; `onApplied(n)` after the first `n` are. What
   * comes before the run's last deletion in the batch is superseded by it and skipped (unless
   * `keepDeleted`, which keeps what the deletion would remove). When the target then holds nothing
   * of the run, the checkpoints that follow are imported in one step (as a sync imports a new
   * run), the rest applied one by one.
   */
  async applyAll(changes: readonly StoreChange[], onApplied: (n: number) => void): Promise<void> {
    const { r } = this;
    let i = 0;
    if (!r.options.keepDeleted) {
      const last = changes.findLastIndex((c) => c.type === "deleted" && c.checkpointId === undefined);
      if (last > 0) {
        i = last;
        onApplied(i);
      }
    }
    if (changes[i]?.type === "deleted" && changes[i]?.checkpointId === undefined) {
      await this.apply(changes[i] as StoreChange);
      onApplied(++i);
    }
    i += await this.importLeading(changes.slice(i));
    onApplied(i);
    for (; i < changes.length; i++) {
      if (r.aborted) return;
      await this.apply(changes[i] as StoreChange);
      onApplied(i + 1);
    }
  }

  /**
   * When the target holds nothing of the run and `changes` start with two or more checkpoints,
   * imports those in one step; how many of `changes` that dealt with (0: none).
   */
  private async importLeading(changes: readonly StoreChange[]): Promise<number> {
    const { r, pipelineId } = this;
    let leading = 0;
    while (leading < changes.length && changes[leading]?.type === "checkpoint") leading++;
    const first = changes[0];
    if (leading < 2 || !first || !r.wants(pipelineId, first.pipelineName || undefined) || r.aborted) return 0;
    await this.ahead();
    if (this.heads?.target !== undefined) return 0;
    const ids = changes.slice(0, leading).map((c) => c.checkpointId as string);
    const parents = storeParents(r.source);
    const done = await importNew(r, this.reader, pipelineId, ids, parents, r.memoFor(pipelineId));
    if (!done.imported) return 0;
    if (this.heads) this.heads.target = done.highest;
    return done.handled;
  }

  /** Applies one change (a change of a run the filters leave out is skipped). */
  async apply(change: StoreChange): Promise<void> {
    const r = this.r;
    // pipelineName is "" for a run the store held nothing of: only the id filter applies.
    if (!r.wants(change.pipelineId, change.pipelineName || undefined)) return;
    const { checkpointId } = change;
    if (checkpointId === undefined) {
      if (change.type === "deleted") await this.deleteRun();
    } else if (change.type === "deleted") await this.deleteCheckpoint(checkpointId, change.sequence);
    else if (change.type === "status") await this.copyStatusOf(checkpointId);
    else await this.copy(checkpointId);
  }

  /**
   * True (reported) when the target's run is ahead of the source's: its head has a higher sequence
   * than the source's head, so it holds checkpoints written on the replica (after a failover).
   * The heads are read at the run's first copy or deletion in a batch, then kept up to date.
   */
  private async ahead(): Promise<boolean> {
    const { r, pipelineId } = this;
    if (!this.heads) {
      const [source, target] = await Promise.all([
        r.source.getRunHead(pipelineId),
        r.target.getRunHead(pipelineId),
      ]);
      this.heads = { source: source?.sequence ?? 0, target: target?.sequence };
    }
    const { source, target } = this.heads;
    if (target === undefined || target <= source) return false;
    r.diverged(
      pipelineId,
      `the target's run ${pipelineId} is at sequence ${target}, beyond the source's ${source} (written on the replica, as after a failover); left as it is`,
    );
    return true;
  }

  /** The source's metadata of a checkpoint; undefined when gone; null (reported) when unparseable. */
  private async sourceMetadata(checkpointId: string): Promise<StoredMetadata | null | undefined> {
    try {
      return (await this.r.source.getCheckpoint(checkpointId))?.metadata;
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError)) throw error;
      this.r.corrupt(this.pipelineId, checkpointId, [{ kind: "unreadable", message: error.message }]);
      return null;
    }
  }

  /** A status change: the target's status fields made the source's; absent there, copied. */
  private async copyStatusOf(checkpointId: string): Promise<void> {
    const there = await targetMetadata(this.r.target, checkpointId);
    if (there === undefined) return this.copy(checkpointId);
    if (there === null) {
      this.r.diverged(
        this.pipelineId,
        `checkpoint ${checkpointId} is unreadable on the target; left as it is`,
        checkpointId,
      );
      return;
    }
    const source = await this.sourceMetadata(checkpointId);
    // Deleted since: its deletion is a later change. A run the replica took over keeps its statuses.
    if (source && !(await this.ahead())) await this.settle(source, there);
  }

  /** The same checkpoint on both sides: status fields copied; another checksum is a divergence. */
  private async settle(source: StoredMetadata, there: StoredMetadata): Promise<void> {
    const id = source.checkpoint_id;
    if (source.checksum !== there.checksum)
      this.r.diverged(
        this.pipelineId,
        `checkpoint ${id} has another checksum on the target; left as it is`,
        id,
      );
    else if (statusDiffers(there, source)) await copyStatus(this.r, source);
  }

  /**
   * A checkpoint written: copied, verified, with the outputs the target lacks. Already there (an
   * apply made twice) with the same checksum, its status fields are made the source's; with
   * another checksum, the run has diverged and is left as it is.
   */
  private async copy(checkpointId: string): Promise<void> {
    const { r, pipelineId, reader } = this;
    reader.reset();
    const checked = await reader.verify(checkpointId, storeParents(r.source), r.memoFor(pipelineId));
    if (checked.kind === "corrupt") r.corrupt(pipelineId, checkpointId, checked.problems);
    if (checked.kind !== "ok") return;
    if (await this.ahead()) return;
    if (!(await r.syncRunKey(pipelineId, this.heads?.target !== undefined))) return;
    const has = await r.targetOutputs(pipelineId);
    const outputs = await reader.missingOutputs(checked.copy, has);
    if (!outputs) return;
    const put = await putCopy(r.target, checked.copy, outputs);
    reader.reset();
    const m = checked.copy.record.metadata;
    if (put.outcome === "diverged") {
      r.diverged(
        pipelineId,
        `checkpoint ${checkpointId} is held differently on the target; left as it is`,
        checkpointId,
      );
      return;
    }
    if (put.outcome === "present") return this.settle(m, put.there);
    for (const o of outputs) has.add(o.hash);
    r.report.checkpointsCopied++;
    r.report.outputsCopied += outputs.length;
    if (this.heads) this.heads.target = Math.max(this.heads.target ?? 0, m.sequence);
  }

  /**
   * A checkpoint deleted: deleted on the target too (as retention when the source's head says its
   * retention removed it), unless `keepDeleted` or the target's run is ahead.
   */
  private async deleteCheckpoint(checkpointId: string, sequence: number | undefined): Promise<void> {
    const { r, pipelineId } = this;
    if (r.options.keepDeleted || (await this.ahead())) return;
    const head = await r.source.getRunHead(pipelineId);
    const retention = sequence !== undefined && sequence <= (head?.pruned?.throughSequence ?? 0);
    r.report.checkpointsDeleted += await r.target.deleteCheckpoints(
      pipelineId,
      [checkpointId],
      retention ? { retention: true } : undefined,
    );
  }

  /** A run deleted: deleted on the target too, unless `keepDeleted`. */
  private async deleteRun(): Promise<void> {
    const { r, pipelineId } = this;
    if (r.options.keepDeleted) return;
    const had =
      (await r.target.getRunHead(pipelineId)) !== undefined ||
      (await r.target.listCheckpoints(pipelineId)).length > 0;
    await r.target.deleteRun(pipelineId);
    r.forgetRun(pipelineId);
    this.heads = undefined;
    if (had) r.report.runsDeleted++;
  }
}
