/**
 * The object-storage store (`s3`, `azure`): the store logic, written once against `ObjectClient`
 * (`objects.ts`), which the SDK adapters implement. Layout in `keys.ts`; each run's state and
 * commit point is its tip object (`tip.ts`), changed only by compare-and-swap.
 *
 * Round trips (measured with `MemoryObjects` in test/stores/object-store.test.ts):
 * - `putCheckpoint`, steady state with one writer: 2 sequential rounds (outputs ∥ cp object ∥ id
 *   claim, then the tip's compare-and-swap on the cached ETag); no GET.
 * - `getLatestCheckpoint` (resume): 2 GETs (tip, then the newest cp object), whatever the run's
 *   length: no page and no listing is read.
 */
import { InvalidConfigError } from "../../core/errors.js";
import type {
  CheckpointRecord,
  CheckpointStore,
  CorruptEntry,
  DeleteCheckpointsOptions,
  ImportedCheckpoint,
  ImportRunOptions,
  Lease,
  LeaseAttempt,
  ListedCheckpoint,
  ListRunsQuery,
  OutputRecord,
  PutOptions,
  RunHead,
  RunPage,
  StatusPatch,
} from "../types.js";
import type { ObjectContext } from "./context.js";
import { deleteRun, finishDeletion } from "./delete-run.js";
import { importRun } from "./import.js";
import { metaKey, outKey } from "./keys.js";
import { checkLayout } from "./layout.js";
import { acquireLease, getLease, releaseLease, renewLease } from "./leases.js";
import * as maintenance from "./maintenance.js";
import { loadManifest, mapLimit } from "./manifest.js";
import type { ObjectClient } from "./objects.js";
import { putCheckpoint } from "./put.js";
import { rebuildIndexes } from "./rebuild.js";
import { locate, readClaim, readListed, readRecord } from "./records.js";
import { listRuns } from "./runs-index.js";
import {
  backoff,
  cloneTip,
  compareEntries,
  contentionError,
  emptyTip,
  liveTip,
  MAX_ATTEMPTS,
  Tips,
} from "./tip.js";
import { updateCheckpoint } from "./update.js";

/** Options of {@link ObjectStore}. */
export interface ObjectStoreOptions {
  /** The strategy name (`s3`, `azure`), for errors and `strategy`. */
  strategy: string;
  /** The bucket or container under its prefix. */
  client: ObjectClient;
  /** Create nothing (no layout object, no probe); a prefix with no objects is `StoreNotFoundError`. */
  readOnly?: boolean;
  /** Skip the conditional-writes probe: only safe with one writer, as no lease can be trusted. */
  singleWriter?: boolean;
}

/** Probes already run (or running) in this process, by client location. */
const probes = new Map<string, Promise<void>>();

/** Runs the client's conditions probe once per location per process. */
function probeOnce(client: ObjectClient): Promise<void> {
  let probe = probes.get(client.location);
  if (!probe) {
    probe = client.probeConditions();
    probes.set(client.location, probe);
    // A failure (an unreachable server, a refusing one) is tried again on the next setup.
    probe.catch(() => probes.delete(client.location));
  }
  return probe;
}

/** A checkpoint store on object storage; see the file comment. */
export class ObjectStore implements CheckpointStore {
  readonly strategy: string;
  readonly location: string;
  readonly persistent = true;
  private readonly client: ObjectClient;
  private readonly readOnly: boolean;
  private readonly singleWriter: boolean;
  private readonly ctx: ObjectContext;

  constructor(options: ObjectStoreOptions) {
    if (typeof options?.strategy !== "string" || options.strategy.length === 0 || !options.client) {
      throw new InvalidConfigError("an object store needs a strategy name and an ObjectClient");
    }
    this.strategy = options.strategy;
    this.client = options.client;
    this.location = options.client.location;
    this.readOnly = options.readOnly ?? false;
    this.singleWriter = options.singleWriter ?? false;
    this.ctx = { client: this.client, tips: new Tips(this.client), strategy: this.strategy };
  }

