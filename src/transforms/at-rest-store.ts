/**
 * The at-rest layer: compression and encryption between the manager and every store, so each
 * store (and every store added later) gets them without store code. It is always there: a reader
 * with no settings still reads compressed records, and encrypted ones once it has the keys.
 *
 * Writes seal each checkpoint body and output into an envelope (see `envelope.ts`); reads open
 * them back into the exact canonical text, so the manager's checks are the same with it on or
 * off. A record it cannot open for want of a key is returned still sealed, marked with the key it
 * needs: metadata, listings and outlines work, content reads refuse it with `KeyMissingError`.
 */
import { CheckpointCorruptError, InvalidArgumentError, KeyMissingError } from "../core/errors.js";
import { isEnvelope, markCorrupt, markSealed } from "../core/sealed.js";
import type { GuardedStore } from "../stores/guarded-store.js";
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
  MigrationStatus,
  OutputRecord,
  PutOptions,
  RunHead,
  RunPage,
  StatusPatch,
} from "../stores/types.js";
import { type Codec, decoderFor } from "./compression.js";
import { type DataKey, matchAddress, newDataKey, openDataKey, parseKeyRecord } from "./data-key.js";
import { openEnvelope, parseEnvelope, type SealContext, seal } from "./envelope.js";
import type { KeyRing } from "./keys.js";

/** Runs whose data keys (and encrypted output addresses) the layer keeps in memory. */
const MAX_RUNS = 64;

/** What the layer does on write. */
export interface AtRestSettings {
  /** Compress records and outputs with this codec (undefined: stored uncompressed). */
  codec?: Codec | undefined;
  /** Encrypt with per-run data keys wrapped by this ring (undefined: stored in the clear). */
  ring?: KeyRing | undefined;
  /** Largest plaintext an envelope may open into. */
  maxBytes: number;
}

/** A small least-recently-used map. */
class Recent<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly limit: number) {}
  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.limit) this.map.delete(this.map.keys().next().value as string);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
}

/** Receives the texts a view of the layer reads from its store, as stored (still sealed). */
export interface StoredTextTap {
  record(checkpointId: string, record: CheckpointRecord): void;
  outputs(found: ReadonlyMap<string, string>): void;
}

/** The manager's view of its store: every `CheckpointStore` method, with records sealed at rest. */
export class AtRestStore implements CheckpointStore {
  readonly strategy: string;
  readonly location: string;
  readonly persistent: boolean;
  /** Unwrapped data keys by run. */
  private readonly keys: Recent<DataKey>;
  /** Per run, the addresses of outputs read encrypted: their address may be keyed. */
  private readonly sealedOutputs: Recent<Set<string>>;
  /** Set on a view made by {@link AtRestStore.tapped}. */
  private tap: StoredTextTap | undefined;
  rebuildIndexes?: (pipelineId: string) => Promise<string[]>;
  migrationStatus?: () => Promise<MigrationStatus>;
  getRunKey?: (pipelineId: string) => Promise<string | undefined>;
  putRunKey?: (pipelineId: string, record: string, expected: string | undefined) => Promise<boolean>;
  readChanges?: CheckpointStore["readChanges"];
  feedCursor?: CheckpointStore["feedCursor"];
  waitForChanges?: CheckpointStore["waitForChanges"];
  getMeta?: CheckpointStore["getMeta"];
  putMeta?: CheckpointStore["putMeta"];

  constructor(
    readonly inner: GuardedStore,
    private readonly settings: AtRestSettings,
    caches?: { keys: Recent<DataKey>; sealedOutputs: Recent<Set<string>> },
  ) {
    this.keys = caches?.keys ?? new Recent<DataKey>(MAX_RUNS);
    this.sealedOutputs = caches?.sealedOutputs ?? new Recent<Set<string>>(MAX_RUNS);
    this.strategy = inner.strategy;
    this.location = inner.location;
    this.persistent = inner.persistent;
    // Optional methods exist here only when the inner store has them: callers test for them.
    if (inner.rebuildIndexes) this.rebuildIndexes = inner.rebuildIndexes.bind(inner);
    if (inner.migrationStatus) this.migrationStatus = inner.migrationStatus.bind(inner);
    // The feed and meta values name runs and checkpoints, never content: nothing to seal or open.
    if (inner.readChanges) this.readChanges = inner.readChanges.bind(inner);
    if (inner.feedCursor) this.feedCursor = inner.feedCursor.bind(inner);
    if (inner.waitForChanges) this.waitForChanges = inner.waitForChanges.bind(inner);
    if (inner.getMeta) this.getMeta = inner.getMeta.bind(inner);
    if (inner.putMeta) this.putMeta = inner.putMeta.bind(inner);
    const keyed = inner as CheckpointStore;
    if (keyed.getRunKey && keyed.putRunKey) {
      this.getRunKey = keyed.getRunKey.bind(inner);
      const put = keyed.putRunKey.bind(inner);
      this.putRunKey = async (pipelineId, record, expected) => {
        // A key record replaced underneath (rekey, import) is read again on next use.
        this.keys.delete(pipelineId);
        return put(pipelineId, record, expected);
      };
    }
    if (settings.ring && !this.putRunKey)
      throw new InvalidArgumentError(
        `the ${inner.strategy} store cannot hold encrypted runs: it has no run key records (getRunKey, putRunKey)`,
      );
  }

  /**
   * A view of this layer that hands every stored text it reads to `tap`, so an export writes
   * exactly the texts it verified without reading them twice. It shares this layer's key caches.
   */
  tapped(tap: StoredTextTap): AtRestStore {
    const view = new AtRestStore(this.inner, this.settings, {
      keys: this.keys,
      sealedOutputs: this.sealedOutputs,
    });
    view.tap = tap;
    return view;
  }

  /** True when this layer encrypts what it writes. */
  get encrypts(): boolean {
    return this.settings.ring !== undefined;
  }

  /** The key ring, when encryption is configured. */
  get ring(): KeyRing | undefined {
    return this.settings.ring;
  }