  /** Probes the server's conditional writes (once per location), then checks the layout object. */
  async setup(): Promise<void> {
    if (!this.readOnly && !this.singleWriter) await probeOnce(this.client);
    await checkLayout(this.client, this.readOnly);
  }

  /** Writes the new objects, then swaps the tip (2 rounds in steady state); see `put.ts`. */
  async putCheckpoint(
    record: CheckpointRecord,
    outputs: readonly OutputRecord[],
    fence?: Lease,
    options?: PutOptions,
  ): Promise<void> {
    await putCheckpoint(this.ctx, record, outputs, fence, options);
  }

  /** Writes the whole run, then makes it visible with one swap of the tip; see `import.ts`. */
  async importRun(
    pipelineId: string,
    checkpoints: readonly ImportedCheckpoint[],
    options: ImportRunOptions,
  ): Promise<void> {
    await importRun(this.ctx, pipelineId, checkpoints, options);
  }

  /** Takes the run's lease in its tip; expiry by the server's clock or a watched tip. */
  async acquireLease(pipelineId: string, owner: string, ttlMs: number): Promise<LeaseAttempt> {
    return acquireLease(this.ctx, pipelineId, owner, ttlMs);
  }

  /** Extends a lease still held, by a swap of the tip. */
  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    return renewLease(this.ctx, lease, ttlMs);
  }

  /** Marks a lease still held released; its token stays counted. */
  async releaseLease(lease: Lease): Promise<void> {
    await releaseLease(this.ctx, lease);
  }

  /** The run's live lease, read from its tip; writes nothing. */
  async getLease(pipelineId: string): Promise<Lease | undefined> {
    return getLease(this.ctx, pipelineId);
  }

  /** Claim → run's tip → manifest entry (a page only when it is no longer inline) → cp object. */
  async getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined> {
    const found = await readClaim(this.client, checkpointId);
    if (!found?.claim) return undefined;
    const held = await locate(this.client, this.ctx.tips, checkpointId, found.claim);
    return held && readRecord(this.client, held.runId, held.entry);
  }

  /** Two GETs: the tip, which names the newest checkpoint, then that checkpoint. */
  async getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined> {
    const latest = liveTip((await this.ctx.tips.read(pipelineId)).tip)?.latest;
    return latest ? readRecord(this.client, pipelineId, latest) : undefined;
  }

  /** The tip, its pages and every cp object (32 in flight), oldest first; corrupt ones included. */
  async listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]> {
    const tip = liveTip((await this.ctx.tips.read(pipelineId)).tip);
    if (!tip) return [];
    const entries = (await loadManifest(this.client, tip)).cps.sort(compareEntries);
    return mapLimit(entries, 32, (entry) => readListed(this.client, pipelineId, entry));
  }

  /**
   * Runs with anything stored under `runs/`: one delimited LIST per 1,000 runs. A run holding
   * only a lease or a key record has only a tip, so it is not listed; a crashed first write may
   * leave objects under `runs/<id>/` with no committed tip: such a run is listed and lists no
   * checkpoints (until `deleteRun` or `rebuildIndexes` removes them).
   */
  async listPipelineIds(): Promise<string[]> {
    const ids: string[] = [];
    let continuation: string | undefined;
    do {
      const page = await this.client.list("runs/", {
        delimiter: "/",
        ...(continuation === undefined ? {} : { continuation }),
      });
      for (const prefix of page.prefixes) ids.push(prefix.slice("runs/".length, -1));
      continuation = page.continuation;
    } while (continuation !== undefined);
    return ids.sort();
  }

  /** A page of a name's runs from the runs-by-name entries; see `runs-index.ts`. */
  async listRuns(query: ListRunsQuery): Promise<RunPage> {
    return listRuns(this.ctx, query);
  }

  /** Patches the status fields in the cp object itself (its own compare-and-swap). */
  async updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void> {
    await updateCheckpoint(this.ctx, checkpointId, patch);
  }

  /** Drops checkpoints from the manifest (one swap), then deletes their objects and claims. */
  async deleteCheckpoints(
    pipelineId: string,
    checkpointIds: readonly string[],
    options: DeleteCheckpointsOptions = {},
  ): Promise<number> {
    return maintenance.deleteCheckpoints(this.ctx, pipelineId, checkpointIds, options);
  }

  /** The head record the tip keeps; one GET. */
  async getRunHead(pipelineId: string): Promise<RunHead | undefined> {
    const head = liveTip((await this.ctx.tips.read(pipelineId)).tip)?.head;
    if (!head) return undefined;
    const { sequence, checkpointId, checksum, pruned } = head;
    return { sequence, checkpointId, checksum, ...(pruned ? { pruned: { ...pruned } } : {}) };
  }

  /**
   * The blobs, GET in parallel, without reading the manifest (resume must not read pages): a blob
   * a lost race left unreferenced may be returned; the core verifies every hash it reads anyway.
   */
  async getOutputs(pipelineId: string, hashes: readonly string[]): Promise<Map<string, string>> {
    const unique = [...new Set(hashes)];
    const found = new Map<string, string>();
    await mapLimit(unique, 32, async (hash) => {
      const got = await this.client.get(outKey(pipelineId, hash));
      if (got) found.set(hash, got.body.toString("utf8"));
    });
    return found;
  }

  /** The output hashes the run's manifest lists (pages included), sorted. */
  async listOutputHashes(pipelineId: string): Promise<string[]> {
    const tip = liveTip((await this.ctx.tips.read(pipelineId)).tip);
    return tip ? [...new Set((await loadManifest(this.client, tip)).outs)].sort() : [];
  }

  /** Drops outputs from the manifest, then deletes their blobs; see `maintenance.ts`. */
  async deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number> {
    return maintenance.deleteOutputs(this.ctx, pipelineId, hashes);
  }

  /** Tombstones the tip (the run is gone for readers), then deletes its objects; see `delete-run.ts`. */
  async deleteRun(pipelineId: string): Promise<void> {
    await deleteRun(this.ctx, pipelineId);
  }

  /** The raw text of a corrupt entry's cp object. */
  async readCorruptEntry(entry: CorruptEntry): Promise<string> {
    return maintenance.readCorruptEntry(this.ctx, entry);
  }

  /** Drops a corrupt entry from the manifest and deletes its object. */
  async removeCorruptEntry(entry: CorruptEntry): Promise<void> {
    await maintenance.removeCorruptEntry(this.ctx, entry);
  }

  /** Rewrites a lost runs-by-name entry and removes unreferenced objects; see `rebuild.ts`. */
  async rebuildIndexes(pipelineId: string): Promise<string[]> {
    return rebuildIndexes(this.ctx, pipelineId);
  }

  /** The tip's key record; undefined when the run has none. */
  async getRunKey(pipelineId: string): Promise<string | undefined> {
    return liveTip((await this.ctx.tips.read(pipelineId)).tip)?.runKey ?? undefined;
  }

  /** Compare-and-set of the tip's key record: a compare-and-swap of the tip. */
  async putRunKey(pipelineId: string, record: string, expected: string | undefined): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (attempt > 0) await backoff(attempt);
      let state = await this.ctx.tips.read(pipelineId);
      if (state.tip?.deleting) state = await finishDeletion(this.ctx, pipelineId, state);
      // After a swap whose answer was lost, the record in place means it landed.
      if (attempt > 0 && state.tip?.runKey === record) return true;
      if ((state.tip?.runKey ?? undefined) !== expected) return false;
      const next = state.tip ? cloneTip(state.tip) : emptyTip();
      next.runKey = record;
      if (await this.ctx.tips.cas(pipelineId, state, next)) return true;
    }
    throw contentionError(this.strategy, "putRunKey", pipelineId);
  }

  /** A named value: the object `meta/<key>.json`, outside every run's folder. */
  async getMeta(key: string): Promise<string | undefined> {
    return (await this.client.get(metaKey(key)))?.body.toString("utf8");
  }

  /** A plain put: last writer wins, as the contract asks; nothing else refers to the object. */
  async putMeta(key: string, value: string): Promise<void> {
    await this.client.put(metaKey(key), value);
  }

  /** Closes the client. */
  async close(): Promise<void> {
    await this.client.close();
  }
}