  setup(): Promise<void> {
    return this.inner.setup();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  // ---- keys ------------------------------------------------------------------------------

  /**
   * The data key new records of a run are sealed with: the run's stored key, or a new one stored
   * by compare-and-set (two writers racing on a new run end up with the same key). `fresh` reads
   * the store even when a key is cached: a run's first checkpoint never uses a key a deleted run left.
   */
  async writeKey(pipelineId: string, fresh = false): Promise<DataKey | undefined> {
    const ring = this.settings.ring;
    if (!ring) return undefined;
    const cached = fresh ? undefined : this.keys.get(pipelineId);
    if (cached) return cached;
    const inner = this as Required<Pick<CheckpointStore, "getRunKey" | "putRunKey">>;
    for (let attempt = 0; attempt < 3; attempt++) {
      const stored = await inner.getRunKey(pipelineId);
      if (stored !== undefined) {
        const key = openDataKey(pipelineId, stored, ring);
        this.keys.set(pipelineId, key);
        return key;
      }
      const key = newDataKey(pipelineId, ring);
      if (await inner.putRunKey(pipelineId, key.record, undefined)) {
        this.keys.set(pipelineId, key);
        return key;
      }
    }
    throw new CheckpointCorruptError(undefined, `the key record of run ${pipelineId} keeps changing`);
  }

  /** The run's data key with id `dataKeyId` for reading, or why it cannot be had. */
  private async readKey(
    pipelineId: string,
    dataKeyId: string,
    where: string,
  ): Promise<DataKey | KeyMissingError> {
    const cached = this.keys.get(pipelineId);
    if (cached?.id === dataKeyId) return cached;
    const what = `Run ${pipelineId}'s data`;
    const stored = this.getRunKey ? await this.getRunKey(pipelineId) : undefined;
    if (stored === undefined) return new KeyMissingError(dataKeyId, "data-key", what);
    const record = parseKeyRecord(pipelineId, stored);
    // The run has a data key, and it is another: the record was changed, or is not this run's.
    if (record.id !== dataKeyId)
      throw new CheckpointCorruptError(
        undefined,
        `${where} names data key ${dataKeyId}, but run ${pipelineId}'s data key is ${record.id}`,
      );
    const ring = this.settings.ring;
    if (!ring?.get(record.kek)) return new KeyMissingError(record.kek, "key-encryption-key", what);
    const key = openDataKey(pipelineId, stored, ring);
    this.keys.set(pipelineId, key);
    return key;
  }

  /**
   * How `text` is the content at `address`: `sha` (its SHA-256), `keyed` (its keyed address in
   * the run), or undefined when it is neither. An output stored encrypted is addressed by its
   * keyed address, or by its SHA-256 when it came from a plaintext export.
   */
  addressMatches(pipelineId: string, address: string, text: string): "sha" | "keyed" | undefined {
    const keyedFirst = this.sealedOutputs.get(pipelineId)?.has(address) ?? false;
    return matchAddress(this.keys.get(pipelineId), address, text, keyedFirst);
  }

  // ---- sealing ---------------------------------------------------------------------------

  /**
   * Opens a text as stored (read by the caller from `inner`) into the text it was sealed from:
   * as it is when plain, still sealed and marked when the key is missing; `CheckpointCorruptError`
   * when it fails to open. One way to open, for the layer's reads and for callers that keep the
   * stored texts too (exports, statistics at rest).
   */
  async openStored(stored: string, ctx: SealContext, where = "its stored text"): Promise<string> {
    return (await this.open(stored, ctx, where)).text;
  }

  private async open(
    stored: string,
    ctx: SealContext,
    where: string,
  ): Promise<{ text: string; encrypted: boolean }> {
    if (!isEnvelope(stored)) return { text: stored, encrypted: false };
    const envelope = parseEnvelope(stored, where);
    let key: DataKey | undefined;
    if (envelope.e) {
      const found = await this.readKey(ctx.pipelineId, envelope.e.k, where);
      if (found instanceof KeyMissingError) return { text: markSealed(stored, found), encrypted: false };
      key = found;
    }
    const opener = { decoder: decoderFor, maxBytes: this.settings.maxBytes };
    return { text: await openEnvelope(envelope, ctx, key, opener, where), encrypted: key !== undefined };
  }

  private async openRecord(record: CheckpointRecord): Promise<CheckpointRecord> {
    const m = record.metadata;
    const where = "its stored body";
    try {
      const { text: body } = await this.open(
        record.body,
        { role: "checkpoint", pipelineId: m.pipeline_id, id: m.checkpoint_id },
        where,
      );
      return body === record.body ? record : { metadata: m, body };
    } catch (error) {
      // Returned marked, as a record whose checksum does not match is returned: the check calls
      // it invalid, resume falls back past it, and repair can quarantine it.
      if (error instanceof CheckpointCorruptError) {
        return { metadata: m, body: markCorrupt(record.body, error.problems.join("; ")) };
      }
      throw error;
    }
  }

  private sealOutputs(
    pipelineId: string,
    outputs: readonly OutputRecord[],
    codec: Codec | undefined,
    key: DataKey | undefined,
  ): OutputRecord[] {
    if (!codec && !key) return [...outputs];
    return outputs.map((o) => ({
      hash: o.hash,
      body: seal(o.body, { role: "output", pipelineId, id: o.hash }, codec, key),
    }));
  }

  // ---- writes ----------------------------------------------------------------------------

  async putCheckpoint(
    record: CheckpointRecord,
    outputs: readonly OutputRecord[],
    fence?: Lease,
    options?: PutOptions,
  ): Promise<void> {
    const m = record.metadata;
    const codec = this.settings.codec;
    const key = await this.writeKey(m.pipeline_id);
    if (!codec && !key) return this.inner.putCheckpoint(record, outputs, fence, options);
    const body = seal(
      record.body,
      { role: "checkpoint", pipelineId: m.pipeline_id, id: m.checkpoint_id },
      codec,
      key,
    );
    return this.inner.putCheckpoint(
      { metadata: m, body },
      this.sealOutputs(m.pipeline_id, outputs, codec, key),
      fence,
      options,
    );
  }

  /**
   * Imports a run. With `runKey` the records are already sealed under that key (an encrypted
   * export) and stored as they are. Otherwise they are sealed as this layer writes: an encrypting
   * layer seals them under the run's data key (a new one for a new run), stored in the same step.
   */
  async importRun(
    pipelineId: string,
    checkpoints: readonly ImportedCheckpoint[],
    options: ImportRunOptions,
  ): Promise<void> {
    this.keys.delete(pipelineId);
    if (options.runKey !== undefined) return this.inner.importRun(pipelineId, checkpoints, options);
    const codec = this.settings.codec;
    // The run's own data key when it has one: its records (a checkpoint replaced in place) keep
    // the keyed addresses they were written with.
    const key = this.settings.ring ? await this.writeKey(pipelineId, true) : undefined;
    if (!codec && !key) return this.inner.importRun(pipelineId, checkpoints, options);
    const sealed = checkpoints.map(({ record, outputs }) => ({
      record: {
        metadata: record.metadata,
        body: seal(
          record.body,
          { role: "checkpoint", pipelineId, id: record.metadata.checkpoint_id },
          codec,
          key,
        ),
      },
      outputs: this.sealOutputs(pipelineId, outputs, codec, key),
    }));
    await this.inner.importRun(pipelineId, sealed, key ? { ...options, runKey: key.record } : options);
    if (key) this.keys.set(pipelineId, key);
  }

  updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void> {
    return this.inner.updateCheckpoint(checkpointId, patch);
  }

  deleteCheckpoints(
    pipelineId: string,
    ids: readonly string[],
    options?: DeleteCheckpointsOptions,
  ): Promise<number> {
    return this.inner.deleteCheckpoints(pipelineId, ids, options);
  }

  deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number> {
    return this.inner.deleteOutputs(pipelineId, hashes);
  }

  async deleteRun(pipelineId: string): Promise<void> {
    this.keys.delete(pipelineId);
    this.sealedOutputs.delete(pipelineId);
    await this.inner.deleteRun(pipelineId);
  }

  // ---- reads -----------------------------------------------------------------------------

  async getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined> {
    const record = await this.inner.getCheckpoint(checkpointId);
    if (record) this.tap?.record(checkpointId, record);
    return record && this.openRecord(record);
  }

  async getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined> {
    const record = await this.inner.getLatestCheckpoint(pipelineId);
    return record && this.openRecord(record);
  }

  async getOutputs(pipelineId: string, hashes: readonly string[]): Promise<Map<string, string>> {
    const stored = await this.inner.getOutputs(pipelineId, hashes);
    this.tap?.outputs(stored);
    const out = new Map<string, string>();
    for (const [hash, text] of stored) {
      if (!isEnvelope(text)) {
        out.set(hash, text);
        continue;
      }
      let opened: { text: string; encrypted: boolean };
      try {
        opened = await this.open(text, { role: "output", pipelineId, id: hash }, "its stored text");
      } catch (error) {
        // One output that fails to open fails only the checkpoints that reference it.
        if (!(error instanceof CheckpointCorruptError)) throw error;
        out.set(hash, markCorrupt(text, error.problems.join("; ")));
        continue;
      }
      if (opened.encrypted) {
        const set = this.sealedOutputs.get(pipelineId) ?? new Set<string>();
        this.sealedOutputs.set(pipelineId, set);
        set.add(hash);
      }
      out.set(hash, opened.text);
    }
    return out;
  }

  // ---- pass-through ----------------------------------------------------------------------

  acquireLease(pipelineId: string, owner: string, ttlMs: number): Promise<LeaseAttempt> {
    return this.inner.acquireLease(pipelineId, owner, ttlMs);
  }
  renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    return this.inner.renewLease(lease, ttlMs);
  }
  releaseLease(lease: Lease): Promise<void> {
    return this.inner.releaseLease(lease);
  }
  getLease(pipelineId: string): Promise<Lease | undefined> {
    return this.inner.getLease(pipelineId);
  }
  listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]> {
    return this.inner.listCheckpoints(pipelineId);
  }
  listPipelineIds(): Promise<string[]> {
    return this.inner.listPipelineIds();
  }
  listRuns(query: ListRunsQuery): Promise<RunPage> {
    return this.inner.listRuns(query);
  }
  getRunHead(pipelineId: string): Promise<RunHead | undefined> {
    return this.inner.getRunHead(pipelineId);
  }
  listOutputHashes(pipelineId: string): Promise<string[]> {
    return this.inner.listOutputHashes(pipelineId);
  }
  readCorruptEntry(entry: CorruptEntry): Promise<string> {
    return this.inner.readCorruptEntry(entry);
  }
  removeCorruptEntry(entry: CorruptEntry): Promise<void> {
    return this.inner.removeCorruptEntry(entry);
  }
}
